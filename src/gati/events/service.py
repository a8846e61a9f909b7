"""Rules of product events: ids, project resolution, group-committed single writes, batches,
listing with filters and cursors, and live publication after commit."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gati.auth.deps import Principal, resolve_project_for_write
from gati.db.engine import Database, Dialect
from gati.db.types import utcnow
from gati.events import repository
from gati.events.cursor import decode_cursor, encode_cursor
from gati.events.filters import PropertyFilter
from gati.events.models import Event
from gati.events.repository import EventRow
from gati.events.schemas import EventIn
from gati.events.validation import validate_event
from gati.exceptions import AppError
from gati.ids import uuid_str
from gati.json import isoformat_z
from gati.live.hub import InProcessBackend, LiveHub, events_topic

log = logging.getLogger(__name__)

GROUP_COMMIT_KIND = "product_events"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def new_event_id() -> str:
    return uuid_str()


def to_row(event: EventIn, *, project_id: int, now: datetime) -> EventRow:
    return EventRow(
        project_id=project_id,
        id=event.event_id or new_event_id(),
        event_type=event.type,
        timestamp=event.timestamp or now,
        received_at=now,
        properties=event.properties,
    )


def _iso(value: datetime) -> str:
    return isoformat_z(value)


def event_dict(row: EventRow | Event) -> dict[str, Any]:
    return {
        "id": row.id,
        "project_id": row.project_id,
        "event_type": row.event_type,
        "timestamp": row.timestamp,
        "received_at": row.received_at,
        "properties": row.properties,
    }


def live_event_dict(row: EventRow) -> dict[str, Any]:
    """An event as live subscribers receive it: the API's shape, timestamps as in responses."""
    return {
        "id": row.id,
        "project_id": row.project_id,
        "event_type": row.event_type,
        "timestamp": _iso(row.timestamp),
        "received_at": _iso(row.received_at),
        "properties": row.properties,
    }


async def publish_committed(hub: LiveHub | None, rows: Sequence[EventRow]) -> None:
    """Tell live subscribers (``events_topic(project)``) about newly stored events.

    Called only after the rows are committed, never for duplicates or failed writes. One message
    per project: ``{"type": "event", "project_id", "events": [...]}``. Failures are logged, never
    raised: the events are committed and the request is answered as acknowledged."""
    if hub is None or not rows:
        return
    local_only = isinstance(hub.backend, InProcessBackend)
    by_project: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        # Without Redis nobody outside this process listens: skip topics nobody watches here.
        if local_only and not hub.subscriber_count(events_topic(row.project_id)):
            continue
        by_project.setdefault(row.project_id, []).append(live_event_dict(row))
    for project_id, events in by_project.items():
        try:
            await hub.publish(
                events_topic(project_id),
                {"type": "event", "project_id": project_id, "events": events},
            )
        except Exception:
            log.exception("events: live publish failed for project %s", project_id)


# --- writes ------------------------------------------------------------------------------------


async def write_group(conn: AsyncConnection, rows: list[EventRow]) -> list[bool]:
    """Group-commit batch writer: stores the rows in the committer's transaction.

    Returns, per row, whether it was new (False: the same (project, id) was already stored,
    by an earlier request or earlier in this group)."""
    inserted = await repository.insert_small_batch(conn, rows)
    out: list[bool] = []
    for row in rows:
        key = (row.project_id, row.id)
        out.append(key in inserted)
        inserted.discard(key)  # a second copy within the group is a duplicate
    return out


async def target_project_id(db: Database, principal: Principal, ref: int | str | None) -> int:
    """The project a write goes to: the one named (checked) or the caller's default."""
    if ref is None or ref == "":
        if principal.project_id is None:
            raise AppError(
                400,
                "project_required",
                'These credentials have no default project; name one with "project" '
                "in the body or ?project=<id or slug>",
            )
        return principal.project_id
    project = await resolve_project_for_write(db, principal, ref)
    return project.id


def _project_gone(project_id: int) -> AppError:
    return AppError(
        404, "project_not_found", f"Project {project_id} no longer exists; nothing was stored"
    )


async def ingest_one(
    db: Database,
    committer: Any,
    principal: Principal,
    event: EventIn,
    *,
    query_project: str | None,
) -> tuple[EventRow, bool]:
    """Store one event through the group committer; returns after COMMIT."""
    project_id = await target_project_id(db, principal, event.project or query_project)
    row = to_row(event, project_id=project_id, now=utcnow())
    try:
        created = await committer.submit(GROUP_COMMIT_KIND, row)
    except IntegrityError as exc:
        raise _project_gone(project_id) from exc
    return row, bool(created)


