"""All SQL of the metrics domain. Every read starts from the caller's project ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    func,
    literal_column,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gati.db.bulk import insert_returning_ids
from gati.db.dialect import date_trunc, excluded, insert_ignore, json_text, keys_in, upsert
from gati.db.engine import Dialect
from gati.db.types import as_utc, sqlite_timestamp, utcnow
from gati.metrics.aggregation import QueryPlan
from gati.metrics.models import MetricPoint, MetricRollup, MetricRollupState, MetricSeries
from gati.metrics.schemas import MetricPointIn

ROLLUP_STATE = "metrics"
_CHUNK = 500
_POINT_COLUMNS = ("project_id", "series_id", "ts", "value", "client_id", "received_at")

series_t: Table = MetricSeries.__table__  # type: ignore[assignment]
points_t: Table = MetricPoint.__table__  # type: ignore[assignment]
rollups_t: Table = MetricRollup.__table__  # type: ignore[assignment]
state_t: Table = MetricRollupState.__table__  # type: ignore[assignment]


def _dialect(conn: AsyncConnection | AsyncSession) -> Dialect:
    name = conn.get_bind().dialect.name if isinstance(conn, AsyncSession) else conn.dialect.name
    return "sqlite" if name == "sqlite" else "postgresql"


# ---- writes -----------------------------------------------------------------------------------


async def ensure_series(
    conn: AsyncConnection, keys: dict[tuple[int, str, str], dict[str, str]]
) -> dict[tuple[int, str, str], int]:
    """Series ids for ``{(project_id, name, tags_key): tags}``, creating the missing ones."""
    if not keys:
        return {}
    dialect = _dialect(conn)
    now = utcnow()
    rows = [
        {"project_id": p, "name": n, "tags_key": k, "tags": tags, "created_at": now}
        for (p, n, k), tags in keys.items()
    ]
    stmt = insert_ignore(dialect, series_t, index_elements=["project_id", "name", "tags_key"])
    await conn.execute(stmt, rows)
    found: dict[tuple[int, str, str], int] = {}
    wanted = list(keys)
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        result = await conn.execute(
            select(
                series_t.c.project_id, series_t.c.name, series_t.c.tags_key, series_t.c.id
            ).where(keys_in((series_t.c.project_id, series_t.c.name, series_t.c.tags_key), chunk))
        )
        for project_id, name, key, series_id in result:
            found[(project_id, name, key)] = series_id
    return found


async def existing_client_ids(
    conn: AsyncConnection, pairs: set[tuple[int, str]]
) -> dict[tuple[int, str], int]:
    found: dict[tuple[int, str], int] = {}
    wanted = list(pairs)
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        result = await conn.execute(
            select(points_t.c.project_id, points_t.c.client_id, points_t.c.id).where(
                keys_in((points_t.c.project_id, points_t.c.client_id), chunk)
            )
        )
        for project_id, client_id, point_id in result:
            found[(project_id, client_id)] = point_id
    return found


async def insert_points(
    conn: AsyncConnection, points: Sequence[MetricPointIn], series_ids: Sequence[int]
) -> list[int]:
    """Insert points (already de-duplicated) and return their ids in input order."""
    if not points:
        return []
    sqlite = conn.dialect.name == "sqlite"
    now = sqlite_timestamp(utcnow()) if sqlite else utcnow()
    rows = [
        (
            point.project_id,
            series_id,
            sqlite_timestamp(point.ts) if sqlite else point.ts,
            point.value,
            point.client_id,
            now,
        )
        for point, series_id in zip(points, series_ids, strict=True)
    ]
    return await insert_returning_ids(conn, points_t, _POINT_COLUMNS, rows)


# ---- reads ------------------------------------------------------------------------------------


def series_filter(
    dialect: Dialect, project_ids: Sequence[int], name: str | None, tags: dict[str, str]
) -> Select[tuple[int]]:
    """``SELECT id FROM metric_series`` of these projects, name and tag values."""
    conditions: list[ColumnElement[bool]] = [series_t.c.project_id.in_(list(project_ids))]
    if name is not None:
        conditions.append(series_t.c.name == name)
    for key, value in tags.items():
        conditions.append(json_text(dialect, series_t.c.tags, key) == value)
    return select(series_t.c.id).where(*conditions)


@dataclass(frozen=True, slots=True)
class PointRow:
    id: int
    project_id: int
    name: str
    tags: dict[str, str]
    ts: datetime
    value: float
    client_id: str | None
    received_at: datetime


def _point_columns() -> list[Any]:
    return [
        points_t.c.id,
        points_t.c.project_id,
        series_t.c.name,
        series_t.c.tags,
        points_t.c.ts,
        points_t.c.value,
        points_t.c.client_id,
        points_t.c.received_at,
    ]


def _to_row(row: Any) -> PointRow:
    return PointRow(
        id=row[0],
        project_id=row[1],
        name=row[2],
        tags=row[3] or {},
        ts=as_utc(row[4]),
        value=row[5],
        client_id=row[6],
        received_at=as_utc(row[7]),
    )


async def list_points(
    session: AsyncSession,
    *,
    project_ids: Sequence[int],
    name: str | None,
    tags: dict[str, str],
    start: datetime | None,
    end: datetime | None,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[PointRow]:
    """Newest first (timestamp, then id); ``after`` is the keyset of the previous page's last row."""
    dialect = _dialect(session)
    stmt = (
        select(*_point_columns())
        .join(series_t, series_t.c.id == points_t.c.series_id)
        .where(points_t.c.project_id.in_(list(project_ids)))
    )
    if name is not None or tags:
        stmt = stmt.where(
            points_t.c.series_id.in_(
                series_filter(dialect, project_ids, name, tags).scalar_subquery()
            )
        )
    if start is not None:
        stmt = stmt.where(points_t.c.ts >= start)
    if end is not None:
        stmt = stmt.where(points_t.c.ts < end)
    if after is not None:
        ts, point_id = after
        stmt = stmt.where(
            or_(points_t.c.ts < ts, and_(points_t.c.ts == ts, points_t.c.id < point_id))
        )
    stmt = stmt.order_by(points_t.c.ts.desc(), points_t.c.id.desc()).limit(limit)
    return [_to_row(row) for row in await session.execute(stmt)]


