"""Periodic work of error tracking: retention (registered with the jobs registry)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from gati.db.engine import Database
from gati.errors import service
from gati.jobs.registry import periodic_job
from gati.settings import Settings

log = logging.getLogger(__name__)


@periodic_job("errors.retention", every=timedelta(hours=1))
async def error_retention(db: Database, start: datetime, end: datetime) -> None:
    """Delete error events older than each project's retention (``error_retention_days`` or
    ``retention_days`` in the project's settings, else ``ERRORS_RETENTION_DAYS``), relative to
    the window's end. Idempotent: a second run for the same window finds nothing to delete."""
    deleted = await service.apply_retention(db, settings=Settings(), now=end)
    if any(deleted.values()):
        log.info("error retention: deleted %s events", sum(deleted.values()))
