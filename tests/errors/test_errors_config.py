"""The seed-002 configuration forms: DATABASE_URL or DATABASE_USER/PASSWORD/HOST/PORT/NAME, and
ENV=development (tables created at start) vs ENV=production (migrations only); plus
``gati project dsn``. Run on an empty SQLite file and an empty PostgreSQL database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import inspect

from gati.app import create_app
from gati.cli import main as cli
from gati.db import migrate
from gati.db.engine import Database
from gati.projects import service as projects
from gati.settings import Settings
from tests.conftest import PG_ADMIN_DSN, PRODUCTION_SECRET, _service_missing
from tests.errors.helpers import auth, envelope, sentry_event

_PG_PARTS = PG_ADMIN_DSN.split("://", 1)[1]  # user@host:port/db


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """An EMPTY database, configured through the environment the way seed 002 does it."""
    for name in (
        "DATABASE_URL",
        "DATABASE_USER",
        "DATABASE_PASSWORD",
        "DATABASE_HOST",
        "DATABASE_PORT",
        "DATABASE_NAME",
        "ENV",
    ):
        monkeypatch.setenv(name, "")  # restored after the test
        monkeypatch.delenv(name)
    monkeypatch.setenv("GATI_SKIP_MIGRATIONS", "")
    monkeypatch.delenv("GATI_SKIP_MIGRATIONS")
    monkeypatch.setenv("RUN_JOBS_IN_PROCESS", "false")
    monkeypatch.setenv("GATI_DATA_DIR", str(tmp_path / "data"))
    if request.param == "sqlite":
        monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'seed002.db'}")
        yield "sqlite"
        return
    user_host, _ = _PG_PARTS.rsplit("/", 1)
    user, host_port = user_host.split("@", 1)
    host, _, port = host_port.partition(":")
    name = f"gati_cfg_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        _service_missing("PostgreSQL at " + PG_ADMIN_DSN, exc)
    monkeypatch.setenv("DATABASE_USER", user.split(":", 1)[0])
    monkeypatch.setenv("DATABASE_PASSWORD", "")
    monkeypatch.setenv("DATABASE_HOST", host)
    monkeypatch.setenv("DATABASE_PORT", port or "5432")
    monkeypatch.setenv("DATABASE_NAME", name)
    try:
        yield "postgresql"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _tables(url: str) -> set[str]:
    db = Database(url)
    try:
        async with db.write_engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await db.dispose()


def test_database_parts_build_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "")
    monkeypatch.setenv("DATABASE_USER", "app user")
    monkeypatch.setenv("DATABASE_PASSWORD", "p@ss:word")
    monkeypatch.setenv("DATABASE_HOST", "db.internal")
    monkeypatch.setenv("DATABASE_PORT", "6543")
    monkeypatch.setenv("DATABASE_NAME", "error_ingestion")
    assert Settings().resolved_database_url == (
        "postgresql+asyncpg://app+user:p%40ss%3Aword@db.internal:6543/error_ingestion"
    )
    monkeypatch.setenv(
        "DATABASE_URL", "postgresql://postgres:password@localhost:5432/error_ingestion"
    )
    assert Settings().resolved_database_url == (
        "postgresql+asyncpg://postgres:password@localhost:5432/error_ingestion"
    )
    monkeypatch.setenv("ENV", "production")
    monkeypatch.setenv("SECRET_KEY", PRODUCTION_SECRET)
    monkeypatch.setenv("CORS_ORIGINS", "https://app.example.com")
    settings = Settings()
    assert settings.is_production and not settings.is_local


async def test_env_development_creates_tables_at_start(
    empty_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENV", "development")
    settings = Settings()
    assert settings.env == "development" and settings.is_local
    assert "issues" not in await _tables(settings.resolved_database_url)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.post("/api/v1/events", json={"project_key": "seed", "message": "boom"})
            assert r.status_code == 201, r.text
    assert {"issues", "error_events", "issue_values"} <= await _tables(
        settings.resolved_database_url
    )


async def test_env_production_relies_on_migrations(
    empty_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENV", "production")
    monkeypatch.setenv("SECRET_KEY", PRODUCTION_SECRET)
    monkeypatch.setenv("CORS_ORIGINS", "https://app.example.com")
    settings = Settings()
    assert settings.is_production
    url = settings.resolved_database_url
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        pass
    assert "issues" not in await _tables(url)  # production never creates tables by itself

    await migrate.upgrade(url)  # what `gati migrate` / `alembic upgrade head` does
    db = Database(url, settings)
    try:
        async with db.session() as session:
            project, _ = await projects.create_project(session, name="prod")
            project_id, public_key = project.id, project.public_key
    finally:
        await db.dispose()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.post(
                f"/api/{project_id}/envelope/",
                content=envelope(sentry_event()),
                headers=auth(public_key),
            )
            assert r.status_code == 200, r.text


def test_cli_project_dsn(empty_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    created = runner.invoke(cli, ["project", "create", "Checkout", "--json"])
    assert created.exit_code == 0, created.output
    import json

    project: dict[str, Any] = json.loads(created.output)
    result = runner.invoke(cli, ["project", "dsn", "checkout"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"http://{project['public_key']}@127.0.0.1:8000/{project['id']}"
    result = runner.invoke(
        cli, ["project", "dsn", str(project["id"]), "--url", "https://errors.example.com"]
    )
    assert (
        result.output.strip()
        == f"https://{project['public_key']}@errors.example.com/{project['id']}"
    )
    monkeypatch.setenv("PUBLIC_URL", "http://gati.local:9000")
    result = runner.invoke(cli, ["project", "dsn", "checkout", "--json"])
    data = json.loads(result.output)
    assert data["dsn"] == f"http://{project['public_key']}@gati.local:9000/{project['id']}"
    assert data["envelope_url"] == f"http://gati.local:9000/api/{project['id']}/envelope/"
    missing = runner.invoke(cli, ["project", "dsn", "nope"])
    assert missing.exit_code != 0 and "not found" in missing.output
