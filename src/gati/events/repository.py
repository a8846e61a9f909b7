"""All SQL of product events. Every read starts from the caller's project ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gati.db.bulk import insert_new, insert_new_returning
from gati.db.dialect import json_scalar_equals
from gati.db.engine import Dialect
from gati.db.types import sqlite_timestamp
from gati.events.cursor import Cursor
from gati.events.filters import PropertyFilter
from gati.events.models import Event

_TABLE = Event.__table__
COLUMNS = ("project_id", "id", "event_type", "timestamp", "received_at", "properties")
KEY = ("project_id", "id")


@dataclass(frozen=True, slots=True)
class EventRow:
    """A validated event ready to store (``id`` already assigned)."""

    project_id: int
    id: str
    event_type: str
    timestamp: datetime
    received_at: datetime
    properties: dict[str, Any]


def _driver_row(row: EventRow, dialect: str) -> tuple[Any, ...]:
    if dialect == "sqlite":
        return (
            row.project_id,
            row.id,
            row.event_type,
            sqlite_timestamp(row.timestamp),
            sqlite_timestamp(row.received_at),
            row.properties,
        )
    return (
        row.project_id,
        row.id,
        row.event_type,
        row.timestamp,
        row.received_at,
        row.properties,
    )


async def insert_batch(conn: AsyncConnection, rows: Sequence[EventRow]) -> set[tuple[int, str]]:
    """Store rows whose (project_id, id) is new; return the keys actually inserted."""
    dialect = conn.dialect.name
    inserted = await insert_new(
        conn,
        _TABLE,  # type: ignore[arg-type]
        COLUMNS,
        [_driver_row(row, dialect) for row in rows],
        key=KEY,
        json_columns=("properties",),
    )
    if inserted is None:
        return {(row.project_id, row.id) for row in rows}
    return {(int(k[0]), str(k[1])) for k in inserted}


async def insert_small_batch(
    conn: AsyncConnection, rows: Sequence[EventRow]
) -> set[tuple[int, str]]:
    """The group-commit path (a few to a few thousand single events): one statement, the
    fewest round trips; large batches go through :func:`insert_batch` (COPY on PostgreSQL)."""
    dialect = conn.dialect.name
    inserted = await insert_new_returning(
        conn,
        _TABLE,  # type: ignore[arg-type]
        COLUMNS,
        [_driver_row(row, dialect) for row in rows],
        key=KEY,
        json_columns=("properties",),
    )
    return {(int(k[0]), str(k[1])) for k in inserted}


async def get_by_id(
    session: AsyncSession, *, project_ids: Sequence[int], event_id: str
) -> list[Event]:
    """The event with this id in any of the caller's projects (ids are unique per project)."""
    if not project_ids:
        return []
    stmt = (
        select(Event)
        .where(Event.project_id.in_(list(project_ids)), Event.id == event_id)
        .order_by(Event.project_id)
        .limit(2)
    )
    return list((await session.execute(stmt)).scalars())


async def list_events(
    session: AsyncSession,
    *,
    dialect: Dialect,
    project_ids: Sequence[int],
    event_types: Sequence[str] = (),
    start: datetime | None = None,
    end: datetime | None = None,
    property_filters: Sequence[PropertyFilter] = (),
    after: Cursor | None = None,
    limit: int,
) -> list[Event]:
    """Newest first: ``ORDER BY timestamp DESC, project_id DESC, id DESC``; ``limit`` rows."""
    if not project_ids:
        return []
    conditions: list[ColumnElement[bool]] = [Event.project_id.in_(list(project_ids))]
    if event_types:
        conditions.append(Event.event_type.in_(list(event_types)))
    if start is not None:
        conditions.append(Event.timestamp >= start)
    if end is not None:
        conditions.append(Event.timestamp < end)
    for flt in property_filters:
        matches = [
            json_scalar_equals(dialect, Event.properties, flt.key, value)  # type: ignore[arg-type]
            for value in flt.values
        ]
        conditions.append(matches[0] if len(matches) == 1 else or_(*matches))
    if after is not None:
        conditions.append(_after(after))
    stmt = (
        select(Event)
        .where(and_(*conditions))
        .order_by(Event.timestamp.desc(), Event.project_id.desc(), Event.id.desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


def _after(cursor: Cursor) -> ColumnElement[bool]:
    """Rows strictly after the cursor row in newest-first order."""
    return or_(
        Event.timestamp < cursor.timestamp,
        and_(
            Event.timestamp == cursor.timestamp,
            or_(
                Event.project_id < cursor.project_id,
                and_(Event.project_id == cursor.project_id, Event.id < cursor.id),
            ),
        ),
    )
