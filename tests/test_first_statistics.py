"""gati.db.statistics: a PostgreSQL table that was never analyzed gets statistics once it holds
enough rows, and only once (autovacuum keeps them after that)."""

from __future__ import annotations

from sqlalchemy import text

from gati.db.engine import Database
from gati.db.statistics import analyze_new_tables


async def test_tables_never_analyzed_are_analyzed_once_they_have_rows(db: Database) -> None:
    if db.dialect != "postgresql":
        return  # SQLite has no autovacuum and no statistics until ANALYZE: nothing to do
    async with db.engine.connect() as conn:
        # 40 rows: below autovacuum's own threshold (50), so only the function analyzes it.
        await conn.execute(text("CREATE TABLE stats_probe_big (n int)"))
        await conn.execute(text("CREATE TABLE stats_probe_small (n int)"))
        await conn.execute(text("INSERT INTO stats_probe_big SELECT generate_series(1, 40)"))
        await conn.execute(text("INSERT INTO stats_probe_small SELECT generate_series(1, 5)"))
        # The row counts reach pg_stat_user_tables when this backend flushes its statistics,
        # at most once a second unless forced: forced at the end of this transaction.
        await conn.execute(text("SELECT pg_stat_force_next_flush()"))
        await conn.commit()

    analyzed = await analyze_new_tables(db, min_rows=20)
    assert "stats_probe_big" in analyzed and "stats_probe_small" not in analyzed
    async with db.engine.connect() as conn:
        last = await conn.scalar(
            text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'stats_probe_big'")
        )
        rows = await conn.scalar(
            text("SELECT reltuples FROM pg_class WHERE relname = 'stats_probe_big'")
        )
    assert last is not None and rows == 40
    assert "stats_probe_big" not in await analyze_new_tables(db, min_rows=20)
