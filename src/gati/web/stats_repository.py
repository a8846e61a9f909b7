"""SQL of the statistics API.

Two paths give the same numbers:

* **rollup path** (no filters, a time zone whose offsets are whole hours): page views, events,
  visits, bounces and visit duration from ``web_rollup_hourly`` (visits by their start hour),
  unique visitors from the per-hour visitor key sets of ``web_visitor_hours`` where they are
  current, else from that hour's ``web_sessions`` (see :mod:`gati.web.visitors`);
* **event path** (filters, breakdowns, anything else): events in the window matching the
  filters, joined to their visits, grouped per (dimension, visit) and then per dimension.

Visit metrics (visits, visitors, bounce rate, visit duration) count visits by their start
time on the rollup path and by their matching events on the event path; they differ only for a
visit that crosses the edge of the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    false,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from gati.db.dialect import json_text, local_timestamp, local_trunc
from gati.db.engine import Dialect
from gati.db.types import as_utc
from gati.web.dialect import analytics_session_setup
from gati.web.dimensions import Dimension, Filter, Operator, Scope
from gati.web.repository import (
    EVENTS,
    ROLLUP_COUNTERS,
    ROLLUPS,
    SESSIONS,
    VISITOR_HOURS,
    human_visits,
)
from gati.web.service import PAGEVIEW

DIRECT = "Direct / None"
NONE_LABEL = "(none)"


@dataclass(frozen=True, slots=True)
class Totals:
    visitors: int = 0
    visits: int = 0
    pageviews: int = 0
    events: int = 0
    bounces: int = 0
    duration: int = 0


@dataclass(frozen=True, slots=True)
class Bucketing:
    """How to turn a timestamp into a local bucket label."""

    unit: str
    tz: str
    offsets: Sequence[tuple[datetime, int]]


async def prepare_session(session: AsyncSession, dialect: Dialect) -> None:
    for statement in analytics_session_setup(dialect):
        await session.execute(statement)


def _bucket(dialect: Dialect, column: ColumnElement[Any], bucketing: Bucketing) -> Any:
    local = local_timestamp(dialect, column, tz=bucketing.tz, offsets=bucketing.offsets)
    return local_trunc(dialect, bucketing.unit, local)


def _column(dimension: Dimension, dialect: Dialect) -> ColumnElement[Any]:
    if dimension.is_property:
        return json_text(dialect, EVENTS.c.properties, dimension.column)
    table = EVENTS if dimension.scope is Scope.EVENT else SESSIONS
    return table.c[dimension.column]


def _null_label(dimension: Dimension) -> str:
    return DIRECT if dimension.name == "source" else NONE_LABEL


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _condition(item: Filter, dialect: Dialect) -> ColumnElement[bool]:
    column = _column(item.dimension, dialect)
    null_label = _null_label(item.dimension)
    wants_null = any(v in (null_label, "") for v in item.values)
    values = [v for v in item.values if v not in (null_label, "")]
    if item.operator in (Operator.EQ, Operator.NE):
        parts: list[ColumnElement[bool]] = []
        if values:
            parts.append(column.in_(values))
        if wants_null:
            parts.append(column.is_(None))
        matched = or_(*parts) if parts else false()
    else:
        matched = or_(*(column.ilike(f"%{_escape_like(v)}%", escape="\\") for v in item.values))
    if item.operator in (Operator.NE, Operator.NOT_CONTAINS):
        return or_(column.is_(None), ~matched) if not wants_null else ~matched
    return matched


def _pages_only(dimension: Dimension) -> bool:
    return dimension.name == "page"


def _event_query(
    dialect: Dialect,
    *,
    project_id: int,
    start: datetime,
    end: datetime,
    filters: Sequence[Filter],
    group: ColumnElement[Any] | None,
    pageviews_only: bool,
) -> Select[Any]:
    """One row per (group, visit) with that visit's matching pageviews and events."""
    is_pageview = case((EVENTS.c.event_type == PAGEVIEW, 1), else_=0)
    columns: list[Any] = [
        EVENTS.c.session_id.label("sid"),
        SESSIONS.c.visitor_key.label("vk"),
        SESSIONS.c.pageviews.label("spv"),
        SESSIONS.c.duration.label("sdur"),
        func.sum(is_pageview).label("pv"),
        func.count().label("ev"),
    ]
    group_by: list[Any] = [
        EVENTS.c.session_id,
        SESSIONS.c.visitor_key,
        SESSIONS.c.pageviews,
        SESSIONS.c.duration,
    ]
    if group is not None:
        columns.insert(0, group.label("dim"))
        group_by.insert(0, group)
    conditions: list[ColumnElement[bool]] = [
        EVENTS.c.project_id == project_id,
        EVENTS.c.timestamp >= start,
        EVENTS.c.timestamp < end,
        EVENTS.c.is_bot.is_(False),
    ]
    if pageviews_only:
        conditions.append(EVENTS.c.event_type == PAGEVIEW)
    for item in filters:
        if _pages_only(item.dimension):
            conditions.append(EVENTS.c.event_type == PAGEVIEW)
        conditions.append(_condition(item, dialect))
    return (
        select(*columns)
        .select_from(
            EVENTS.join(
                SESSIONS,
                and_(
                    SESSIONS.c.project_id == EVENTS.c.project_id,
                    SESSIONS.c.id == EVENTS.c.session_id,
                ),
            )
        )
        .where(*conditions)
        .group_by(*group_by)
    )


