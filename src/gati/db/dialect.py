"""Every difference between SQLite and PostgreSQL lives here, as small exhaustive functions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from itertools import pairwise
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    TextClause,
    and_,
    bindparam,
    case,
    false,
    func,
    literal,
    literal_column,
    or_,
    text,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import Insert

from gati.db.engine import Dialect


def insert_ignore(dialect: Dialect, table: Table, *, index_elements: Sequence[str]) -> Insert:
    """INSERT ... ON CONFLICT (index_elements) DO NOTHING."""
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(index_elements))
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(index_elements))
    raise AssertionError(dialect)


def upsert(
    dialect: Dialect,
    table: Table,
    *,
    index_elements: Sequence[str],
    set_: dict[str, Any] | None = None,
) -> Insert:
    """INSERT ... ON CONFLICT DO UPDATE. ``set_`` values may use ``excluded(dialect, table)``."""
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table)
    elif dialect == "sqlite":
        stmt = sqlite.insert(table)
    else:
        raise AssertionError(dialect)
    if not set_:
        return stmt.on_conflict_do_nothing(index_elements=list(index_elements))
    return stmt.on_conflict_do_update(index_elements=list(index_elements), set_=set_)


def keys_in(
    columns: Sequence[ColumnElement[Any]], keys: Sequence[tuple[Any, ...]]
) -> ColumnElement[bool]:
    """``(a, b[, c]) IN keys`` in a form both databases answer from an index on the columns.

    SQLite plans a row-value ``IN (VALUES ...)`` as a scan of the whole table (seen with
    ``EXPLAIN QUERY PLAN``: every group commit of /collect read all of ``web_sessions``). Grouped by
    the leading values instead — ``(a = 1 AND b IN (...)) OR (a = 2 AND b IN (...))`` — each
    branch is an index search on SQLite (MULTI-INDEX OR) and PostgreSQL (BitmapOr / ``= ANY``).
    """
    if not keys:
        return false()
    lead, last = columns[:-1], columns[-1]
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for key in keys:
        groups.setdefault(tuple(key[:-1]), []).append(key[-1])
    if len(groups) > _MAX_OR_BRANCHES:
        # SQLite parses n ORs n deep and refuses a depth over 1,000: past this many leading
        # values, the row-value form (correct everywhere; a scan on SQLite, rare in practice:
        # it takes a group commit naming hundreds of projects).
        return tuple_(*columns).in_(list(keys))
    return or_(
        *(
            and_(
                *(column == value for column, value in zip(lead, prefix, strict=True)),
                last.in_(values),
            )
            for prefix, values in groups.items()
        )
    )


_MAX_OR_BRANCHES = 500


def excluded(column: str) -> ColumnElement[Any]:
    """The proposed row's value inside ON CONFLICT DO UPDATE (same spelling on both dialects)."""
    return literal_column(f"excluded.{column}")


def date_trunc(dialect: Dialect, unit: str, column: ColumnElement[Any]) -> ColumnElement[Any]:
    """Truncate a UTC timestamp to minute/hour/day/month (text on SQLite, timestamptz on PostgreSQL)."""
    if dialect == "postgresql":
        return func.date_trunc(unit, column)
    if dialect == "sqlite":
        fmt = {
            "minute": "%Y-%m-%d %H:%M:00.000000",
            "hour": "%Y-%m-%d %H:00:00.000000",
            "day": "%Y-%m-%d 00:00:00.000000",
            "month": "%Y-%m-01 00:00:00.000000",
        }[unit]
        return func.strftime(fmt, column)
    raise AssertionError(dialect)


def float_list(dialect: Dialect, column: ColumnElement[Any]) -> ColumnElement[Any]:
    """Aggregate: every value of a float column in the group, read with ``float_list_value``
    (a ``float8[]`` on PostgreSQL; on SQLite a JSON array with 17 significant digits, so each
    value reads back exactly)."""
    if dialect == "postgresql":
        return func.array_agg(column)
    if dialect == "sqlite":
        return (
            literal_column("'['")
            .concat(func.group_concat(func.printf("%.17g", column), ","))
            .concat(literal_column("']'"))
        )
    raise AssertionError(dialect)


def float_list_value(value: Any) -> list[float]:
    return orjson.loads(value) if isinstance(value, str) else list(value)


def json_text(dialect: Dialect, column: ColumnElement[Any], key: str) -> ColumnElement[Any]:
    """``column ->> key`` as text."""
    if dialect == "postgresql":
        return column.op("->>")(key)
    if dialect == "sqlite":
        return func.json_extract(column, f'$."{key}"')
    raise AssertionError(dialect)


def epoch_ms(dialect: Dialect, column: ColumnElement[Any]) -> ColumnElement[Any]:
    """Milliseconds since the epoch of a timestamp column."""
    if dialect == "postgresql":
        return func.extract("epoch", column) * 1000
    if dialect == "sqlite":
        return (func.julianday(column) - 2440587.5) * 86400000.0
    raise AssertionError(dialect)


