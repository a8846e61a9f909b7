"""The ``gati`` command: serve | migrate | project | key (and the domains' subcommands)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from gati.db import migrate as migrations
from gati.db.engine import Database
from gati.exceptions import AppError
from gati.settings import InsecureSettingsError, Settings

T = TypeVar("T")


def load_settings() -> Settings:
    try:
        return Settings()
    except InsecureSettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    except ValueError as exc:
        raise click.ClickException(f"Invalid settings: {exc}") from exc


def run_with_db(fn: Callable[[Database], Awaitable[T]], *, migrate_first: bool = True) -> T:
    """Run ``fn(db)`` on the configured database (migrated first) and dispose of it."""
    settings = load_settings()

    async def main() -> T:
        db = Database(settings.resolved_database_url, settings)
        try:
            if migrate_first:
                await migrations.upgrade(db.url)
            return await fn(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except AppError as exc:
        raise click.ClickException(exc.detail) from exc


@click.group()
@click.version_option(package_name="gati")
def main() -> None:
    """Gati: event ingestion and analytics server."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="Server processes")
@click.option("--reload", is_flag=True, help="Restart on code changes (development)")
def serve(host: str, port: int, workers: int, reload: bool) -> None:
    """Start the HTTP server (SQLite in GATI_DATA_DIR unless DATABASE_URL is set)."""
    import uvicorn

    from gati.logging_setup import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level)
    url = settings.resolved_database_url
    if settings.env != "production":
        asyncio.run(migrations.upgrade(url))
    os.environ["GATI_SKIP_MIGRATIONS"] = "1"  # done once here, not by every worker
    mode = (
        "LOCAL MODE (no credentials needed; data goes to the default project)"
        if settings.is_local
        else settings.environment.upper()
    )
    where = url.split("@")[-1] if "@" in url else url
    click.echo(
        f"Gati {settings.app_version} on http://{host}:{port}  database: {where}  mode: {mode}",
        err=True,
    )
    if settings.is_local and host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            "warning: local mode while listening beyond localhost: anyone who can reach this port can read and write",
            err=True,
        )
    uvicorn.run(
        "gati.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers if not reload else None,
        reload=reload,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        ws_per_message_deflate=settings.live_ws_compression,
    )


@main.command()
@click.option("--revision", default="heads", show_default=True)
def migrate(revision: str) -> None:
    """Apply database migrations (one Alembic history for SQLite and PostgreSQL)."""
    settings = load_settings()
    asyncio.run(migrations.upgrade(settings.resolved_database_url, revision))
    click.echo("database is up to date")


