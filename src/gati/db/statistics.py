"""First planner statistics for new PostgreSQL tables, without waiting for autovacuum.

A table PostgreSQL has never analyzed has no column statistics, and the planner then guesses
its size from its pages and the declared widths of its columns. Gati's wide rows (``varchar``
columns of a few hundred characters) make a table of 10,000 visits look like a hundred rows:
the /collect writer's visit lookup then filtered every visit of the project for each visitor
instead of searching the visitor index, 24 ms a call at 12,000 visits (docs/benchmarks.md).
Autovacuum analyzes a table once enough rows changed, but only on its next pass (up to
``autovacuum_naptime``, a minute by default), which is the whole first burst of a new install.

:class:`FirstStatistics` checks every few seconds for tables of this database that were never
analyzed and already hold :data:`MIN_ROWS` rows, and analyzes them once. After that, autovacuum
keeps the statistics current as usual; the check is one query on ``pg_stat_user_tables``.
"""

from __future__ import annotations

import logging

from sqlalchemy import text

from gati.db.engine import Database
from gati.jobs.periodic import PeriodicTask

log = logging.getLogger(__name__)

MIN_ROWS = 1_000

# Gati's own tables: those of the current schema that this role may analyze (owns).
_NEVER_ANALYZED = text(
    "SELECT s.schemaname, s.relname FROM pg_stat_user_tables AS s "
    "JOIN pg_class AS c ON c.oid = s.relid "
    "WHERE s.last_analyze IS NULL AND s.last_autoanalyze IS NULL "
    "AND s.n_live_tup + s.n_dead_tup >= :min_rows "
    "AND s.schemaname = current_schema() AND pg_has_role(c.relowner, 'MEMBER') "
    "ORDER BY s.relname"
)


async def analyze_new_tables(db: Database, *, min_rows: int = MIN_ROWS) -> list[str]:
    """ANALYZE each table that was never analyzed and holds ``min_rows`` rows; their names."""
    done: list[str] = []
    async with db.engine.connect() as conn:
        tables = (await conn.execute(_NEVER_ANALYZED, {"min_rows": min_rows})).all()
        quoted = conn.dialect.identifier_preparer.quote
        for schema, name in tables:
            await conn.exec_driver_sql(f"ANALYZE {quoted(schema)}.{quoted(name)}")
            done.append(name)
        await conn.commit()
    return done


class FirstStatistics(PeriodicTask):
    """The periodic check in a server process (PostgreSQL only)."""

    name = "first-statistics"

    def __init__(self, db: Database, *, every: float = 5.0) -> None:
        super().__init__(every=every, delay=every)
        self.db = db

    async def tick(self) -> None:
        analyzed = await analyze_new_tables(self.db)
        if analyzed:
            log.info("first statistics: analyzed %s", ", ".join(analyzed))
