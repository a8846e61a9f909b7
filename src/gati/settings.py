"""Application settings, built once in ``create_app`` (or the CLI) and passed down."""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote_plus

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SECRET_KEY = "change-me-insecure-development-secret"


class InsecureSettingsError(Exception):
    """Raised when production mode is asked for with settings that are not safe."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # --- seed 000 names and defaults -------------------------------------------------
    database_url: str | None = None
    database_pool_size: int = 20
    database_max_overflow: int = 10
    database_pool_timeout: float = 30
    database_pool_recycle: int = 3600
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])
    cors_allow_credentials: bool = True
    max_batch_size: int = 10_000
    max_event_size_mb: float = 100.0
    debug: bool = False
    # FastAPI's built-in OpenTelemetry spans and metrics of Gati's own HTTP requests, exported
    # through the process's OTel providers (e.g. under ``opentelemetry-instrument``). Off: no
    # per-request provider lookups (~3% of a single-event request's CPU).
    server_telemetry: bool = False
    app_name: str = "Gati"
    app_version: str = "0.1.0"
    environment: Literal["development", "staging", "production"] = "development"
    api_prefix: str = "/api"

    # --- seed 002 alternative database configuration -----------------------------------
    database_user: str | None = None
    database_password: str | None = None
    database_host: str | None = None
    database_port: int | None = None
    database_name: str | None = None
    env: Literal["development", "production"] | None = None

    # --- Gati -----------------------------------------------------------------------
    gati_data_dir: Path = Path(".gati")
    secret_key: str = DEFAULT_SECRET_KEY
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    redis_url: str | None = None
    # Prefix of every Redis key and channel (lets several deployments or tests share one Redis).
    redis_prefix: str = "gati:"
    # Request body limits (compressed bytes on the wire / after decompression).
    max_request_body_mb: float = 100.0
    max_decompressed_body_mb: float = 200.0
    # Group commit: how many single-event writes may wait for the writer before 503.
    ingest_queue_limit: int = 20_000
    group_commit_max_batch: int = 2_000
    # Writer tasks of the group committer (each with its own connection); default: 1 on SQLite
    # (one writer at a time anyway), 2 on PostgreSQL.
    group_commit_writers: int | None = Field(default=None, ge=1, le=16)
    # Jobs: run the periodic jobs inside the server process (off when `gati worker` runs them).
    run_jobs_in_process: bool = True
    # Trusted reverse proxies whose X-Forwarded-For / X-Real-IP / Forwarded are believed.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Key for encrypting credentials at rest (export destinations). Derived from SECRET_KEY if unset.
    encryption_key: str | None = None
    # --- metrics, live updates, rate limits (docs/metrics.md, docs/live.md) ---
    # GCRA limits "COUNT/second|minute|hour[;burst=N]" per API key / user (per client IP when
    # anonymous in local mode); shared through Redis when REDIS_URL is set. 429 + Retry-After.
    rate_limit_enabled: bool = True
    rate_limit_ingest: str = "2000/second;burst=4000"
    rate_limit_read: str = "100/second;burst=200"
    # Messages a WebSocket client may have queued before the oldest are dropped (and counted).
    live_queue_size: int = 1000
    # A WebSocket re-checks that its token's session is not revoked this often (seconds).
    live_revalidate_seconds: float = 30.0
    # Accept permessage-deflate on WebSockets (`gati serve`). Off: live frames are small JSON,
    # and compressing each frame once per connection is most of the cost of a fan-out.
    live_ws_compression: bool = False
    # Largest number of buckets one aggregate request may return.
    metrics_max_buckets: int = 10_000
    # --- exports (seed 003; docs/exports.md) ---
    # Local-folder destinations must lie under this folder (default: GATI_DATA_DIR/exports).
    export_local_root: Path | None = None
    # Where files are written before upload (default: GATI_DATA_DIR/export-spool).
    export_spool_dir: Path | None = None
    # A window is exported once its end is this far in the past (late commits land first).
    export_settle_seconds: int = 120
    export_chunk_rows: int = 20_000
    export_max_windows_per_run: int = 48
    export_retry_attempts: int = 5
    export_retry_initial_seconds: float = 2.0
    export_retry_max_seconds: float = 300.0
    # Error tracking (seed 002 + Sentry protocol; docs/errors.md). Per-project overrides live in
    # the project's settings: "error_rate_limit" ("off" disables) and "error_retention_days".
    errors_rate_limit: str | None = "100/second;burst=1000"
    errors_retention_days: int = 90
    errors_max_event_bytes: int = 1024 * 1024
    # Base URL clients reach this server at, written into DSNs (default: the request's own URL).
    public_url: str | None = None
    # Local mode: no credentials needed; ingestion goes to an auto-created default project.
    local_mode: bool | None = None
    log_level: str = "INFO"
    sqlite_read_pool_size: int = 4
    # --- web analytics (seed 003) ---------------------------------------------------------
    # MaxMind-format country database (GeoLite2-Country.mmdb); countries are empty without it.
    geoip_database: Path | None = None
    # /collect with an unknown siteId creates the site (default: in local mode only).
    web_auto_create_sites: bool | None = None

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(
                    f"TRUSTED_PROXIES: {item!r} is not an IP address or network"
                ) from exc
        return value

    @model_validator(mode="after")
    def _check_production(self) -> Settings:
        if self.env == "production" and self.environment == "development":
            self.environment = "production"
        if not self.is_production:
            return self
        problems = []
        if self.secret_key == DEFAULT_SECRET_KEY or len(self.secret_key) < 32:
            problems.append("SECRET_KEY is the default or shorter than 32 characters")
        if "*" in self.cors_origins and self.cors_allow_credentials:
            problems.append("CORS_ORIGINS=* together with CORS_ALLOW_CREDENTIALS=true")
        if self.local_mode:
            problems.append("LOCAL_MODE=true (authentication off)")
        if self.debug:
            problems.append("DEBUG=true")
        if problems:
            raise InsecureSettingsError(
                "Refusing to start in production mode with insecure settings: "
                + "; ".join(problems)
            )
        return self

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def is_local(self) -> bool:
        """Local mode: requests without credentials act on the default project."""
        if self.local_mode is not None:
            return self.local_mode
        return not self.is_production

    @cached_property
    def resolved_database_url(self) -> str:
        """The SQLAlchemy async URL, from DATABASE_URL, the DATABASE_* parts or the data dir."""
        url = self.database_url
        if not url and self.database_host:
            user = quote_plus(self.database_user or "postgres")
            password = f":{quote_plus(self.database_password)}" if self.database_password else ""
            port = f":{self.database_port}" if self.database_port else ""
            url = f"postgresql://{user}{password}@{self.database_host}{port}/{self.database_name or 'gati'}"
        if not url:
            return f"sqlite+aiosqlite:///{(self.gati_data_dir / 'gati.db').resolve()}"
        return normalize_database_url(url)

    @property
    def max_event_bytes(self) -> int:
        return int(self.max_event_size_mb * 1024 * 1024)

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_request_body_mb * 1024 * 1024)

    @property
    def max_decompressed_bytes(self) -> int:
        return int(self.max_decompressed_body_mb * 1024 * 1024)


def normalize_database_url(url: str) -> str:
    """Accept the seeds' plain forms (postgresql://, postgres://, sqlite:///) for the async drivers."""
    for prefix in (
        "postgresql+psycopg2://",
        "postgresql+psycopg://",
        "postgresql://",
        "postgres://",
    ):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite:///") or url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


def dialect_of(url: str) -> Literal["sqlite", "postgresql"]:
    if url.startswith("sqlite"):
        return "sqlite"
    if url.startswith("postgresql"):
        return "postgresql"
    raise ValueError(
        f"DATABASE_URL: unsupported database {url.split(':', 1)[0]!r}; use sqlite or postgresql"
    )
