"""All SQL of the metrics domain. Every read starts from the caller's project ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gati.db.bulk import insert_returning_ids
from gati.db.dialect import (
    date_trunc,
    excluded,
    float_list,
    float_list_value,
    insert_ignore,
    json_text,
    keys_in,
    upsert,
)
from gati.db.engine import Dialect
from gati.db.types import as_utc, sqlite_timestamp, utcnow
from gati.metrics.aggregation import QueryPlan
from gati.metrics.buckets import HOUR, QUARTER
from gati.metrics.models import (
    MetricPoint,
    MetricQuarterRollup,
    MetricRollup,
    MetricRollupState,
    MetricSeries,
)
from gati.metrics.schemas import MetricPointIn

ROLLUP_STATE = "metrics"
QUARTER_STATE = "metrics_quarter"
# (state row name, step): hour rollups and quarter-hour rollups, each with its own watermark.
ROLLUP_LEVELS: tuple[tuple[str, timedelta], ...] = ((ROLLUP_STATE, HOUR), (QUARTER_STATE, QUARTER))
_CHUNK = 500
_POINT_COLUMNS = ("project_id", "series_id", "ts", "value", "client_id", "received_at")

series_t: Table = MetricSeries.__table__  # type: ignore[assignment]
points_t: Table = MetricPoint.__table__  # type: ignore[assignment]
rollups_t: Table = MetricRollup.__table__  # type: ignore[assignment]
quarters_t: Table = MetricQuarterRollup.__table__  # type: ignore[assignment]
state_t: Table = MetricRollupState.__table__  # type: ignore[assignment]
_LEVEL_TABLES = {ROLLUP_STATE: rollups_t, QUARTER_STATE: quarters_t}


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
) -> Select[Any]:
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
    """kind 0: a rollup row (hour or quarter hour); 1: raw points grouped by UTC minute
    (count/sum/min/max, and the ``values`` themselves when percentiles are asked).

    With percentiles asked: a quarter rollup carries its ``sketch``; an hour rollup carries its
    stored ``quantiles`` (p50, p95, p99; None when not stored) and no sketch, which
    ``rollup_sketches`` reads for the hours that a bucket merges with anything else."""

    kind: int
    start: datetime
    count: int
    sum: float
    min: float
    max: float
    sketch: bytes | None
    series_id: int = 0
    quantiles: tuple[float | None, float | None, float | None] | None = None
    values: list[float] | None = None


def _rollup_rows(
    table: Table,
    series_ids: list[int],
    ranges: Sequence[tuple[datetime, datetime]],
    with_values: bool,
) -> Select[Any]:
    where = and_(table.c.series_id.in_(series_ids), _in_ranges(table.c.bucket_start, ranges))
    if not with_values:
        return (
            select(
                table.c.bucket_start,
                func.sum(table.c["count"]),
                func.sum(table.c["sum"]),
                func.min(table.c["min"]),
                func.max(table.c["max"]),
            )
            .where(where)
            .group_by(table.c.bucket_start)
        )
    columns = [table.c.series_id, table.c.bucket_start]
    columns += [table.c[name] for name in ("count", "sum", "min", "max")]
    if table is rollups_t:
        columns += [table.c.p50, table.c.p95, table.c.p99]
    else:
        columns.append(table.c.sketch)
    return select(*columns).where(where)


async def aggregate_rows(
    conn: AsyncConnection,
    *,
    series_ids: list[int],
    plan: QueryPlan,
    with_values: bool,
) -> list[AggregateRow]:
    """Rollups for the plan's whole hours and quarter hours, plus raw points for the rest and
    for the tail that each level has not rolled up yet, grouped by UTC minute (with their
    values when percentiles are asked). ``conn`` must hold ONE snapshot for all
    statements (``snapshot_connection``): the rollup job cannot move a watermark between the
    reads, so no point is counted twice or missed."""
    rows: list[AggregateRow] = []
    if not series_ids:
        return rows
    dialect = _dialect(conn)
    watermarks = await get_watermarks(conn)
    levels = ((rollups_t, plan.rollup_ranges), (quarters_t, plan.quarter_ranges))
    for table, ranges in levels:
        if not ranges:
            continue
        result = await conn.execute(_rollup_rows(table, series_ids, ranges, with_values))
        if not with_values:
            for t, n, s, lo, hi in result:
                rows.append(
                    AggregateRow(0, as_utc(t), int(n), float(s), float(lo), float(hi), None)
                )
        elif table is rollups_t:
            for series, t, n, s, lo, hi, p50, p95, p99 in result:
                rows.append(AggregateRow(0, as_utc(t), n, s, lo, hi, None, series, (p50, p95, p99)))
        else:
            for series, t, n, s, lo, hi, sketch in result:
                rows.append(AggregateRow(0, as_utc(t), n, s, lo, hi, sketch, series))
    raw_parts: list[ColumnElement[bool]] = []
    if plan.raw_ranges:
        raw_parts.append(_in_ranges(points_t.c.ts, plan.raw_ranges))
    for (name, _), (_, ranges) in zip(ROLLUP_LEVELS, levels, strict=True):
        if ranges:
            # The tail: points past the level's watermark. The watermark is inlined (an integer
            # read above) so that the planner sees how few rows are past it and walks the
            # primary key.
            raw_parts.append(
                and_(
                    points_t.c.id > literal_column(str(int(watermarks[name]))),
                    _in_ranges(points_t.c.ts, ranges),
                )
            )
    for condition in raw_parts:
        minute = date_trunc(dialect, "minute", points_t.c.ts)
        columns = [
            minute,
            func.count(),
            func.sum(points_t.c.value),
            func.min(points_t.c.value),
            func.max(points_t.c.value),
        ]
        if with_values:
            columns.append(float_list(dialect, points_t.c.value))
        grouped = (
            select(*columns).where(points_t.c.series_id.in_(series_ids), condition).group_by(minute)
        )
        for t, n, s, lo, hi, *values in await conn.execute(grouped):
            if isinstance(t, str):
                t = datetime.fromisoformat(t)
            rows.append(
                AggregateRow(
                    1,
                    as_utc(t),
                    int(n),
                    float(s),
                    float(lo),
                    float(hi),
                    None,
                    values=float_list_value(values[0]) if values else None,
                )
            )
    return rows


async def aggregate_series(
    conn: AsyncConnection, *, project_ids: Sequence[int], name: str, tags: dict[str, str]
) -> list[int]:
    """Ids of the series that an aggregate merges."""
    statement = series_filter(_dialect(conn), project_ids, name, tags)
    return [int(series_id) for series_id in (await conn.execute(statement)).scalars()]


async def rollup_sketches(
    conn: AsyncConnection, series_ids: list[int], ranges: Sequence[tuple[datetime, datetime]]
) -> dict[tuple[int, datetime], bytes]:
    """The sketches of the hour rollups of these series in these ranges."""
    result = await conn.execute(
        select(rollups_t.c.series_id, rollups_t.c.bucket_start, rollups_t.c.sketch).where(
            rollups_t.c.series_id.in_(series_ids), _in_ranges(rollups_t.c.bucket_start, ranges)
        )
    )
    return {(series, as_utc(t)): sketch for series, t, sketch in result}


# ---- rollup job -------------------------------------------------------------------------------


async def lock_watermarks(conn: AsyncConnection) -> dict[str, int]:
    """Take the rollup lock (the state rows, always in the same order) for this transaction;
    return each level's watermark.

    An UPDATE locks the rows on PostgreSQL and takes the write lock on SQLite, so a second
    scheduler waits here and then sees the watermarks the first one committed.
    """
    dialect = _dialect(conn)
    now = utcnow()
    names = [name for name, _ in ROLLUP_LEVELS]
    await conn.execute(
        insert_ignore(dialect, state_t, index_elements=["name"]),
        [{"name": name, "watermark": 0, "updated_at": now} for name in names],
    )
    found: dict[str, int] = {}
    for name in names:
        result = await conn.execute(
            update(state_t)
            .where(state_t.c.name == name)
            .values(updated_at=now)
            .returning(state_t.c.watermark)
        )
        found[name] = int(result.scalar_one())
    return found


async def set_watermark(conn: AsyncConnection, name: str, watermark: int) -> None:
    await conn.execute(
        update(state_t)
        .where(state_t.c.name == name)
        .values(watermark=watermark, updated_at=utcnow())
    )


async def get_watermarks(conn: AsyncConnection | AsyncSession) -> dict[str, int]:
    """Each level's watermark (0 for a level that has not run yet)."""
    result = await conn.execute(select(state_t.c.name, state_t.c.watermark))
    stored = {name: int(watermark) for name, watermark in result}
    return {name: stored.get(name, 0) for name, _ in ROLLUP_LEVELS}


