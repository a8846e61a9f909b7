"""Export rules: configuration, scheduled windows (exactly once per destination), manual runs.

A destination's ``watermark`` is the start of the next window it needs. A scheduled run claims
the destinations waiting for the oldest closed window (a compare-and-set lease), writes the
window once, stores it at each of them, and moves each watermark past the window only once the
file and manifest are stored there. A failed destination keeps its watermark, so the same window
is retried on the next run and later windows wait: never skipped, never exported twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gati.db.engine import Database
from gati.db.types import as_utc, checked_utc, utcnow
from gati.exceptions import AppError
from gati.exports import repository as repo
from gati.exports.crypto import CredentialCipher, CredentialDecryptError
from gati.exports.destinations import (
    Destination,
    DestinationError,
    LocalFolderDestination,
    S3Destination,
    S3Options,
)
from gati.exports.models import ExportConfig, ExportDestination, ExportRun
from gati.exports.pipeline import (
    DestinationOutcome,
    ExportPart,
    NamedDestination,
    PartStream,
    WindowExport,
    export_window,
)
from gati.exports.retry import RetryPolicy
from gati.exports.schemas import (
    DestinationRead,
    DestinationStatus,
    ExportConfigIn,
    ExportConfigRead,
    ExportRunRead,
    ExportStatusRead,
    LocalDestinationIn,
    RunDestinationRead,
    S3DestinationIn,
)
from gati.exports.windows import Schedule, Window, closed_windows, floor_to, next_run_at
from gati.exports.writers import ExportFormat, ExportMetadata
from gati.projects import repository as projects
from gati.projects.models import Project
from gati.settings import Settings

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
HEARTBEAT_SECONDS = 30.0
STALE_RUN = timedelta(minutes=5)
ROLES = ("primary", "backup")


@dataclass(frozen=True, slots=True)
class ExportContext:
    """What the exporter needs from the settings, resolved once."""

    cipher: CredentialCipher
    local_root: Path
    spool_dir: Path
    settle: timedelta
    chunk_rows: int
    max_windows: int
    policy: RetryPolicy

    @classmethod
    def from_settings(cls, settings: Settings) -> ExportContext:
        data_dir = settings.gati_data_dir
        return cls(
            cipher=CredentialCipher.from_settings(
                encryption_key=settings.encryption_key, secret_key=settings.secret_key
            ),
            local_root=(settings.export_local_root or data_dir / "exports").expanduser().resolve(),
            spool_dir=(settings.export_spool_dir or data_dir / "export-spool").expanduser(),
            settle=timedelta(seconds=settings.export_settle_seconds),
            chunk_rows=settings.export_chunk_rows,
            max_windows=settings.export_max_windows_per_run,
            policy=RetryPolicy(
                attempts=settings.export_retry_attempts,
                initial_delay=settings.export_retry_initial_seconds,
                max_delay=settings.export_retry_max_seconds,
                jitter=settings.export_retry_initial_seconds,
            ),
        )


@dataclass(slots=True)
class Progress:
    """Callbacks for a progress display (the CLI's bar)."""

    on_window: Callable[[Window], None] | None = None
    on_part: Callable[[str, int | None], None] | None = None
    on_rows: Callable[[int], None] | None = None


# --- configuration ------------------------------------------------------------------------


def resolve_local_path(ctx: ExportContext, path: str, *, field: str) -> Path:
    """A folder inside EXPORT_LOCAL_ROOT: the API never writes elsewhere on the server."""
    root = ctx.local_root
    candidate = Path(path).expanduser()
    target = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not target.is_relative_to(root):
        raise AppError(
            422,
            "validation_error",
            f"{field}: local export folders must be inside EXPORT_LOCAL_ROOT ({root})",
            extra={"errors": [{"field": field, "message": "outside EXPORT_LOCAL_ROOT"}]},
        )
    return target


def build_destination(row: ExportDestination, ctx: ExportContext) -> Destination:
    options = row.options or {}
    if row.kind == "local":
        path = resolve_local_path(ctx, str(options.get("path", "")), field=f"{row.role}.path")
        return LocalFolderDestination(path, prefix=options.get("prefix"))
    if row.kind == "s3":
        credentials: dict[str, Any] = {}
        if row.credentials_encrypted:
            credentials = ctx.cipher.decrypt(row.credentials_encrypted)
        return S3Destination(
            S3Options(
                bucket=str(options.get("bucket", "")),
                prefix=str(options.get("prefix") or ""),
                region=options.get("region"),
                endpoint_url=options.get("endpoint_url"),
                path_style=bool(options.get("path_style", False)),
                access_key_id=credentials.get("access_key_id"),
                secret_access_key=credentials.get("secret_access_key"),
                session_token=credentials.get("session_token"),
            )
        )
    raise DestinationError(f"unknown destination type {row.kind!r}")


def describe_row(row: ExportDestination, ctx: ExportContext) -> str:
    try:
        return build_destination(row, ctx).describe()
    except (CredentialDecryptError, DestinationError, AppError) as exc:
        return f"{row.kind} (unusable: {exc})"


def _destination_read(row: ExportDestination, ctx: ExportContext) -> DestinationRead:
    return DestinationRead(
        role=row.role,
        type=row.kind,
        target=describe_row(row, ctx),
        options=dict(row.options or {}),
        has_credentials=row.credentials_encrypted is not None,
        watermark=row.watermark,
    )


async def read_config(
    session: AsyncSession, project: Project, ctx: ExportContext
) -> ExportConfigRead:
    config = await repo.get_config(session, project_id=project.id)
    rows = {row.role: row for row in await repo.list_destinations(session, project_id=project.id)}
    return ExportConfigRead(
        project_id=project.id,
        site=project.slug,
        configured=config is not None,
        format=ExportFormat(config.format) if config else ExportFormat.JSON,
        gzip=config.gzip if config else False,
        schedule=Schedule(config.schedule) if config else Schedule.OFF,
        primary=_destination_read(rows["primary"], ctx) if "primary" in rows else None,
        backup=_destination_read(rows["backup"], ctx) if "backup" in rows else None,
        updated_at=config.updated_at if config else None,
    )


def _initial_watermark(schedule: Schedule, now: datetime) -> datetime:
    return floor_to(schedule if schedule is not Schedule.OFF else Schedule.HOURLY, now)


def _target_of(row: ExportDestination) -> tuple[Any, ...]:
    """Where a destination's files land: a change means a new destination."""
    options = row.options or {}
    if row.kind == "local":
        return ("local", options.get("path"), options.get("prefix"))
    return (row.kind, options.get("bucket"), options.get("prefix"))


def _apply_destination(
    row: ExportDestination,
    body: LocalDestinationIn | S3DestinationIn,
    ctx: ExportContext,
    *,
    role: str,
    schedule: Schedule,
    now: datetime,
) -> None:
    before = _target_of(row)
    if isinstance(body, LocalDestinationIn):
        path = resolve_local_path(ctx, body.path, field=f"{role}.path")
        relative = path.relative_to(ctx.local_root).as_posix()
        row.kind = "local"
        row.options = {"path": "" if relative == "." else relative, "prefix": body.prefix}
        row.credentials_encrypted = None
    else:
        if row.kind != "s3":
            row.credentials_encrypted = None
        row.kind = "s3"
        row.options = {
            "bucket": body.bucket,
            "prefix": body.prefix,
            "region": body.region,
            "endpoint_url": body.endpoint_url,
            "path_style": body.path_style,
        }
        if {"access_key_id", "secret_access_key", "session_token"} & body.model_fields_set:
            if body.access_key_id and body.secret_access_key:
                row.credentials_encrypted = ctx.cipher.encrypt(
                    {
                        "access_key_id": body.access_key_id,
                        "secret_access_key": body.secret_access_key,
                        "session_token": body.session_token or None,
                    }
                )
            else:
                row.credentials_encrypted = None
    if row.watermark is None or _target_of(row) != before:
        # A new destination (or one pointed at another place) starts at ``start_from`` or at
        # the current window; an unchanged one keeps its watermark, whatever ``start_from``
        # says, so that re-sending a configuration never exports a window twice.
        row.watermark = (
            as_utc(body.start_from)
            if body.start_from is not None
            else _initial_watermark(schedule, now)
        )


async def write_config(
    session: AsyncSession,
    project: Project,
    body: ExportConfigIn,
    ctx: ExportContext,
    *,
    now: datetime | None = None,
) -> ExportConfigRead:
    now = now or utcnow()
    config = await repo.get_config(session, project_id=project.id)
    if config is None:
        config = ExportConfig(project_id=project.id)
        session.add(config)
    config.format = body.format.value
    config.gzip = body.gzip
    config.schedule = body.schedule.value
    config.updated_at = now
    existing = {r.role: r for r in await repo.list_destinations(session, project_id=project.id)}
    for role, wanted in (("primary", body.primary), ("backup", body.backup)):
        row = existing.get(role)
        if wanted is None:
            if row is not None:
                if row.lease_until is not None and row.lease_until > now:
                    raise AppError(
                        409,
                        "export_running",
                        f"The {role} destination is exporting a window; retry when it is done",
                    )
                await repo.delete_destination(session, project_id=project.id, role=role)
            continue
        if row is None:
            row = ExportDestination(
                project_id=project.id, role=role, kind=wanted.type, consecutive_failures=0
            )
            session.add(row)
        _apply_destination(row, wanted, ctx, role=role, schedule=body.schedule, now=now)
        row.last_error = None
        row.consecutive_failures = 0
        row.updated_at = now
    await session.flush()
    return await read_config(session, project, ctx)


# --- running a window ---------------------------------------------------------------------


def _parts(
    db: Database, ctx: ExportContext, *, project_id: int, site: str, start: datetime, end: datetime
) -> list[ExportPart]:
    def opener(source: repo.EventSource) -> Callable[[], Any]:
        @asynccontextmanager
        async def _open() -> AsyncIterator[PartStream]:
            async with repo.open_window_stream(
                db,
                source,
                project_id=project_id,
                site=site,
                start=start,
                end=end,
                chunk_rows=ctx.chunk_rows,
            ) as stream:
                yield PartStream(columns=stream.columns, count=stream.count, chunks=stream.chunks)

        return _open

    return [
        ExportPart(
            name=source.name,
            suffix=source.suffix,
            open=opener(source),
            # The web events file is always written (an empty window is a fact worth stating);
            # the product events file only when the window has some.
            skip_when_empty=source.suffix is not None,
            extra_metadata={"site_id": site, "source": source.table_name},
        )
        for source in repo.SOURCES.values()
    ]


def _new_export_id() -> str:
    return f"exp_{secrets.token_hex(8)}"


@dataclass(frozen=True, slots=True)
class _Target:
    destination_id: int | None
    role: str
    kind: str
    named: NamedDestination | None
    error: str | None = None


def _targets(
    rows: Sequence[ExportDestination], ctx: ExportContext, extra: Sequence[NamedDestination]
) -> list[_Target]:
    targets = []
    for row in rows:
        try:
            named = NamedDestination(row.role, build_destination(row, ctx))
            targets.append(_Target(row.id, row.role, row.kind, named))
        except (CredentialDecryptError, DestinationError, AppError) as exc:
            detail = exc.detail if isinstance(exc, AppError) else str(exc)
            targets.append(_Target(row.id, row.role, row.kind, None, detail))
    targets += [_Target(None, n.name, n.destination.kind, n) for n in extra]
    return targets


def _run_destinations(
    targets: Sequence[_Target], outcomes: dict[str, DestinationOutcome]
) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for target in targets:
        entry: dict[str, Any] = {
            "destination_id": target.destination_id,
            "role": target.role,
            "type": target.kind,
        }
        outcome = outcomes.get(target.role)
        if outcome is None:
            entry.update(
                status="failed",
                attempts=0,
                errors=[target.error or "not attempted"],
                key=None,
                manifest_key=None,
            )
        else:
            entry.update(
                status="succeeded" if outcome.ok else "failed",
                attempts=outcome.attempts,
                errors=outcome.errors,
                key=outcome.key,
                keys=outcome.keys,
                manifest_key=outcome.manifest_key,
            )
        entries.append(entry)
    return entries


async def _heartbeat(
    db: Database, *, run_id: int, destination_ids: Sequence[int], owner: str | None
) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        try:
            async with db.session() as session:
                now = utcnow()
                await repo.touch_run(session, run_id=run_id, now=now)
                if owner is not None and destination_ids:
                    await repo.renew_leases(
                        session,
                        destination_ids=destination_ids,
                        owner=owner,
                        lease_until=now + LEASE,
                    )
        except Exception:  # keep exporting; a missed beat only shortens the lease
            log.warning("export heartbeat failed", exc_info=True)


async def _start_run(
    db: Database,
    *,
    project_id: int,
    trigger: str,
    fmt: ExportFormat,
    gzip_output: bool,
    window: Window,
) -> ExportRun:
    async with db.session() as session:
        run = ExportRun(
            project_id=project_id,
            export_id=_new_export_id(),
            trigger=trigger,
            format=fmt.value,
            gzip=gzip_output,
            window_start=window.start,
            window_end=window.end,
            status="running",
            destinations=[],
        )
        return await repo.add_run(session, run)


async def execute_window(
    db: Database,
    ctx: ExportContext,
    *,
    run: ExportRun,
    site: str,
    rows: Sequence[ExportDestination],
    owner: str | None,
    progress: Progress | None = None,
    extra: Sequence[NamedDestination] = (),
) -> tuple[ExportRun, dict[int, DestinationOutcome]]:
    """Write the run's window once and store it at each destination; record the outcome.

    ``extra``: destinations that are not stored (``gati export run --to DIR``)."""
    window = Window(run.window_start, run.window_end)
    fmt = ExportFormat(run.format)
    targets = _targets(rows, ctx, extra)
    usable = [target.named for target in targets if target.named is not None]
    heartbeat = asyncio.create_task(
        _heartbeat(db, run_id=run.id, destination_ids=[r.id for r in rows], owner=owner)
    )
    result: WindowExport | None = None
    error: str | None = None
    try:
        if progress and progress.on_window:
            progress.on_window(window)
        if usable:
            result = await export_window(
                export_id=run.export_id,
                site=site,
                fmt=fmt,
                gzip_output=run.gzip,
                parts=_parts(
                    db,
                    ctx,
                    project_id=run.project_id,
                    site=site,
                    start=window.start,
                    end=window.end,
                ),
                metadata=ExportMetadata(
                    export_id=run.export_id,
                    export_time=utcnow(),
                    start=window.start,
                    end=window.end,
                ),
                destinations=usable,
                policy=ctx.policy,
                spool_dir=ctx.spool_dir,
                on_part=progress.on_part if progress else None,
                on_progress=progress.on_rows if progress else None,
            )
    except Exception as exc:
        log.exception("export %s of project %s failed", run.export_id, run.project_id)
        error = f"{type(exc).__name__}: {exc}"
    finally:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
    outcomes = {o.name: o for o in result.outcomes} if result else {}
    by_id = {row.id: outcomes[row.role] for row in rows if row.role in outcomes}
    succeeded = sum(1 for o in outcomes.values() if o.ok)
    if error is None and succeeded == len(targets):
        status = "succeeded"
    elif succeeded:
        status = "partial"
    else:
        status = "failed"
    if error is None and not succeeded:
        error = "; ".join(
            f"{t.role}: {(outcomes[t.role].errors or ['failed'])[-1]}"
            if t.role in outcomes
            else f"{t.role}: {t.error}"
            for t in targets
        )
    async with db.session() as session:
        stored = await session.get(ExportRun, run.id)
        assert stored is not None
        stored.status = status
        stored.error = error
        stored.finished_at = utcnow()
        stored.heartbeat_at = stored.finished_at
        stored.destinations = _run_destinations(targets, outcomes)
        if result is not None:
            stored.rows = result.rows
            stored.bytes = result.bytes
            stored.sha256 = result.write.sha256 if result.files else None
            stored.manifest = result.manifest.as_dict()
        run = stored
    return run, by_id


async def run_scheduled_for_project(
    db: Database,
    ctx: ExportContext,
    *,
    project_id: int,
    now: datetime | None = None,
    owner: str | None = None,
    progress: Progress | None = None,
) -> list[ExportRun]:
    """Export every closed window each destination is waiting for (oldest first)."""
    now = now or utcnow()
    owner = owner or uuid.uuid4().hex
    runs: list[ExportRun] = []
    failed: set[int] = set()
    for _ in range(ctx.max_windows):
        async with db.read_session() as session:
            project = await projects.get_by_id(session, project_id)
            config = await repo.get_config(session, project_id=project_id)
            rows = await repo.list_destinations(session, project_id=project_id)
        if project is None or config is None or config.schedule == Schedule.OFF.value:
            break
        schedule = Schedule(config.schedule)
        clock = utcnow()
        pending: dict[Window, list[ExportDestination]] = {}
        for row in rows:
            if row.id in failed or row.watermark is None:
                continue
            if row.lease_until is not None and row.lease_until > clock:
                continue  # another exporter holds it
            window = next(
                closed_windows(
                    schedule, watermark=row.watermark, now=now, settle=ctx.settle, limit=1
                ),
                None,
            )
            if window is not None:
                pending.setdefault(window, []).append(row)
        if not pending:
            break
        window = min(pending)
        claimed: list[ExportDestination] = []
        async with db.session() as session:
            for row in pending[window]:
                assert row.watermark is not None
                if await repo.claim_destination(
                    session,
                    destination_id=row.id,
                    watermark=row.watermark,
                    owner=owner,
                    now=clock,
                    lease_until=clock + LEASE,
                ):
                    claimed.append(row)
        if not claimed:
            break
        run = await _start_run(
            db,
            project_id=project_id,
            trigger="scheduled",
            fmt=ExportFormat(config.format),
            gzip_output=config.gzip,
            window=window,
        )
        run, outcomes = await execute_window(
            db, ctx, run=run, site=project.slug, rows=claimed, owner=owner, progress=progress
        )
        async with db.session() as session:
            for row in claimed:
                outcome = outcomes.get(row.id)
                if outcome is not None and outcome.ok:
                    await repo.advance_watermark(
                        session,
                        destination_id=row.id,
                        owner=owner,
                        expected=window.start,
                        new_watermark=window.end,
                        now=utcnow(),
                    )
                else:
                    failed.add(row.id)
                    message = (
                        outcome.errors[-1]
                        if outcome is not None and outcome.errors
                        else run.error or "export failed"
                    )
                    await repo.record_failure(
                        session, destination_id=row.id, owner=owner, error=message
                    )
        runs.append(run)
    return runs


async def run_scheduled(db: Database, ctx: ExportContext, *, now: datetime | None = None) -> int:
    """Every project with a schedule: export its closed windows. Returns the windows run."""
    async with db.read_session() as session:
        project_ids = await repo.list_scheduled_project_ids(session)
    total = 0
    for project_id in project_ids:
        try:
            total += len(await run_scheduled_for_project(db, ctx, project_id=project_id, now=now))
        except Exception:
            log.exception("scheduled export of project %s failed", project_id)
    return total


# --- manual runs ----------------------------------------------------------------------------


async def start_manual_run(
    db: Database,
    *,
    project: Project,
    fmt: ExportFormat | None,
    gzip_output: bool | None,
    since: datetime,
    until: datetime,
    require_destinations: bool = True,
) -> tuple[ExportRun, list[ExportDestination]]:
    """Validate a backfill of ``[since, until)`` and record its run (status ``running``).

    ``require_destinations=False``: the caller brings its own (``gati export run --to``)."""
    try:
        since, until = checked_utc(since), checked_utc(until)
    except ValueError as exc:
        raise AppError(422, "validation_error", f"since/until: {exc}") from None
    if until <= since:
        raise AppError(422, "validation_error", "until: must be after since")
    async with db.read_session() as session:
        config = await repo.get_config(session, project_id=project.id)
        rows = await repo.list_destinations(session, project_id=project.id)
    if require_destinations and (config is None or not rows):
        raise AppError(
            409,
            "export_not_configured",
            "This project has no export destination; set one with PUT /export/config",
        )
    fmt = fmt or (ExportFormat(config.format) if config else ExportFormat.JSON)
    configured_gzip = config.gzip if config else False
    gzip_value = configured_gzip if gzip_output is None else gzip_output
    if fmt is ExportFormat.PARQUET:
        if gzip_output:
            raise AppError(422, "validation_error", "gzip: applies to json and csv, not parquet")
        gzip_value = False
    run = await _start_run(
        db,
        project_id=project.id,
        trigger="manual",
        fmt=fmt,
        gzip_output=gzip_value,
        window=Window(since, until),
    )
    return run, rows


async def run_manual(
    db: Database,
    ctx: ExportContext,
    *,
    run: ExportRun,
    site: str,
    rows: Sequence[ExportDestination],
    progress: Progress | None = None,
    extra: Sequence[NamedDestination] = (),
) -> ExportRun:
    """A backfill: the window goes to every destination; watermarks are not touched."""
    finished, _ = await execute_window(
        db, ctx, run=run, site=site, rows=rows, owner=None, progress=progress, extra=extra
    )
    return finished


# --- reading runs and status -----------------------------------------------------------------


def run_read(run: ExportRun, *, now: datetime | None = None) -> ExportRunRead:
    status = run.status
    if status == "running" and (now or utcnow()) - run.heartbeat_at > STALE_RUN:
        status = "interrupted"
    return ExportRunRead(
        id=run.id,
        export_id=run.export_id,
        trigger=run.trigger,
        format=run.format,
        gzip=run.gzip,
        window_start=run.window_start,
        window_end=run.window_end,
        status=status,
        rows=run.rows,
        bytes=run.bytes,
        sha256=run.sha256,
        destinations=[
            RunDestinationRead(
                role=d.get("role", ""),
                type=d.get("type", ""),
                status=d.get("status", ""),
                attempts=int(d.get("attempts", 0)),
                errors=list(d.get("errors", [])),
                key=d.get("key"),
                manifest_key=d.get("manifest_key"),
            )
            for d in run.destinations or []
        ],
        manifest=run.manifest,
        error=run.error,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


async def get_run(session: AsyncSession, *, project_id: int, run_id: int) -> ExportRunRead:
    run = await repo.get_run(session, project_id=project_id, run_id=run_id)
    if run is None:
        raise AppError(404, "export_run_not_found", f"Export run {run_id} does not exist")
    return run_read(run)


async def read_status(
    session: AsyncSession,
    project: Project,
    ctx: ExportContext,
    *,
    now: datetime | None = None,
    limit: int = 20,
) -> ExportStatusRead:
    now = now or utcnow()
    config = await repo.get_config(session, project_id=project.id)
    rows = await repo.list_destinations(session, project_id=project.id)
    runs = await repo.list_runs(session, project_id=project.id, limit=limit)
    schedule = Schedule(config.schedule) if config else Schedule.OFF
    destinations = []
    for row in rows:
        pending = 0
        if schedule is not Schedule.OFF and row.watermark is not None:
            pending = sum(
                1
                for _ in closed_windows(
                    schedule, watermark=row.watermark, now=now, settle=ctx.settle, limit=10_000
                )
            )
        if row.lease_until is not None and row.lease_until > now:
            state = "running"
        elif row.consecutive_failures:
            state = "failing"
        elif pending:
            state = "behind"
        else:
            state = "up_to_date"
        destinations.append(
            DestinationStatus(
                role=row.role,
                type=row.kind,
                target=describe_row(row, ctx),
                state=state,
                watermark=row.watermark,
                pending_windows=pending,
                last_attempt_at=row.last_attempt_at,
                last_success_at=row.last_success_at,
                last_error=row.last_error,
                consecutive_failures=row.consecutive_failures,
            )
        )
    errors = [f"{row.role}: {row.last_error}" for row in rows if row.last_error]
    errors += [
        f"run {run.id} ({run.window_start.isoformat()}): {run.error}"
        for run in runs
        if run.error and run.status != "succeeded"
    ]
    return ExportStatusRead(
        project_id=project.id,
        site=project.slug,
        configured=config is not None,
        schedule=schedule,
        format=ExportFormat(config.format) if config else ExportFormat.JSON,
        next_run_at=(
            None
            if not rows or schedule is Schedule.OFF
            else now
            if any(d.pending_windows for d in destinations)
            else next_run_at(schedule, now=now, settle=ctx.settle)
        ),
        destinations=destinations,
        last_runs=[run_read(run, now=now) for run in runs],
        errors=errors,
    )
