"""HTTP layer of PulseBoard product events: ``/api/v1/events`` (shared with seed-002 error
reports, see ``gati.events.dispatch``), ``/api/v1/events/batch``, ``/api/v1/events/{id}``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response

from gati import app as gati_app
from gati.auth.deps import (
    CurrentPrincipal,
    OptionalPrincipal,
    ReadScope,
    get_principal,
    require_principal,
)
from gati.db.engine import Database
from gati.db.types import checked_utc
from gati.deps import DatabaseDep, ReadSessionDep, SettingsDep, query_value
from gati.events import service
from gati.events.dispatch import MISSING_EVENT_TYPE, EventBodyKind, classify_event_body
from gati.events.filters import parse_property_filters
from gati.events.repository import EventRow
from gati.events.schemas import EventAccepted, EventBatchResult, EventIn, EventPage, EventRead
from gati.events.validation import validate_event
from gati.exceptions import AppError
from gati.ingest.batch import batch_items
from gati.ingest.decode import parse_json, read_decoded_body, require_json_content_type
from gati.json import ORJSONResponse
from gati.ratelimit.deps import enforce, rate_key
from gati.settings import Settings

router = APIRouter(tags=["events"])


async def _register_writer(app: FastAPI) -> None:
    async def after_commit(rows: list[EventRow], created: list[bool]) -> None:
        # One live publish per project for the whole group, before its requests are answered.
        realtime = getattr(app.state, "realtime", None)
        new_rows = [row for row, is_new in zip(rows, created, strict=True) if is_new]
        await service.publish_committed(realtime.hub if realtime is not None else None, new_rows)

    # Autocommit-safe: the writer is ONE ``INSERT ... ON CONFLICT DO NOTHING RETURNING``.
    app.state.committer.register(
        service.GROUP_COMMIT_KIND, service.write_group, after_commit=after_commit, autocommit=True
    )


if _register_writer not in gati_app.STARTUP_HOOKS:
    gati_app.STARTUP_HOOKS.append(_register_writer)


async def _rate_limit(request: Request, principal: Any, kind: str) -> None:
    realtime = getattr(request.app.state, "realtime", None)
    if realtime is not None and realtime.rate_limits_enabled:  # no key to compute when off
        await enforce(realtime, kind, rate_key(request, principal))  # type: ignore[arg-type]


async def _publish(request: Request, rows: Sequence[EventRow]) -> None:
    """Tell live subscribers about committed events (never called before the commit)."""
    realtime = getattr(request.app.state, "realtime", None)
    await service.publish_committed(realtime.hub if realtime is not None else None, rows)


_ERROR_REPORT_SCHEMA = {
    "title": "ErrorReport (seed 002)",
    "type": "object",
    "required": ["project_key", "message"],
    "properties": {
        "project_key": {"type": "string"},
        "message": {"type": "string"},
        "stack": {"type": "string"},
        "method": {"type": "string"},
        "path": {"type": "string"},
        "status_code": {"type": "integer"},
        "timestamp": {"type": "string", "format": "date-time"},
    },
}

_SINGLE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [EventIn.model_json_schema(), _ERROR_REPORT_SCHEMA]},
                "examples": {
                    "product_event": {
                        "summary": "A product event (seed 004)",
                        "value": {
                            "event_type": "signup",
                            "properties": {"plan": "pro"},
                            "event_id": "evt-0001",
                        },
                    },
                    "error_report": {
                        "summary": "An error report (seed 002)",
                        "value": {
                            "project_key": "my-project",
                            "message": "Error message",
                            "stack": "Error: message\n    at ...",
                            "method": "GET",
                            "path": "/api/users/:id",
                            "status_code": 500,
                        },
                    },
                },
            }
        },
    }
}

_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["events"],
                            "properties": {
                                "events": {"type": "array", "items": EventIn.model_json_schema()}
                            },
                        },
                        {"type": "array", "items": EventIn.model_json_schema()},
                    ]
                }
            }
        },
    }
}


async def _read_body(request: Request, settings: Any, *, limit: int | None = None) -> Any:
    """Content type, size limits (on the wire and decompressed), decompression, JSON."""
    require_json_content_type(request)
    max_bytes = settings.max_body_bytes
    max_decompressed = settings.max_decompressed_bytes
    if limit is not None:
        max_bytes, max_decompressed = min(max_bytes, limit), min(max_decompressed, limit)
    raw = await read_decoded_body(request, max_bytes=max_bytes, max_decompressed=max_decompressed)
    return parse_json(raw), len(raw)


def _bound(name: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        return checked_utc(value)
    except ValueError as exc:
        raise AppError(422, "validation_error", f"{name}: {exc}") from None


@router.post(
    "/events",
    status_code=201,
    response_model=EventAccepted,
    openapi_extra=_SINGLE_BODY,
    summary="Ingest one product event (or a seed-002 error report)",
    description=(
        "A body with `project_key` and `message` and neither `event_type` nor `name` is a "
        "seed-002 error report (answered `{id, timestamp, message}`); anything else is a "
        "product event. Answered after the event is committed."
    ),
)
async def ingest_event(request: Request) -> Response:
    # Dependencies resolved by hand: this is the hot single-event path, and FastAPI's
    # dependency solving is a visible share of its cost (docs/benchmarks.md).
    state = request.app.state
    db: Database = state.db
    settings: Settings = state.settings
    caller = await get_principal(request, db, settings)
    body, _ = await _read_body(request, settings, limit=settings.max_event_bytes)
    if classify_event_body(body) is EventBodyKind.ERROR_REPORT:
        # The error-tracking service checks credentials itself: a seed-002 report may carry
        # its project's public key as ``project_key`` instead of a header (docs/errors.md).
        from gati.errors import service as errors_service

        result = await errors_service.ingest_error_report(
            request=request, body=body, principal=caller
        )
        if isinstance(result, Response):
            return result
        return ORJSONResponse(result, status_code=201)
    principal = await require_principal(caller)
    await _rate_limit(request, principal, "ingest")
    event = validate_event(body)
    if not isinstance(event, EventIn):
        if "event_type" not in body and "name" not in body:
            raise AppError(422, "validation_error", MISSING_EVENT_TYPE)
        field, message = event[0]
        raise AppError(
            422,
            "validation_error",
            f"{field}: {message}",
            extra={"errors": [{"field": f, "message": m} for f, m in event]},
        )
    row, created = await service.ingest_one(
        db,
        request.app.state.committer,
        principal,
        event,
        query_project=query_value(request, "project"),
    )
    # Live subscribers were told by the group commit's after-commit hook.
    return ORJSONResponse(
        {
            "id": row.id,
            "project_id": row.project_id,
            "event_type": row.event_type,
            "timestamp": row.timestamp,
            "duplicate": not created,
        },
        status_code=201,
    )


@router.post(
    "/events/batch",
    response_model=EventBatchResult,
    openapi_extra=_BATCH_BODY,
    summary="Ingest many product events (up to MAX_BATCH_SIZE); per-item errors",
)
async def ingest_event_batch(
    request: Request, principal: CurrentPrincipal, db: DatabaseDep, settings: SettingsDep
) -> Response:
    await _rate_limit(request, principal, "ingest")
    body, size = await _read_body(request, settings)
    events = batch_items(body)
    result, new_rows = await service.ingest_batch(
        db,
        principal,
        events,
        query_project=request.query_params.get("project"),
        max_batch_size=settings.max_batch_size,
        max_event_bytes=settings.max_event_bytes if size > settings.max_event_bytes else None,
    )
    await _publish(request, new_rows)
    return ORJSONResponse(result)


@router.get(
    "/events",
    response_model=EventPage,
    summary="List product events, newest first",
    description=(
        "Filters: `event_type` (repeatable: any of), `start` (inclusive) and `end` (exclusive) "
        "timestamps, property equality as `property.<name>=<value>` (text; also matches the "
        "number/boolean/null it spells) or `properties=<JSON object>` (typed), `project` "
        "(id or slug; default: every project you can read). Page with `next_cursor`."
    ),
)
async def list_events(
    request: Request,
    session: ReadSessionDep,
    db: DatabaseDep,
    scope: ReadScope,
    principal: OptionalPrincipal,
    event_type: list[str] = Query(default=[], description="Event type(s) to keep"),
    start: datetime | None = Query(default=None, description="Earliest timestamp (inclusive)"),
    end: datetime | None = Query(default=None, description="Latest timestamp (exclusive)"),
    limit: int = Query(default=service.DEFAULT_PAGE_SIZE, ge=1, le=service.MAX_PAGE_SIZE),
    cursor: str | None = Query(default=None, description="next_cursor of the previous page"),
    properties: str | None = Query(
        default=None, description='Typed property equality, e.g. {"plan":"pro","seats":3}'
    ),
) -> Response:
    await _rate_limit(request, principal, "read")
    _ = properties  # parsed with the property.* parameters below
    filters = parse_property_filters(request.query_params.multi_items())
    page = await service.list_events(
        session,
        dialect=db.dialect,
        project_ids=scope,
        event_types=event_type,
        start=_bound("start", start),
        end=_bound("end", end),
        property_filters=filters,
        cursor=cursor,
        limit=limit,
    )
    return ORJSONResponse(page)


@router.get("/events/{event_id}", response_model=EventRead, summary="One product event")
async def get_event(
    request: Request,
    event_id: str,
    session: ReadSessionDep,
    scope: ReadScope,
    principal: OptionalPrincipal,
) -> Response:
    await _rate_limit(request, principal, "read")
    return ORJSONResponse(await service.get_event(session, project_ids=scope, event_id=event_id))
