"""Background jobs of web analytics."""

from __future__ import annotations

from datetime import datetime, timedelta

from gati.db.engine import Database
from gati.jobs.registry import periodic_job
from gati.web import visitors


@periodic_job("web.visitor_hours", every=timedelta(minutes=5))
async def refresh_visitor_hours(db: Database, start: datetime, end: datetime) -> None:
    """Bring every hour's visitor key set up to date (idempotent: the window does not matter;
    hours changed since the last run, including the current one, are rewritten)."""
    await visitors.refresh(db)
