"""All SQL of exports: configuration, destinations (watermarks, leases), runs, event streams."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
    and_,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator, TypeEngine

from gati.db.base import Base
from gati.db.dialect import snapshot_connection, stream_partitions
from gati.db.engine import Database
from gati.exports.columns import ColumnKind, ExportColumn
from gati.exports.models import ExportConfig, ExportDestination, ExportRun
from gati.exports.writers import RowChunk

# --- configuration ------------------------------------------------------------------------


async def get_config(session: AsyncSession, *, project_id: int) -> ExportConfig | None:
    return await session.get(ExportConfig, project_id)


async def list_destinations(session: AsyncSession, *, project_id: int) -> list[ExportDestination]:
    stmt = (
        select(ExportDestination)
        .where(ExportDestination.project_id == project_id)
        .order_by(ExportDestination.role.desc())  # primary before backup
    )
    return list((await session.execute(stmt)).scalars())


async def delete_destination(session: AsyncSession, *, project_id: int, role: str) -> None:
    await session.execute(
        delete(ExportDestination).where(
            ExportDestination.project_id == project_id, ExportDestination.role == role
        )
    )


async def list_scheduled_project_ids(session: AsyncSession) -> list[int]:
    stmt = (
        select(ExportConfig.project_id)
        .where(ExportConfig.schedule != "off")
        .order_by(ExportConfig.project_id)
    )
    return list((await session.execute(stmt)).scalars())


# --- leases and watermarks -----------------------------------------------------------------


async def claim_destination(
    session: AsyncSession,
    *,
    destination_id: int,
    watermark: datetime,
    owner: str,
    now: datetime,
    lease_until: datetime,
) -> bool:
    """Compare-and-set: take the lease if the watermark is still ``watermark`` and nobody holds
    a live lease. Exactly one of two concurrent exporters gets ``True``."""
    result = await session.execute(
        update(ExportDestination)
        .where(
            ExportDestination.id == destination_id,
            ExportDestination.watermark == watermark,
            or_(ExportDestination.lease_until.is_(None), ExportDestination.lease_until < now),
        )
        .values(lease_owner=owner, lease_until=lease_until, last_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def renew_leases(
    session: AsyncSession, *, destination_ids: Sequence[int], owner: str, lease_until: datetime
) -> None:
    await session.execute(
        update(ExportDestination)
        .where(ExportDestination.id.in_(destination_ids), ExportDestination.lease_owner == owner)
        .values(lease_until=lease_until)
        .execution_options(synchronize_session=False)
    )


async def advance_watermark(
    session: AsyncSession,
    *,
    destination_id: int,
    owner: str,
    expected: datetime,
    new_watermark: datetime,
    now: datetime,
) -> bool:
    """Move the watermark past a window stored at this destination and release the lease."""
    result = await session.execute(
        update(ExportDestination)
        .where(
            ExportDestination.id == destination_id,
            ExportDestination.lease_owner == owner,
            ExportDestination.watermark == expected,
        )
        .values(
            watermark=new_watermark,
            lease_owner=None,
            lease_until=None,
            last_success_at=now,
            last_error=None,
            consecutive_failures=0,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def record_failure(
    session: AsyncSession, *, destination_id: int, owner: str, error: str
) -> None:
    """Keep the watermark (the window is retried), release the lease, remember the error."""
    await session.execute(
        update(ExportDestination)
        .where(ExportDestination.id == destination_id, ExportDestination.lease_owner == owner)
        .values(
            lease_owner=None,
            lease_until=None,
            last_error=error,
            consecutive_failures=ExportDestination.consecutive_failures + 1,
        )
        .execution_options(synchronize_session=False)
    )


# --- runs ---------------------------------------------------------------------------------


async def add_run(session: AsyncSession, run: ExportRun) -> ExportRun:
    session.add(run)
    await session.flush()
    return run


async def get_run(session: AsyncSession, *, project_id: int, run_id: int) -> ExportRun | None:
    run = await session.get(ExportRun, run_id)
    return run if run is not None and run.project_id == project_id else None


async def list_runs(session: AsyncSession, *, project_id: int, limit: int) -> list[ExportRun]:
    stmt = (
        select(ExportRun)
        .where(ExportRun.project_id == project_id)
        .order_by(ExportRun.started_at.desc(), ExportRun.id.desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def touch_run(session: AsyncSession, *, run_id: int, now: datetime) -> None:
    await session.execute(
        update(ExportRun)
        .where(ExportRun.id == run_id)
        .values(heartbeat_at=now)
        .execution_options(synchronize_session=False)
    )


# --- event sources ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventSource:
    """A table of raw events exported per window of ``received_at`` (server clock)."""

    name: str
    table_name: str
    # The window's file is ``{start}-{end}.{ext}`` (None) or ``{start}-{end}.{suffix}.{ext}``.
    suffix: str | None
    # Column renames towards the seed's export shape.
    renames: dict[str, str] = field(default_factory=dict)
    window_column: str = "received_at"


SOURCES: dict[str, EventSource] = {
    # /collect events (seed 003): the seed's event_id, site_id and raw_event_data.
    "web": EventSource(
        "web", "web_events", None, renames={"id": "event_id", "raw": "raw_event_data"}
    ),
    # Product events (seed 004) sent to /api/v1/events.
    "product": EventSource("product", "events", "product", renames={"id": "event_id"}),
}


def source_table(source: EventSource) -> Table:
    import gati.db.models_registry  # noqa: F401  (every domain's tables in Base.metadata)

    table = Base.metadata.tables.get(source.table_name)
    if table is None:
        raise LookupError(f"the table {source.table_name!r} of source {source.name!r} is missing")
    return table


def column_kind(sql_type: TypeEngine[Any]) -> ColumnKind:
    if isinstance(sql_type, TypeDecorator):
        if isinstance(sql_type.impl_instance, DateTime):
            return ColumnKind.DATETIME
        sql_type = sql_type.impl_instance
    if isinstance(sql_type, Boolean):
        return ColumnKind.BOOLEAN
    if isinstance(sql_type, Integer | BigInteger | SmallInteger):
        return ColumnKind.INTEGER
    if isinstance(sql_type, Float | Numeric):
        return ColumnKind.FLOAT
    if isinstance(sql_type, DateTime):
        return ColumnKind.DATETIME
    if isinstance(sql_type, Date):
        return ColumnKind.DATE
    if isinstance(sql_type, JSON):
        return ColumnKind.JSON
    if isinstance(sql_type, Uuid):
        return ColumnKind.UUID
    if isinstance(sql_type, LargeBinary):
        return ColumnKind.BINARY
    if isinstance(sql_type, String | Text):
        return ColumnKind.STRING
    return ColumnKind.STRING


def export_columns(
    source: EventSource, table: Table, *, site: str
) -> tuple[list[ExportColumn], list[ColumnElement[Any]]]:
    """Every column of the table, in order (``project_id`` becomes the site's ``site_id``).

    JSON columns are selected as text and embedded as they are (no decode/encode per row).
    """
    columns: list[ExportColumn] = []
    selected: list[ColumnElement[Any]] = []
    has_site = "site_id" in table.c
    for column in table.columns:
        assert isinstance(column, Column)
        if column.name == "project_id":
            if not has_site:
                columns.append(ExportColumn("site_id", ColumnKind.STRING, nullable=False))
                selected.append(literal(site, type_=String()).label("site_id"))
            continue
        name = source.renames.get(column.name, column.name)
        kind = column_kind(column.type)
        nullable = bool(column.nullable) and not column.primary_key
        columns.append(ExportColumn(name, kind, nullable=nullable))
        if kind is ColumnKind.JSON:
            selected.append(cast(column, Text).label(name))
        elif kind is ColumnKind.DATETIME:
            # The plain type's C-level processing (SQLite text) or none at all (asyncpg gives
            # aware datetimes); the writers read naive values as UTC.
            selected.append(type_coerce(column, DateTime()).label(name))
        else:
            selected.append(column.label(name))
    return columns, selected


@dataclass(slots=True)
class WindowStream:
    columns: list[ExportColumn]
    count: int
    chunks: AsyncIterator[RowChunk]


@asynccontextmanager
async def open_window_stream(
    db: Database,
    source: EventSource,
    *,
    project_id: int,
    site: str,
    start: datetime,
    end: datetime,
    chunk_rows: int,
) -> AsyncIterator[WindowStream]:
    """Count, then stream, a project's events of ``[start, end)`` from one snapshot.

    Rows come through a server-side cursor, ``chunk_rows`` at a time, in ``(received_at, id)``
    order, so memory holds one chunk whatever the window's size.
    """
    table = source_table(source)
    columns, selected = export_columns(source, table, site=site)
    moment = table.c[source.window_column]
    where = and_(table.c.project_id == project_id, moment >= start, moment < end)
    async with snapshot_connection(db.read_engine, db.dialect) as conn:
        count = int(
            (await conn.execute(select(func.count()).select_from(table).where(where))).scalar() or 0
        )
        stmt = (
            select(*selected)
            .where(where)
            .order_by(moment, *[c for c in table.primary_key.columns if c.name != "project_id"])
        )
        yield WindowStream(
            columns=columns, count=count, chunks=stream_partitions(conn, stmt, chunk_rows)
        )
