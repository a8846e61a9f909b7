"""Background jobs: plain async functions of (database, window start, window end).

Register with ``@periodic_job(name, every=timedelta(...))``. The in-process runner (default, inside
``gati serve``) calls each job for every closed window ``[start, end)`` of length ``every`` since its
last successful window, recorded in the ``job_runs`` table. A job must be idempotent for a window
(running it twice for the same window must not double-count); the runner also takes a per-window
claim row, so two schedulers never run the same window of the same job at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gati.db.engine import Database
from gati.db.types import utcnow
from gati.jobs.models import JobRun
from gati.jobs.periodic import PeriodicTask

log = logging.getLogger(__name__)

JobFn = Callable[[Database, datetime, datetime], Awaitable[None]]


@dataclass(frozen=True)
class JobSpec:
    name: str
    every: timedelta
    fn: JobFn
    # How far back a first run goes (None: only the latest closed window).
    backfill: timedelta | None = None


REGISTRY: dict[str, JobSpec] = {}


def periodic_job(
    name: str, *, every: timedelta, backfill: timedelta | None = None
) -> Callable[[JobFn], JobFn]:
    def register(fn: JobFn) -> JobFn:
        REGISTRY[name] = JobSpec(name, every, fn, backfill)
        return fn

    return register


def window_floor(moment: datetime, every: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=moment.tzinfo)
    steps = (moment - epoch) // every
    return epoch + steps * every


def due_windows(
    spec: JobSpec, last_end: datetime | None, now: datetime, *, limit: int = 48
) -> list[tuple[datetime, datetime]]:
    latest_end = window_floor(now, spec.every)
    start = latest_end - (spec.backfill or spec.every) if last_end is None else last_end
    windows: list[tuple[datetime, datetime]] = []
    while start + spec.every <= latest_end and len(windows) < limit:
        windows.append((start, start + spec.every))
        start += spec.every
    return windows


async def claim_window(db: Database, name: str, start: datetime, end: datetime) -> bool:
    """Insert the claim row for (job, window). False if another scheduler already has it."""
    try:
        async with db.session() as session:
            session.add(JobRun(job=name, window_start=start, window_end=end, status="running"))
    except IntegrityError:
        return False
    return True


async def finish_window(
    db: Database, name: str, start: datetime, *, status: str, error: str | None = None
) -> None:
    async with db.session() as session:
        run = await session.get(JobRun, (name, start))
        if run is not None:
            run.status = status
            run.error = error
            run.finished_at = utcnow()


async def last_window_end(db: Database, name: str) -> datetime | None:
    async with db.read_session() as session:
        stmt = (
            select(JobRun.window_end)
            .where(JobRun.job == name, JobRun.status == "done")
            .order_by(JobRun.window_start.desc())
            .limit(1)
        )
        return (await session.execute(stmt)).scalar_one_or_none()


async def run_window(db: Database, spec: JobSpec, start: datetime, end: datetime) -> bool:
    """Run one window of a job exactly once across schedulers; True if this call ran it."""
    if not await claim_window(db, spec.name, start, end):
        return False
    try:
        await spec.fn(db, start, end)
    except Exception as exc:
        log.exception("job %s window %s failed", spec.name, start)
        # A failed window is released so that a later tick retries it.
        async with db.session() as session:
            run = await session.get(JobRun, (spec.name, start))
            if run is not None:
                await session.delete(run)
        raise RuntimeError(f"job {spec.name} failed for window {start}: {exc}") from exc
    await finish_window(db, spec.name, start, status="done")
    return True


async def run_due(db: Database, *, now: datetime | None = None) -> int:
    """Run every due window of every registered job once. Returns the number of windows run."""
    now = now or utcnow()
    ran = 0
    for spec in list(REGISTRY.values()):
        windows = due_windows(spec, await last_window_end(db, spec.name), now)
        for start, end in windows:
            try:
                if await run_window(db, spec, start, end):
                    ran += 1
            except RuntimeError:
                break  # keep order: do not skip past a failed window
    return ran


class InProcessRunner(PeriodicTask):
    """Ticks inside the server process (the default; off when `gati worker` runs the jobs)."""

    name = "jobs-runner"

    def __init__(self, db: Database, *, tick: float = 30.0) -> None:
        super().__init__(every=tick)
        self.db = db

    async def tick(self) -> None:
        await run_due(self.db)
