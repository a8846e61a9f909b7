"""Shared fixtures: every storage test runs on SQLite and on PostgreSQL, schema from migrations.

- ``database_url``: a fresh, migrated database per test (parametrized: sqlite, postgresql).
  PostgreSQL databases are cloned from a migrated template (fast); SQLite files are copied.
- ``db``: a ``Database`` on it, for direct assertions.
- ``make_app(**settings)``: an app (lifespan running) + httpx client on that database.
- ``client``: the local-mode client; ``make_project``: a project with its keys.
- ``live_server(**env)``: a real ``gati serve`` process on a free port (for real SDK clients).
- ``redis_url``: the local Redis, with a unique key prefix per test in ``redis_prefix``.

With GATI_REQUIRE_SERVICES=1 (CI), a missing PostgreSQL or Redis FAILS the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from gati.app import create_app
from gati.db import migrate
from gati.db.engine import Database
from gati.settings import Settings

PG_ADMIN_DSN = os.environ.get("GATI_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("GATI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("GATI_REQUIRE_SERVICES") == "1"
_PG_BASE = PG_ADMIN_DSN.rsplit("/", 1)[0]


def _sqlalchemy_pg(name: str) -> str:
    return f"{_PG_BASE}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)


def _service_missing(what: str, exc: BaseException) -> None:
    message = f"{what} is not reachable ({exc})"
    if REQUIRE_SERVICES:
        pytest.fail(message + " and GATI_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def _pg_template() -> Iterator[str | None]:
    name = f"gati_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def create() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        await migrate.upgrade(_sqlalchemy_pg(name))

    try:
        asyncio.run(create())
    except (OSError, asyncpg.PostgresError) as exc:
        yield None
        _ = exc
        return
    yield name

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    asyncio.run(migrate.upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
async def sqlite_db(_sqlite_template: Path, tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh migrated SQLite database (for SQLite-only behaviour)."""
    path = tmp_path / "gati.db"
    shutil.copyfile(_sqlite_template, path)
    url = f"sqlite+aiosqlite:///{path}"
    database = Database(url, Settings(database_url=url))
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def sqlite_statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement SQLite runs on connections opened from now on (sqlite3's trace
    callback)."""
    statements: list[str] = []
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)
    return statements


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, _sqlite_template: Path
) -> Iterator[str]:
    """A fresh migrated database for this test, on each dialect."""
    if request.param == "sqlite":
        path = tmp_path / "gati.db"
        shutil.copyfile(_sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    template = request.getfixturevalue("_pg_template")
    if template is None:
        _service_missing("PostgreSQL at " + PG_ADMIN_DSN, RuntimeError("connection failed"))
    name = f"gati_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield _sqlalchemy_pg(name)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh migrated PostgreSQL database (for PostgreSQL-only behaviour)."""
    template = request.getfixturevalue("_pg_template")
    if template is None:
        _service_missing("PostgreSQL at " + PG_ADMIN_DSN, RuntimeError("connection failed"))
    name = f"gati_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield _sqlalchemy_pg(name)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def dialect(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, Settings(database_url=database_url))
    try:
        yield database
    finally:
        await database.dispose()


def settings_for(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "run_jobs_in_process": False,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    os.environ["GATI_SKIP_MIGRATIONS"] = "1"  # the test database is already migrated
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
def make_app(database_url: str) -> Callable[..., Any]:
    """``async with make_app(environment="production", secret_key=...) as client:``"""

    def factory(**overrides: Any) -> Any:
        return app_client(settings_for(database_url, **overrides))

    return factory


@pytest.fixture
async def client(make_app: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with make_app() as c:
        yield c


PRODUCTION_SECRET = "test-secret-key-that-is-long-enough-0123456789"


@pytest.fixture
def production_settings() -> dict[str, Any]:
    return {
        "environment": "production",
        "secret_key": PRODUCTION_SECRET,
        "cors_origins": ["https://app.example.com"],
    }


@pytest.fixture
def make_project(db: Database) -> Callable[..., Any]:
    """``await make_project("name")`` → {"id", "slug", "public_key", "secret_key"}."""
    from gati.projects import service

    async def factory(name: str | None = None, **kwargs: Any) -> dict[str, Any]:
        name = name or f"project-{uuid.uuid4().hex[:8]}"
        async with db.session() as session:
            project, key = await service.create_project(session, name=name, **kwargs)
            assert key is not None
            return {
                "id": project.id,
                "slug": project.slug,
                "public_key": project.public_key,
                "secret_key": key.secret,
            }

    return factory


@pytest.fixture
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        _service_missing("Redis at " + REDIS_URL, exc)
    return REDIS_URL


@pytest.fixture
def redis_prefix() -> str:
    return f"gati-test:{uuid.uuid4().hex[:10]}:"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_until(
    predicate: Callable[[], bool], *, timeout: float = 20.0, interval: float = 0.05
) -> None:
    """Poll ``predicate`` until true or fail after ``timeout`` seconds (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def live_server(database_url: str, tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """``server = live_server(ENVIRONMENT="production", ...)``: a real `gati serve` process."""
    servers: list[LiveServer] = []

    def start(workers: int = 1, **env: str) -> LiveServer:
        port = free_port()
        log = tmp_path / f"server-{port}.log"
        environ = {
            **os.environ,
            "DATABASE_URL": database_url,
            "RUN_JOBS_IN_PROCESS": "false",
            "LOG_LEVEL": "WARNING",
            "GATI_DATA_DIR": str(tmp_path / "data"),
            **env,
        }
        environ.pop("GATI_SKIP_MIGRATIONS", None)
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gati.cli",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=environ,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        server = LiveServer(process, f"http://127.0.0.1:{port}", log)
        servers.append(server)

        def up() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"server exited: {log.read_text()[-3000:]}")
            try:
                return httpx.get(server.url + "/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=60)
        return server

    yield start
    for server in servers:
        server.stop()
