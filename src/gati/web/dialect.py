"""Dialect helpers of web analytics (exhaustive branches, like :mod:`gati.db.dialect`):
local-time buckets and session setup for the statistics. (The visit writer's advisory locks
are taken by the PostgreSQL function ``web_lock_and_load_visits``, migration web_0002.)

They live here rather than in ``gati/db/dialect.py`` only to keep this domain's changes in its
own files; they have no web-specific logic and can move there as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import pairwise
from typing import Any

from sqlalchemy import ColumnElement, TextClause, case, func, literal, text

from gati.db.engine import Dialect


def local_timestamp(
    dialect: Dialect,
    column: ColumnElement[Any],
    *,
    tz: str,
    offsets: Sequence[tuple[datetime, int]],
) -> ColumnElement[Any]:
    """A UTC timestamp column as local wall-clock time in ``tz`` (naive), for :func:`local_trunc`.
    PostgreSQL converts with its own time zone database; SQLite has none, so ``offsets``
    (``[(from_utc, offset_seconds), ...]`` covering the queried window, oldest first) become a
    CASE over the DST transitions."""
    if dialect == "postgresql":
        return func.timezone(tz, column)
    if dialect == "sqlite":
        if len(offsets) <= 1:
            seconds: ColumnElement[Any] = literal(offsets[0][1] if offsets else 0)
        else:
            whens = [(column < start, previous[1]) for previous, (start, _) in pairwise(offsets)]
            seconds = case(*whens, else_=offsets[-1][1])
        return func.datetime(column, func.printf("%+d seconds", seconds))
    raise AssertionError(dialect)


def local_trunc(dialect: Dialect, unit: str, local: ColumnElement[Any]) -> ColumnElement[Any]:
    """Truncate a local timestamp from :func:`local_timestamp` to minute/hour/day/week (Monday)/
    month, as text ``YYYY-MM-DD HH:MM:SS`` on both dialects."""
    if unit not in ("minute", "hour", "day", "week", "month"):
        raise ValueError(unit)
    if dialect == "postgresql":
        return func.to_char(func.date_trunc(unit, local), "YYYY-MM-DD HH24:MI:SS")
    if dialect == "sqlite":
        if unit == "week":
            return func.strftime("%Y-%m-%d 00:00:00", local, "weekday 0", "-6 days")
        fmt = {
            "minute": "%Y-%m-%d %H:%M:00",
            "hour": "%Y-%m-%d %H:00:00",
            "day": "%Y-%m-%d 00:00:00",
            "month": "%Y-%m-01 00:00:00",
        }[unit]
        return func.strftime(fmt, local)
    raise AssertionError(dialect)


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
