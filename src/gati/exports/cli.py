"""``gati export run | status``: exports from the command line, with a progress bar."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from gati.db.engine import Database
from gati.exports import service
from gati.exports.destinations import LocalFolderDestination
from gati.exports.pipeline import NamedDestination
from gati.exports.windows import Window
from gati.exports.writers import ExportFormat


def _moment(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date/time", param_hint=name
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class _Bar:
    """Rich progress: one bar per file, rows done of the window's count."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None
        self.window: Window | None = None

    def on_window(self, window: Window) -> None:
        self.window = window

    def on_part(self, part: str, total: int | None) -> None:
        if self.task is not None:
            self.progress.stop_task(self.task)
        label = part
        if self.window is not None:
            label = f"{self.window.start:%Y-%m-%d %H:%M} → {self.window.end:%Y-%m-%d %H:%M} {part}"
        self.task = self.progress.add_task(label, total=total or 0)

    def on_rows(self, rows: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=rows)

    def hooks(self) -> service.Progress:
        return service.Progress(
            on_window=self.on_window, on_part=self.on_part, on_rows=self.on_rows
        )


def _summary(run: Any) -> dict[str, Any]:
    read = service.run_read(run)
    return read.model_dump(mode="json", exclude={"manifest"})


@click.group("export")
def export() -> None:
    """Export raw events (JSON, CSV, Parquet) to the configured destinations or a folder."""


@export.command("run")
@click.option("--project", "project_ref", required=True, help="Project id or slug (siteId)")
@click.option("--since", help="Backfill from this moment (ISO 8601, UTC if no offset)")
@click.option("--until", help="Backfill up to this moment, excluded (default: now)")
@click.option(
    "--format", "fmt", type=click.Choice([f.value for f in ExportFormat]), help="Backfill format"
)
@click.option("--gzip/--no-gzip", "gzip_output", default=None, help="gzip JSON/CSV (backfill)")
@click.option(
    "--to",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the backfill to this folder only (no configuration needed)",
)
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON")
def run_command(
    project_ref: str,
    since: str | None,
    until: str | None,
    fmt: str | None,
    gzip_output: bool | None,
    folder: Path | None,
    as_json: bool,
) -> None:
    """Export now.

    Without --since: every closed window the destinations are waiting for (what the schedule
    does). With --since: one file for [since, until) to every destination, or to --to DIR;
    watermarks are not moved.
    """
    from gati.cli import load_settings, run_with_db
    from gati.projects.service import get_project

    start, end = _moment(since, "--since"), _moment(until, "--until")
    if start is None and (end is not None or fmt or gzip_output is not None or folder):
        raise click.UsageError("--until, --format, --gzip and --to go with --since")
    context = service.ExportContext.from_settings(load_settings())
    console = Console(stderr=True)

    async def go(db: Database) -> list[Any]:
        async with db.read_session() as session:
            project = await get_project(session, project_ref)
        if project is None:
            raise click.ClickException(f"project {project_ref!r} not found")
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("events"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            disable=as_json and not console.is_terminal,
        ) as progress:
            hooks = _Bar(progress).hooks()
            if start is None:
                return await service.run_scheduled_for_project(
                    db, context, project_id=project.id, progress=hooks
                )
            extra = [NamedDestination("folder", LocalFolderDestination(folder))] if folder else []
            run, rows = await service.start_manual_run(
                db,
                project=project,
                fmt=ExportFormat(fmt) if fmt else None,
                gzip_output=gzip_output,
                since=start,
                until=end or datetime.now(UTC),
                require_destinations=folder is None,
            )
            finished = await service.run_manual(
                db,
                context,
                run=run,
                site=project.slug,
                rows=[] if folder else rows,
                progress=hooks,
                extra=extra,
            )
            return [finished]

    runs = [_summary(run) for run in run_with_db(go)]
    if as_json:
        click.echo(json.dumps(runs, indent=2))
    elif not runs:
        click.echo("nothing to export: no closed window is waiting (see `gati export status`)")
    for run in runs if not as_json else []:
        click.echo(
            f"{run['window_start']} → {run['window_end']}  {run['status']}  "
            f"{run['rows']} events  {run['bytes']} bytes"
        )
        for destination in run["destinations"]:
            where = destination["key"] or "-"
            line = f"  {destination['role']}: {destination['status']} {where}"
            if destination["errors"]:
                line += f"  ({destination['errors'][-1]})"
            click.echo(line)
    if any(run["status"] != "succeeded" for run in runs):
        sys.exit(1)


@export.command("status")
@click.option("--project", "project_ref", required=True, help="Project id or slug (siteId)")
@click.option("--json", "as_json", is_flag=True)
def status_command(project_ref: str, as_json: bool) -> None:
    """Destinations (watermark, pending windows, errors), next run and the last runs."""
    from gati.cli import load_settings, run_with_db
    from gati.projects.service import get_project

    context = service.ExportContext.from_settings(load_settings())

    async def go(db: Database) -> dict[str, Any]:
        async with db.read_session() as session:
            project = await get_project(session, project_ref)
            if project is None:
                raise click.ClickException(f"project {project_ref!r} not found")
            status = await service.read_status(session, project, context, limit=10)
        return status.model_dump(mode="json")

    status = run_with_db(go)
    if as_json:
        click.echo(json.dumps(status, indent=2))
        return
    click.echo(
        f"{status['site']}: schedule {status['schedule']}, format {status['format']}, "
        f"next run {status['next_run_at'] or '-'}"
    )
    for d in status["destinations"]:
        click.echo(
            f"  {d['role']} {d['target']}: {d['state']}, watermark {d['watermark']}, "
            f"{d['pending_windows']} window(s) pending"
            + (f", last error: {d['last_error']}" if d["last_error"] else "")
        )
    for run in status["last_runs"]:
        click.echo(
            f"  run {run['id']} {run['trigger']} {run['window_start']} → {run['window_end']}: "
            f"{run['status']} {run['rows']} events"
        )