def _outer(inner: Select[Any], grouped: bool) -> Select[Any]:
    sub = inner.subquery("per_visit")
    bounce = case((sub.c.spv <= 1, 1), else_=0)
    columns: list[Any] = [
        func.count(func.distinct(sub.c.vk)).label("visitors"),
        func.count().label("visits"),
        func.coalesce(func.sum(sub.c.pv), 0).label("pageviews"),
        func.coalesce(func.sum(sub.c.ev), 0).label("events"),
        func.coalesce(func.sum(bounce), 0).label("bounces"),
        func.coalesce(func.sum(sub.c.sdur), 0).label("duration"),
    ]
    if grouped:
        return select(sub.c.dim, *columns).group_by(sub.c.dim)
    return select(*columns)


def _totals(row: Any) -> Totals:
    return Totals(
        visitors=int(row.visitors or 0),
        visits=int(row.visits or 0),
        pageviews=int(row.pageviews or 0),
        events=int(row.events or 0),
        bounces=int(row.bounces or 0),
        duration=int(row.duration or 0),
    )


# --- event path ------------------------------------------------------------------------------


async def event_totals(
    session: AsyncSession,
    dialect: Dialect,
    *,
    project_id: int,
    start: datetime,
    end: datetime,
    filters: Sequence[Filter],
) -> Totals:
    inner = _event_query(
        dialect,
        project_id=project_id,
        start=start,
        end=end,
        filters=filters,
        group=None,
        pageviews_only=False,
    )
    row = (await session.execute(_outer(inner, grouped=False))).one()
    return _totals(row)


async def event_series(
    session: AsyncSession,
    dialect: Dialect,
    *,
    project_id: int,
    start: datetime,
    end: datetime,
    filters: Sequence[Filter],
    bucketing: Bucketing,
) -> dict[str, Totals]:
    group = _bucket(dialect, EVENTS.c.timestamp, bucketing)
    inner = _event_query(
        dialect,
        project_id=project_id,
        start=start,
        end=end,
        filters=filters,
        group=group,
        pageviews_only=False,
    )
    rows = (await session.execute(_outer(inner, grouped=True))).all()
    return {str(row.dim): _totals(row) for row in rows}


