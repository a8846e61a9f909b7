"""``gati project dsn PROJECT``: the Sentry DSN of a project (registered in ``gati.cli``)."""

from __future__ import annotations

from typing import Any

import click

from gati.db.engine import Database


@click.command("dsn")
@click.argument("project_ref")
@click.option(
    "--url",
    "base_url",
    default=None,
    help="Base URL clients reach the server at (default: PUBLIC_URL, else http://127.0.0.1:8000)",
)
@click.option("--json", "as_json", is_flag=True)
def project_dsn(project_ref: str, base_url: str | None, as_json: bool) -> None:
    """Print the Sentry DSN of PROJECT_REF (id, slug or public key) for sentry_sdk.init(dsn=...)."""
    from gati.cli import _echo, load_settings, run_with_db
    from gati.errors.service import dsn_for
    from gati.projects.service import get_project

    base = base_url or load_settings().public_url or "http://127.0.0.1:8000"

    async def go(db: Database) -> dict[str, Any]:
        async with db.read_session() as session:
            project = await get_project(session, project_ref)
        if project is None:
            raise click.ClickException(f"project {project_ref!r} not found")
        return dsn_for(project, base_url=base)

    try:
        data = run_with_db(go)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        _echo(data, True)
    else:
        click.echo(data["dsn"])