async def get_point(
    session: AsyncSession, *, project_ids: Sequence[int], point_id: int
) -> PointRow | None:
    stmt = (
        select(*_point_columns())
        .join(series_t, series_t.c.id == points_t.c.series_id)
        .where(points_t.c.id == point_id, points_t.c.project_id.in_(list(project_ids)))
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else _to_row(row)


async def latest_point(
    session: AsyncSession, *, project_ids: Sequence[int], name: str, tags: dict[str, str]
) -> PointRow | None:
    dialect = _dialect(session)
    stmt = (
        select(*_point_columns())
        .join(series_t, series_t.c.id == points_t.c.series_id)
        .where(
            points_t.c.series_id.in_(
                series_filter(dialect, project_ids, name, tags).scalar_subquery()
            )
        )
        .order_by(points_t.c.ts.desc(), points_t.c.id.desc())
        .limit(1)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else _to_row(row)


def _in_ranges(column: Any, ranges: Sequence[tuple[datetime, datetime]]) -> ColumnElement[bool]:
    return or_(*[and_(column >= low, column < high) for low, high in ranges])


@dataclass(frozen=True, slots=True)
class AggregateRow:
    """kind 0: an hour rollup (sketch bytes when asked); 1: raw points grouped by UTC minute
    (count/sum/min/max); 2: one raw point (for percentiles: value in ``sum``)."""

    kind: int
    start: datetime
    count: int
    sum: float
    min: float
    max: float
    sketch: bytes | None


async def aggregate_rows(
    conn: AsyncConnection,
    *,
    project_ids: Sequence[int],
    name: str,
    tags: dict[str, str],
    plan: QueryPlan,
    with_values: bool,
) -> list[AggregateRow]:
    """Rollups for the plan's whole hours, plus raw points for the rest and for the tail not yet
    rolled up. ``conn`` must hold ONE snapshot for all statements (``snapshot_connection``): the
    rollup job cannot move the watermark between the reads, so no point is counted twice or
    missed."""
    dialect = _dialect(conn)
    watermark = await get_watermark(conn)
    series_ids = list(
        (await conn.execute(series_filter(dialect, project_ids, name, tags))).scalars()
    )
    if not series_ids:
        return []
    rows: list[AggregateRow] = []
    if plan.rollup_ranges:
        in_rollups = and_(
            rollups_t.c.series_id.in_(series_ids),
            _in_ranges(rollups_t.c.bucket_start, plan.rollup_ranges),
        )
        if with_values:
            statement: Select[Any] = select(
                rollups_t.c.bucket_start,
                rollups_t.c["count"],
                rollups_t.c["sum"],
                rollups_t.c["min"],
                rollups_t.c["max"],
                rollups_t.c.sketch,
            ).where(in_rollups)
        else:
            statement = (
                select(
                    rollups_t.c.bucket_start,
                    func.sum(rollups_t.c["count"]),
                    func.sum(rollups_t.c["sum"]),
                    func.min(rollups_t.c["min"]),
                    func.max(rollups_t.c["max"]),
                    null(),
                )
                .where(in_rollups)
                .group_by(rollups_t.c.bucket_start)
            )
        for t, n, s, lo, hi, sk in await conn.execute(statement):
            rows.append(AggregateRow(0, as_utc(t), int(n), float(s), float(lo), float(hi), sk))
    raw_parts: list[ColumnElement[bool]] = []
    if plan.raw_ranges:
        raw_parts.append(_in_ranges(points_t.c.ts, plan.raw_ranges))
    if plan.rollup_ranges:
        # The tail: points past the watermark. The watermark is inlined (an integer read above)
        # so that the planner sees how few rows are past it and walks the primary key.
        raw_parts.append(
            and_(
                points_t.c.id > literal_column(str(int(watermark))),
                _in_ranges(points_t.c.ts, plan.rollup_ranges),
            )
        )
    for condition in raw_parts:
        in_raw = and_(points_t.c.series_id.in_(series_ids), condition)
        if with_values:
            for t, value in await conn.execute(
                select(points_t.c.ts, points_t.c.value).where(in_raw)
            ):
                rows.append(AggregateRow(2, as_utc(t), 1, value, value, value, None))
            continue
        minute = date_trunc(dialect, "minute", points_t.c.ts)
        grouped = (
            select(
                minute,
                func.count(),
                func.sum(points_t.c.value),
                func.min(points_t.c.value),
                func.max(points_t.c.value),
            )
            .where(in_raw)
            .group_by(minute)
        )
        for t, n, s, lo, hi in await conn.execute(grouped):
            if isinstance(t, str):
                t = datetime.fromisoformat(t)
            rows.append(AggregateRow(1, as_utc(t), int(n), float(s), float(lo), float(hi), None))
    return rows


# ---- rollup job -------------------------------------------------------------------------------


async def lock_watermark(conn: AsyncConnection) -> int:
    """Take the rollup lock (the state row) for this transaction; return the watermark.

    An UPDATE locks the row on PostgreSQL and takes the write lock on SQLite, so a second
    scheduler waits here and then sees the watermark the first one committed.
    """
    dialect = _dialect(conn)
    await conn.execute(
        insert_ignore(dialect, state_t, index_elements=["name"]),
        {"name": ROLLUP_STATE, "watermark": 0, "updated_at": utcnow()},
    )
    result = await conn.execute(
        update(state_t)
        .where(state_t.c.name == ROLLUP_STATE)
        .values(updated_at=utcnow())
        .returning(state_t.c.watermark)
    )
    return int(result.scalar_one())


async def set_watermark(conn: AsyncConnection, watermark: int) -> None:
    await conn.execute(
        update(state_t)
        .where(state_t.c.name == ROLLUP_STATE)
        .values(watermark=watermark, updated_at=utcnow())
    )


async def get_watermark(conn: AsyncConnection | AsyncSession) -> int:
    result = await conn.execute(select(state_t.c.watermark).where(state_t.c.name == ROLLUP_STATE))
    value = result.scalar_one_or_none()
    return int(value or 0)


async def points_after(
    conn: AsyncConnection, *, after_id: int, upto_id: int, limit: int
) -> list[tuple[int, int, datetime, float]]:
    """(id, series_id, ts, value) of points with after_id < id <= upto_id, by id."""
    result = await conn.execute(
        select(points_t.c.id, points_t.c.series_id, points_t.c.ts, points_t.c.value)
        .where(points_t.c.id > after_id, points_t.c.id <= upto_id)
        .order_by(points_t.c.id)
        .limit(limit)
    )
    return [(row[0], row[1], as_utc(row[2]), row[3]) for row in result]


async def load_rollups(
    conn: AsyncConnection, keys: Sequence[tuple[int, datetime]]
) -> dict[tuple[int, datetime], tuple[int, float, float, float, bytes]]:
    found: dict[tuple[int, datetime], tuple[int, float, float, float, bytes]] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = list(keys[start : start + _CHUNK])
        result = await conn.execute(
            select(
                rollups_t.c.series_id,
                rollups_t.c.bucket_start,
                rollups_t.c["count"],
                rollups_t.c["sum"],
                rollups_t.c["min"],
                rollups_t.c["max"],
                rollups_t.c.sketch,
            ).where(keys_in((rollups_t.c.series_id, rollups_t.c.bucket_start), chunk))
        )
        for series_id, bucket, count, total, low, high, sketch in result:
            found[(series_id, as_utc(bucket))] = (count, total, low, high, sketch)
    return found


async def save_rollups(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = _dialect(conn)
    stmt = upsert(
        dialect,
        rollups_t,
        index_elements=["series_id", "bucket_start"],
        set_={column: excluded(column) for column in ("count", "sum", "min", "max", "sketch")},
    )
    await conn.execute(stmt, rows)


async def max_point_id(conn: AsyncConnection) -> int:
    result = await conn.execute(select(func.coalesce(func.max(points_t.c.id), 0)))
    return int(result.scalar_one())
