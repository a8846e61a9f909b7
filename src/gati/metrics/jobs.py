"""The metrics rollup as a periodic job (in-process runner or `gati worker`)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from gati.db.engine import Database
from gati.jobs.registry import periodic_job
from gati.metrics.service import roll_up

log = logging.getLogger(__name__)


@periodic_job("metrics.rollup", every=timedelta(minutes=1))
async def metrics_rollup(db: Database, start: datetime, end: datetime) -> None:
    """The window only schedules the run: the job folds every committed point past the
    watermark (idempotent: a second run for the same window finds nothing new)."""
    folded = await roll_up(db)
    if folded:
        log.info("metrics rollup: folded %d points (window %s)", folded, start.isoformat())