async def get_watermark(conn: AsyncConnection | AsyncSession) -> int:
    """The hour level's watermark."""
    return (await get_watermarks(conn))[ROLLUP_STATE]


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
    conn: AsyncConnection, level: str, keys: Sequence[tuple[int, datetime]]
) -> dict[tuple[int, datetime], tuple[int, float, float, float, bytes]]:
    table = _LEVEL_TABLES[level]
    found: dict[tuple[int, datetime], tuple[int, float, float, float, bytes]] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = list(keys[start : start + _CHUNK])
        result = await conn.execute(
            select(
                table.c.series_id,
                table.c.bucket_start,
                table.c["count"],
                table.c["sum"],
                table.c["min"],
                table.c["max"],
                table.c.sketch,
            ).where(keys_in((table.c.series_id, table.c.bucket_start), chunk))
        )
        for series_id, bucket, count, total, low, high, sketch in result:
            found[(series_id, as_utc(bucket))] = (count, total, low, high, sketch)
    return found


async def save_rollups(conn: AsyncConnection, level: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    table = _LEVEL_TABLES[level]
    columns = [name for name in rows[0] if name not in ("series_id", "bucket_start")]
    stmt = upsert(
        _dialect(conn),
        table,
        index_elements=["series_id", "bucket_start"],
        set_={column: excluded(column) for column in columns},
    )
    await conn.execute(stmt, rows)


async def max_point_id(conn: AsyncConnection) -> int:
    result = await conn.execute(select(func.coalesce(func.max(points_t.c.id), 0)))
    return int(result.scalar_one())
