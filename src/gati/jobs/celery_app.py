"""Celery (broker: Redis) for multi-process deployments: ``gati worker`` and ``gati beat``.

The job functions are the same async functions the in-process runner calls
(:mod:`gati.jobs.registry`); Celery only decides *where* they run:

* ``gati beat`` sends ``gati.jobs.tick`` every ``JOBS_TICK_SECONDS`` (30 s).
* ``gati worker`` executes it: :func:`gati.jobs.registry.run_due` runs every due window of every
  registered job. Each window is claimed in the database (``job_runs``) before it runs, so two
  beats, two workers, or a worker plus an in-process runner never run the same window twice at
  once, and a window that already ran is not run again.
* ``gati.jobs.run_window`` runs one named window on demand (e.g. an export "now").

Tasks are acknowledged late (after they finish): a worker killed mid-job leaves the message to
be redelivered, which is safe because every job is idempotent for its window.

Each worker process keeps one event loop and one :class:`~gati.db.engine.Database`, created on its
first task (after the fork, so connections are never shared between processes).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from celery import Celery
from celery.signals import worker_process_shutdown

from gati.db.engine import Database
from gati.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

TICK_SECONDS = float(os.environ.get("JOBS_TICK_SECONDS", "30"))


def load_job_modules() -> None:
    """Register every job the server registers: building the app imports every domain router,
    and each router imports its jobs module."""
    from gati.app import create_app

    create_app(Settings())


class _Runtime:
    """One event loop and database per worker process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runner: asyncio.Runner | None = None
        self._db: Database | None = None
        self._pid: int | None = None

    def run(self, fn: Callable[[Database], Awaitable[T]]) -> T:
        with self._lock:
            if self._pid != os.getpid():
                settings = Settings()
                self._runner = asyncio.Runner()
                self._db = Database(settings.resolved_database_url, settings)
                self._pid = os.getpid()
                load_job_modules()
            assert self._runner is not None and self._db is not None
            db = self._db
            return self._runner.run(fn(db))  # type: ignore[arg-type]

    def close(self) -> None:
        with self._lock:
            if self._runner is not None and self._pid == os.getpid():
                if self._db is not None:
                    self._runner.run(self._db.dispose())
                self._runner.close()
            self._runner = None
            self._db = None
            self._pid = None


runtime = _Runtime()


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or Settings()
    broker = settings.redis_url or os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/0"
    app = Celery("gati", broker=broker, backend=broker, include=[__name__])
    app.conf.update(
        task_default_queue=os.environ.get("CELERY_QUEUE", "gati"),
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        result_expires=3600,
        broker_connection_retry_on_startup=True,
        timezone="UTC",
        enable_utc=True,
        beat_schedule={
            "gati-jobs-tick": {"task": "gati.jobs.tick", "schedule": TICK_SECONDS},
        },
    )
    return app


app = make_celery()


@app.task(name="gati.jobs.tick")
def tick() -> int:
    """Run every due window of every registered job; returns how many windows this call ran."""
    from gati.jobs.registry import run_due

    return runtime.run(run_due)


@app.task(name="gati.jobs.run_window")
def run_window(job: str, start: str, end: str) -> bool:
    """Run one window of one job (False when another scheduler already claimed it)."""
    from gati.jobs import registry

    spec = registry.REGISTRY.get(job)
    if spec is None:
        load_job_modules()
        spec = registry.REGISTRY.get(job)
    if spec is None:
        raise ValueError(f"unknown job {job!r}; registered: {sorted(registry.REGISTRY)}")
    window = (datetime.fromisoformat(start), datetime.fromisoformat(end))

    async def _run(db: Database) -> bool:
        return await registry.run_window(db, spec, *window)

    return runtime.run(_run)


@worker_process_shutdown.connect
def _close_runtime(**_: Any) -> None:
    runtime.close()
