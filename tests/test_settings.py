"""Settings: the seeds' names, production refusals, database URL forms."""

from __future__ import annotations

import pytest

from gati.settings import DEFAULT_SECRET_KEY, InsecureSettingsError, Settings

GOOD = "x" * 40


def test_seed_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (s.database_pool_size, s.database_max_overflow, s.database_pool_timeout) == (20, 10, 30)
    assert s.database_pool_recycle == 3600 and s.max_batch_size == 10_000
    assert s.api_prefix == "/api" and s.environment == "development" and s.is_local
    assert s.resolved_database_url.startswith("sqlite+aiosqlite:///")


def test_seed_database_url_form_works_as_written() -> None:
    s = Settings(database_url="postgresql://user:pass@host/db")
    assert s.resolved_database_url == "postgresql+asyncpg://user:pass@host/db"
    s = Settings(
        database_host="db.internal",
        database_user="u",
        database_password="p@ss",
        database_port=5433,
        database_name="errors",
    )
    assert s.resolved_database_url == "postgresql+asyncpg://u:p%40ss@db.internal:5433/errors"


def test_env_variables_and_csv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "http://localhost:3000,http://localhost:8080")
    monkeypatch.setenv("MAX_BATCH_SIZE", "500")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.cors_origins == ["http://localhost:3000", "http://localhost:8080"]
    assert s.max_batch_size == 500


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"secret_key": DEFAULT_SECRET_KEY, "cors_origins": ["https://a"]}, "SECRET_KEY"),
        (
            {"secret_key": GOOD, "cors_origins": ["*"], "cors_allow_credentials": True},
            "CORS_ORIGINS=*",
        ),
        ({"secret_key": GOOD, "cors_origins": ["https://a"], "local_mode": True}, "LOCAL_MODE"),
        ({"secret_key": GOOD, "cors_origins": ["https://a"], "debug": True}, "DEBUG"),
    ],
)
def test_production_refuses_insecure(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(InsecureSettingsError, match=message):
        Settings(environment="production", **overrides)  # type: ignore[arg-type]


def test_production_accepts_secure() -> None:
    s = Settings(environment="production", secret_key=GOOD, cors_origins=["https://a"])
    assert s.is_production and not s.is_local


def test_seed_002_env_alias() -> None:
    with pytest.raises(InsecureSettingsError):
        Settings(env="production")
    assert Settings(env="production", secret_key=GOOD, cors_origins=["https://a"]).is_production


def test_trusted_proxies_validated() -> None:
    assert Settings(trusted_proxies="10.0.0.0/8, 127.0.0.1").trusted_proxies == [
        "10.0.0.0/8",
        "127.0.0.1",
    ]
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        Settings(trusted_proxies="not-an-ip")
