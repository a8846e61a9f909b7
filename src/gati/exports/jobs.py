"""Scheduled exports as a periodic job (in-process runner or `gati worker`).

The job's own window only paces it: each run exports, for every project with a schedule, the
closed windows its destinations are waiting for (watermarks and leases make a second run for the
same window a no-op).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from gati.db.engine import Database
from gati.exports import service
from gati.jobs.registry import periodic_job
from gati.settings import Settings

log = logging.getLogger(__name__)

_context: service.ExportContext | None = None


def configure(context: service.ExportContext) -> None:
    """The server's settings (the worker builds its own from the environment)."""
    global _context
    _context = context


@periodic_job("exports.scheduled", every=timedelta(minutes=1))
async def scheduled_exports(db: Database, start: datetime, end: datetime) -> None:
    context = _context or service.ExportContext.from_settings(Settings())
    exported = await service.run_scheduled(db, context)
    if exported:
        log.info("exports: %d window(s) exported (tick %s)", exported, end.isoformat())