async def breakdown(
    session: AsyncSession,
    dialect: Dialect,
    *,
    project_id: int,
    start: datetime,
    end: datetime,
    filters: Sequence[Filter],
    dimension: Dimension,
    limit: int,
    offset: int,
) -> list[tuple[str, Totals]]:
    inner = _event_query(
        dialect,
        project_id=project_id,
        start=start,
        end=end,
        filters=filters,
        group=_column(dimension, dialect),
        pageviews_only=_pages_only(dimension),
    )
    outer = _outer(inner, grouped=True).subquery("by_dim")
    stmt = (
        select(outer)
        .order_by(outer.c.visitors.desc(), outer.c.pageviews.desc(), outer.c.dim)
        .limit(limit)
        .offset(offset)
    )
    rows = (await session.execute(stmt)).all()
    label = _null_label(dimension)
    return [(label if row.dim is None else str(row.dim), _totals(row)) for row in rows]


# --- rollup path -----------------------------------------------------------------------------


def _rollup_conditions(project_id: int, start: datetime, end: datetime) -> list[Any]:
    return [ROLLUPS.c.project_id == project_id, ROLLUPS.c.hour >= start, ROLLUPS.c.hour < end]


@dataclass(frozen=True, slots=True)
class RollupHour:
    hour: datetime
    pageviews: int
    events: int
    visits: int
    bounces: int
    duration: int
    visit_changes: int


async def rollup_hours(
    session: AsyncSession, *, project_id: int, start: datetime, end: datetime
) -> list[RollupHour]:
    stmt = (
        select(ROLLUPS.c.hour, *(func.sum(ROLLUPS.c[name]) for name in ROLLUP_COUNTERS))
        .where(*_rollup_conditions(project_id, start, end))
        .group_by(ROLLUPS.c.hour)
    )
    return [
        RollupHour(as_utc(row[0]), *(int(v) for v in row[1:]))
        for row in await session.execute(stmt)
    ]


@dataclass(frozen=True, slots=True)
class StoredVisitorHour:
    version: int
    keys: bytes | None
    sketch: bytes | None


async def visitor_hours(
    session: AsyncSession,
    *,
    project_id: int,
    start: datetime,
    end: datetime,
    keys: bool,
    sketches: bool,
) -> dict[datetime, StoredVisitorHour]:
    """The stored visitor key sets and/or sketches of the hours in ``[start, end)``."""
    columns: list[Any] = [VISITOR_HOURS.c.hour, VISITOR_HOURS.c.version]
    columns.append(VISITOR_HOURS.c["keys"] if keys else literal(None).label("k"))
    columns.append(VISITOR_HOURS.c.sketch if sketches else literal(None).label("s"))
    stmt = select(*columns).where(
        VISITOR_HOURS.c.project_id == project_id,
        VISITOR_HOURS.c.hour >= start,
        VISITOR_HOURS.c.hour < end,
    )
    return {
        as_utc(row[0]): StoredVisitorHour(
            int(row[1]),
            bytes(row[2]) if row[2] is not None else None,
            bytes(row[3]) if row[3] is not None else None,
        )
        for row in await session.execute(stmt)
    }


async def visit_keys(
    session: AsyncSession, *, project_id: int, start: datetime, end: datetime
) -> list[tuple[datetime, int]]:
    """``(started_at, visitor_key)`` of the human visits that started in ``[start, end)``."""
    stmt = select(SESSIONS.c.started_at, SESSIONS.c.visitor_key).where(
        *human_visits(project_id, start, end)
    )
    return [(as_utc(row[0]), int(row[1])) for row in await session.execute(stmt)]


# --- realtime --------------------------------------------------------------------------------


async def realtime(session: AsyncSession, *, project_id: int, since: datetime) -> tuple[int, int]:
    stmt = select(
        func.count(func.distinct(EVENTS.c.visitor_key)),
        func.coalesce(func.sum(case((EVENTS.c.event_type == PAGEVIEW, 1), else_=0)), 0),
    ).where(
        EVENTS.c.project_id == project_id,
        EVENTS.c.timestamp >= since,
        EVENTS.c.is_bot.is_(False),
    )
    row = (await session.execute(stmt)).one()
    return int(row[0] or 0), int(row[1] or 0)