def _item_error(index: int, field: str, message: str) -> dict[str, Any]:
    return {"index": index, "field": field, "message": message}


async def ingest_batch(
    db: Database,
    principal: Principal,
    raw_events: Sequence[Any],
    *,
    query_project: str | None,
    max_batch_size: int,
    max_event_bytes: int | None,
) -> tuple[dict[str, Any], list[EventRow]]:
    """Validate every item, store the valid ones in one transaction; per-item errors."""
    if len(raw_events) > max_batch_size:
        raise AppError(
            413,
            "batch_too_large",
            f"The batch has {len(raw_events)} events; MAX_BATCH_SIZE is {max_batch_size}. "
            "Split it.",
        )
    now = utcnow()
    errors: list[dict[str, Any]] = []
    rows: list[EventRow | None] = []
    projects: dict[int | str | None, int | AppError] = {}
    for index, raw in enumerate(raw_events):
        rows.append(None)
        if max_event_bytes is not None and len(orjson.dumps(raw)) > max_event_bytes:
            errors.append(
                _item_error(
                    index, "", f"is larger than MAX_EVENT_SIZE_MB ({max_event_bytes} bytes)"
                )
            )
            continue
        result = validate_event(raw)
        if not isinstance(result, EventIn):
            errors.extend(_item_error(index, field, message) for field, message in result)
            continue
        ref = result.project if result.project is not None else query_project
        if ref not in projects:
            try:
                projects[ref] = await target_project_id(db, principal, ref)
            except AppError as exc:
                projects[ref] = exc
        target = projects[ref]
        if isinstance(target, AppError):
            errors.append(_item_error(index, "project", target.detail))
            continue
        rows[index] = to_row(result, project_id=target, now=now)
    valid = [row for row in rows if row is not None]
    failed = len(raw_events) - len(valid)
    if not valid:
        raise AppError(
            422,
            "no_valid_events",
            f"None of the {failed} events is valid; see errors",
            extra={"count": 0, "failed": failed, "errors": errors},
        )
    try:
        async with db.connection() as conn:
            inserted = await repository.insert_batch(conn, valid)
    except IntegrityError as exc:
        raise AppError(
            404,
            "project_not_found",
            "A project of this batch no longer exists; nothing was stored",
        ) from exc
    new_rows = [row for row in valid if (row.project_id, row.id) in inserted]
    duplicates = len(valid) - len({(row.project_id, row.id) for row in new_rows})
    message = f"Ingested {len(valid)} events"
    if failed:
        message += f", {failed} failed validation"
    if duplicates:
        message += f", {duplicates} duplicates ignored"
    body = {
        "status": "success" if failed == 0 else "partial",
        "message": message,
        "count": len(valid),
        "failed": failed,
        "duplicates": duplicates,
        "errors": errors,
        "ids": [row.id if row is not None else None for row in rows],
    }
    return body, _unique(new_rows)


def _unique(rows: list[EventRow]) -> list[EventRow]:
    seen: set[tuple[int, str]] = set()
    out = []
    for row in rows:
        key = (row.project_id, row.id)
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


# --- reads -------------------------------------------------------------------------------------


async def get_event(
    session: AsyncSession, *, project_ids: Sequence[int], event_id: str
) -> dict[str, Any]:
    found = await repository.get_by_id(session, project_ids=project_ids, event_id=event_id)
    if not found:
        raise AppError(
            404,
            "event_not_found",
            f"Event {event_id} does not exist or is not visible to these credentials",
        )
    if len(found) > 1:
        raise AppError(
            409,
            "ambiguous_event_id",
            f"Event id {event_id} exists in several of your projects; add ?project=<id or slug>",
        )
    return event_dict(found[0])


async def list_events(
    session: AsyncSession,
    *,
    dialect: Dialect,
    project_ids: Sequence[int],
    event_types: Sequence[str],
    start: datetime | None,
    end: datetime | None,
    property_filters: Sequence[PropertyFilter],
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    if start is not None and end is not None and start >= end:
        raise AppError(422, "validation_error", "end: must be after start")
    after = decode_cursor(cursor) if cursor else None
    rows = await repository.list_events(
        session,
        dialect=dialect,
        project_ids=project_ids,
        event_types=event_types,
        start=start,
        end=end,
        property_filters=property_filters,
        after=after,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = (
        encode_cursor(rows[-1].timestamp, rows[-1].project_id, rows[-1].id) if more else None
    )
    return {"items": [event_dict(row) for row in rows], "next_cursor": next_cursor}