def _echo(data: dict[str, Any] | list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    rows = data if isinstance(data, list) else [data]
    for row in rows:
        click.echo("  ".join(f"{k}={v}" for k, v in row.items()))


@main.group()
def project() -> None:
    """Manage projects."""


@project.command("create")
@click.argument("name")
@click.option("--slug", help="Identifier used as project_key / siteId (default: from the name)")
@click.option("--json", "as_json", is_flag=True)
def project_create(name: str, slug: str | None, as_json: bool) -> None:
    """Create a project; prints its id, public key and secret key (shown once)."""
    from gati.projects import service

    async def go(db: Database) -> dict[str, Any]:
        async with db.session() as session:
            created, key = await service.create_project(session, name=name, slug=slug)
            assert key is not None
            return {
                "id": created.id,
                "slug": created.slug,
                "name": created.name,
                "public_key": created.public_key,
                "secret_key": key.secret,
            }

    _echo(run_with_db(go), as_json)


@project.command("list")
@click.option("--json", "as_json", is_flag=True)
def project_list(as_json: bool) -> None:
    from gati.projects import repository

    async def go(db: Database) -> list[dict[str, Any]]:
        async with db.read_session() as session:
            return [
                {"id": p.id, "slug": p.slug, "name": p.name, "public_key": p.public_key}
                for p in await repository.list_projects(session)
            ]

    _echo(run_with_db(go), as_json)


def _register_domain_commands() -> None:
    from gati.errors.cli import project_dsn

    project.add_command(project_dsn)


_register_domain_commands()


@main.group()
def key() -> None:
    """Manage a project's secret API keys."""


async def _project_id(db: Database, ref: str) -> int:
    from gati.projects.service import get_project

    async with db.read_session() as session:
        found = await get_project(session, ref)
    if found is None:
        raise click.ClickException(f"project {ref!r} not found")
    return found.id


@key.command("create")
@click.argument("project_ref")
@click.option("--name", default="default")
@click.option("--json", "as_json", is_flag=True)
def key_create(project_ref: str, name: str, as_json: bool) -> None:
    """Create a secret key for PROJECT_REF (id or slug); the secret is shown once."""
    from gati.projects import service

    async def go(db: Database) -> dict[str, Any]:
        project_id = await _project_id(db, project_ref)
        async with db.session() as session:
            created = await service.create_key(session, project_id=project_id, name=name)
            return {
                "id": created.key.id,
                "project_id": project_id,
                "name": name,
                "secret_key": created.secret,
            }

    _echo(run_with_db(go), as_json)


@key.command("list")
@click.argument("project_ref")
@click.option("--json", "as_json", is_flag=True)
def key_list(project_ref: str, as_json: bool) -> None:
    from gati.projects import repository

    async def go(db: Database) -> list[dict[str, Any]]:
        project_id = await _project_id(db, project_ref)
        async with db.read_session() as session:
            return [
                {
                    "id": k.id,
                    "name": k.name,
                    "prefix": k.prefix,
                    "created_at": k.created_at.isoformat(),
                    "revoked": k.revoked_at is not None,
                }
                for k in await repository.list_keys(session, project_id=project_id)
            ]

    _echo(run_with_db(go), as_json)


@key.command("revoke")
@click.argument("project_ref")
@click.argument("key_id", type=int)
def key_revoke(project_ref: str, key_id: int) -> None:
    from gati.projects import service

    async def go(db: Database) -> None:
        project_id = await _project_id(db, project_ref)
        async with db.session() as session:
            await service.revoke_key(session, project_id=project_id, key_id=key_id)

    run_with_db(go)
    click.echo(f"key {key_id} revoked")


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--concurrency", "-c", default=1, show_default=True, type=int)
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(concurrency: int, loglevel: str, celery_args: tuple[str, ...]) -> None:
    """Run background jobs (rollups, exports, retention) on Celery; needs REDIS_URL.

    Run the server with RUN_JOBS_IN_PROCESS=false when workers run the jobs. Extra arguments are
    passed to ``celery worker``.
    """
    settings = load_settings()
    if not settings.redis_url:
        raise click.ClickException("gati worker needs REDIS_URL (the Celery broker)")
    asyncio.run(migrations.upgrade(settings.resolved_database_url))
    from gati.jobs.celery_app import app as celery_app

    celery_app.worker_main(
        ["worker", f"--concurrency={concurrency}", f"--loglevel={loglevel}", *celery_args]
    )


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def beat(loglevel: str, celery_args: tuple[str, ...]) -> None:
    """Send the job tick to the workers every JOBS_TICK_SECONDS (Celery beat); needs REDIS_URL."""
    settings = load_settings()
    if not settings.redis_url:
        raise click.ClickException("gati beat needs REDIS_URL (the Celery broker)")
    from gati.jobs.celery_app import app as celery_app

    settings.gati_data_dir.mkdir(parents=True, exist_ok=True)
    schedule = settings.gati_data_dir / "celerybeat-schedule"
    celery_app.start(["beat", f"--loglevel={loglevel}", f"--schedule={schedule}", *celery_args])


from gati.exports.cli import export as _export_group  # noqa: E402

main.add_command(_export_group)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
