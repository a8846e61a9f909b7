"""Dialect helpers of web analytics (exhaustive branches, like :mod:`gati.db.dialect`, which
holds the local-time bucketing): session setup for the statistics. (The visit writer's advisory
locks are taken by the PostgreSQL function ``web_lock_and_load_visits``, migration web_0002.)
"""

from __future__ import annotations

from sqlalchemy import TextClause, text

from gati.db.engine import Dialect


def analytics_session_setup(dialect: Dialect) -> list[TextClause]:
    """Statements run at the start of a statistics read transaction. On PostgreSQL: one
    snapshot for all its statements (the rollups, the visitor key sets and the visits they are
    checked against must agree), and enough ``work_mem`` (transaction-local) for distinct
    counts and sorts over a month of events to stay in memory."""
    if dialect == "postgresql":
        return [
            text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"),
            text("SET LOCAL work_mem = '64MB'"),
        ]
    if dialect == "sqlite":
        return []
    raise AssertionError(dialect)