def least(dialect: Dialect, a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.least(a, b)
    if dialect == "sqlite":
        return func.min(a, b)
    raise AssertionError(dialect)


def greatest(dialect: Dialect, a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.greatest(a, b)
    if dialect == "sqlite":
        return func.max(a, b)
    raise AssertionError(dialect)


def json_merge(
    dialect: Dialect, base: ColumnElement[Any], patch: ColumnElement[Any]
) -> ColumnElement[Any]:
    """Shallow merge of two JSON objects (patch wins); NULL patch keeps base."""
    if dialect == "postgresql":
        return func.coalesce(
            func.coalesce(base, literal_column("'{}'::jsonb")).op("||")(patch), base
        )
    if dialect == "sqlite":
        return func.coalesce(func.json_patch(func.coalesce(base, "{}"), patch), base)
    raise AssertionError(dialect)


def interval_ms(
    dialect: Dialect, end: ColumnElement[Any], start: ColumnElement[Any]
) -> ColumnElement[Any]:
    """Milliseconds between two timestamp expressions (exact to the millisecond on SQLite)."""
    if dialect == "postgresql":
        return func.extract("epoch", end - start) * 1000
    if dialect == "sqlite":
        # Exact to the microsecond: whole seconds from strftime, then the stored fraction
        # (UTCDateTime stores 'YYYY-MM-DD HH:MM:SS.ffffff' on SQLite).
        seconds = func.strftime("%s", end) - func.strftime("%s", start)
        micros = func.substr(end, 21, 6) - func.substr(start, 21, 6)
        return seconds * 1000.0 + micros / 1000.0
    raise AssertionError(dialect)


async def max_committed_id(conn: Any, table: str, *, lock_timeout_ms: int = 5000) -> int:
    """The largest ``id`` of ``table`` such that no smaller id can still be committed later.

    PostgreSQL writers draw ids from a sequence before they commit, so a running transaction may
    hold a smaller id than the largest committed one. A SHARE lock waits for every transaction
    that is inserting into the table (they hold ROW EXCLUSIVE from before they draw ids) and
    briefly holds new inserts back; the max read under it is final. Call in a short transaction
    of its own; raises on ``lock_timeout_ms``. SQLite has one writer at a time: no lock needed.
    (The metrics rollup watermark; docs/decisions.md.)
    """
    dialect = conn.dialect.name
    if dialect == "postgresql":
        await conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
        await conn.exec_driver_sql(f"LOCK TABLE {table} IN SHARE MODE")
    elif dialect != "sqlite":
        raise AssertionError(dialect)
    value = (await conn.exec_driver_sql(f"SELECT COALESCE(MAX(id), 0) FROM {table}")).scalar()
    return int(value or 0)


def json_scalar_equals(
    dialect: Dialect, column: ColumnElement[Any], key: str, value: str | int | float | bool | None
) -> ColumnElement[bool]:
    """``column[key]`` equals the JSON scalar ``value``, type-exact ("3" is not 3, 1 is not true).

    A missing key never matches (not even ``None``). ``key`` is a top-level key without quotes
    or backslashes (callers validate it). PostgreSQL uses JSONB containment (``@>``).
    """
    if dialect == "postgresql":
        return column.op("@>")(bindparam(None, {key: value}, type_=postgresql.JSONB))
    if dialect == "sqlite":
        path = f'$."{key}"'
        kind = func.json_type(column, path)
        if value is None:
            return kind == "null"
        if isinstance(value, bool):
            return kind == ("true" if value else "false")
        if isinstance(value, int | float):
            return and_(kind.in_(("integer", "real")), func.json_extract(column, path) == value)
        return and_(kind == "text", func.json_extract(column, path) == value)
    raise AssertionError(dialect)


def advisory_xact_locks(dialect: Dialect, keys: Sequence[int]) -> TextClause | None:
    """A statement that takes transaction-scoped locks on 64-bit ``keys``, in sorted order (so two
    writers never deadlock), on PostgreSQL. ``None`` on SQLite: its single writer connection already
    serialises writers."""
    if dialect == "postgresql":
        return text(
            "SELECT count(pg_advisory_xact_lock(k)) FROM "
            "(SELECT DISTINCT unnest(CAST(:keys AS bigint[])) AS k ORDER BY 1) AS keys"
        ).bindparams(keys=sorted(set(keys)))
    if dialect == "sqlite":
        return None
    raise AssertionError(dialect)


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


@asynccontextmanager
async def snapshot_connection(
    engine: AsyncEngine, dialect: Dialect
) -> AsyncIterator[AsyncConnection]:
    """A read-only connection whose statements all see one snapshot (exports: count, then stream).

    PostgreSQL: a REPEATABLE READ READ ONLY transaction. SQLite (WAL): an explicit BEGIN, since the
    driver opens no transaction for SELECTs; the snapshot starts at the first read.
    """
    if dialect == "postgresql":
        async with engine.connect() as conn:
            conn = await conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            async with conn.begin():
                yield conn
        return
    if dialect == "sqlite":
        async with engine.connect() as conn:
            await conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                await conn.rollback()
        return
    raise AssertionError(dialect)


async def stream_partitions(
    conn: AsyncConnection, stmt: Select[Any], chunk_rows: int
) -> AsyncIterator[Sequence[Sequence[Any]]]:
    """The rows of ``stmt``, ``chunk_rows`` at a time, through a server-side cursor inside the
    connection's current transaction (exports of large windows).

    PostgreSQL: asyncpg's own cursor, without SQLAlchemy's per-row processing (2-3x faster); result
    processors are therefore NOT applied, so select plain types (``type_coerce``), not
    TypeDecorators. SQLite: SQLAlchemy's streaming result.
    """
    if conn.dialect.name == "postgresql":
        compiled = stmt.compile(dialect=conn.dialect)
        params = [compiled.params[name] for name in compiled.positiontup or ()]
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        cursor = await driver.cursor(str(compiled), *params)
        while True:
            rows = await cursor.fetch(chunk_rows)
            if not rows:
                return
            yield rows
    elif conn.dialect.name == "sqlite":
        result = await conn.stream(stmt.execution_options(yield_per=chunk_rows))
        try:
            async for partition in result.partitions(chunk_rows):
                yield partition
        finally:
            await result.close()
    else:
        raise AssertionError(conn.dialect.name)
