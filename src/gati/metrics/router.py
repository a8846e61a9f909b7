"""HTTP layer of metrics (seed 004): /api/v1/metrics, /aggregate/{name}, /latest/{name}, /{id}."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from gati.apiparams import Id64
from gati.app import STARTUP_HOOKS
from gati.auth.deps import (
    Principal,
    ReadScope,
    require_principal_of,
    resolve_project_for_write,
)
from gati.db.engine import Database
from gati.db.types import utcnow
from gati.deps import DatabaseDep, ReadSessionDep, SettingsDep, query_value
from gati.exceptions import AppError
from gati.ingest.decode import read_json
from gati.json import ORJSONResponse
from gati.live.runtime import get_realtime
from gati.metrics import jobs as _jobs  # noqa: F401  (registers the rollup job)
from gati.metrics import service
from gati.metrics.aggregation import parse_functions
from gati.metrics.buckets import BucketUnit
from gati.metrics.schemas import (
    NAME_PATTERN,
    AggregateResponse,
    MetricIngestResult,
    MetricPage,
    MetricPointIn,
    MetricPointRead,
    parse_tag_filters,
    parse_timestamp,
    validate_point,
)
from gati.ratelimit.deps import ReadRateLimit, limit_ingest
from gati.settings import Settings

router = APIRouter(tags=["metrics"])

WRITER_KIND = "metric_point"

_POINT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "value"],
    "properties": {
        "name": {"type": "string", "pattern": NAME_PATTERN.pattern},
        "value": {"type": "number"},
        "timestamp": {
            "oneOf": [{"type": "string", "format": "date-time"}, {"type": "number"}],
            "description": "ISO 8601 (naive = UTC) or seconds since the epoch; default: now",
        },
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        "id": {"type": "string", "description": "Optional client id: retries are stored once"},
    },
}
_INGEST_BODY = {
    "parameters": [
        {
            "name": "project",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "Project id or slug (default: the credentials' own project)",
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [_POINT_SCHEMA, {"type": "array", "items": _POINT_SCHEMA}]}
            }
        },
    },
}


async def ingest_project_id(request: Request, principal: Principal) -> int:
    """The project points go to: ``?project=`` (checked), else the credentials' own project.

    Without ``?project=`` no database read is needed: a key's project, a user's default project
    (a membership) and the local default project exist as long as the credentials do.
    """
    ref = query_value(request, "project")
    if not ref and principal.project_id is not None:
        return principal.project_id
    project = await resolve_project_for_write(request.app.state.db, principal, ref)
    return project.id


async def _write(conn: AsyncConnection, items: list[Any]) -> list[Any]:
    return await service.write_points(conn, items)


async def _register_writer(app: FastAPI) -> None:
    async def after_commit(
        points: list[MetricPointIn], results: list[service.WriteResult]
    ) -> list[service.WriteResult]:
        return await service.after_group_commit(app.state.realtime, points, results)

    # Autocommit-safe: a SELECT of known client ids, idempotent series upserts, then ONE insert.
    app.state.committer.register(WRITER_KIND, _write, after_commit=after_commit, autocommit=True)


STARTUP_HOOKS.append(_register_writer)

TagFilters = Annotated[
    list[str],
    Query(alias="tag", description="Tag filter NAME:VALUE (repeat for several; all must match)"),
]


def _tags(raw: list[str]) -> dict[str, str]:
    try:
        return parse_tag_filters(raw)
    except ValueError as exc:
        raise AppError(422, "invalid_tag_filter", f"tag: {exc}") from exc


def _time(raw: str | None, field: str) -> datetime | None:
    if raw is None or raw == "":
        return None
    try:
        return parse_timestamp(raw if not raw.replace(".", "", 1).isdigit() else float(raw))
    except ValueError as exc:
        raise AppError(422, f"invalid_{field}", f"{field}: {exc}") from exc


def _name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise AppError(422, "invalid_name", "name: must be 1-200 of A-Z a-z 0-9 _ . : -")
    return name


@router.post(
    "/metrics",
    status_code=201,
    openapi_extra=_INGEST_BODY,
    responses={201: {"model": MetricPointRead}, 200: {"model": MetricIngestResult}},
    summary="Ingest one metric point (201, the point) or a list (200, count/failed/errors)",
)
async def ingest_metrics(request: Request) -> Response:
    # No FastAPI dependencies on this hot path (their resolution cost more CPU than the rest of
    # the request): the same checks as CurrentPrincipal + the project + IngestRateLimit.
    principal = await require_principal_of(request)
    project_id = await ingest_project_id(request, principal)
    await limit_ingest(request, principal)
    settings: Settings = request.app.state.settings
    db: Database = request.app.state.db
    body = await read_json(
        request, max_bytes=settings.max_body_bytes, max_decompressed=settings.max_decompressed_bytes
    )
    now = utcnow()
    if isinstance(body, dict) and isinstance(body.get("metrics"), list):
        body = body["metrics"]
    if isinstance(body, dict):
        checked = validate_point(body, 0, now)
        if isinstance(checked, list):
            errors = service.summarize_errors(checked)
            first = errors[0]
            raise AppError(
                422,
                "validation_error",
                f"{first['field']}: {first['message']}",
                extra={"errors": errors},
            )
        checked.project_id = project_id
        # Answered after the commit and after the group's cache update and live publish.
        result: service.WriteResult = await request.app.state.committer.submit(WRITER_KIND, checked)
        payload = result.payload or service.point_payload(checked, result.id)
        # The cache and live subscribers got the payload without this key (a copy, not mutated).
        return ORJSONResponse(
            {**payload, "duplicate": result.duplicate}, status_code=200 if result.duplicate else 201
        )
    if not isinstance(body, list):
        raise AppError(
            422, "invalid_body", "The body must be a metric point object or a JSON array of points"
        )
    if not body:
        raise AppError(422, "empty_batch", "The list is empty; send at least one point")
    if len(body) > settings.max_batch_size:
        raise AppError(
            413,
            "batch_too_large",
            f"{len(body)} points in one request; the limit is {settings.max_batch_size} "
            "(MAX_BATCH_SIZE): split the batch",
        )
    points: list[MetricPointIn] = []
    positions: list[int] = []
    all_errors = []
    for index, raw in enumerate(body):
        checked = validate_point(raw, index, now)
        if isinstance(checked, list):
            all_errors.extend(checked)
            continue
        checked.project_id = project_id
        points.append(checked)
        positions.append(index)
    ids: list[int | None] = [None] * len(body)
    results: list[service.WriteResult] = []
    if points:
        async with db.connection() as conn:
            results = await service.write_points(conn, points)
        await service.after_commit(get_realtime(request), points, results)
        for position, result in zip(positions, results, strict=True):
            ids[position] = result.id
    failed_indexes = {error.index for error in all_errors}
    outcome = {
        "count": sum(1 for r in results if not r.duplicate),
        "failed": len(failed_indexes),
        "duplicates": sum(1 for r in results if r.duplicate),
        "ids": ids,
        "errors": service.summarize_errors(all_errors),
    }
    if not points:
        first_error = all_errors[0]
        raise AppError(
            422,
            "validation_error",
            f"no valid point; [{first_error.index}].{first_error.field}: {first_error.message}",
            extra=outcome,
        )
    return ORJSONResponse(outcome, status_code=200)


@router.get("/metrics", response_model=MetricPage, summary="Query metric points (newest first)")
async def list_metrics(
    session: ReadSessionDep,
    scope: ReadScope,
    _limit: ReadRateLimit,
    name: str | None = None,
    tag: TagFilters = [],  # noqa: B006
    start: Annotated[str | None, Query(description="ISO 8601 or epoch seconds (inclusive)")] = None,
    end: Annotated[str | None, Query(description="ISO 8601 or epoch seconds (exclusive)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Response:
    page = await service.list_points(
        session,
        project_ids=scope,
        name=_name(name) if name is not None else None,
        tags=_tags(tag),
        start=_time(start, "start"),
        end=_time(end, "end"),
        cursor=cursor,
        limit=limit,
    )
    return ORJSONResponse(page)


@router.get(
    "/metrics/aggregate/{name}",
    response_model=AggregateResponse,
    summary="Aggregate a metric into calendar buckets of a time zone (exact; percentiles ±1%)",
)
async def aggregate_metric(
    db: DatabaseDep,
    scope: ReadScope,
    settings: SettingsDep,
    _limit: ReadRateLimit,
    name: Annotated[str, Path()],
    function: Annotated[
        list[str],
        Query(description="count, sum, avg, min, max, p50, p95, p99 (repeat or comma-separate)"),
    ] = ["count", "avg", "min", "max"],  # noqa: B006
    bucket: BucketUnit = "hour",
    tz: Annotated[str, Query(description="IANA time zone of the buckets")] = "UTC",
    start: Annotated[str | None, Query(description="default: end - 24 h")] = None,
    end: Annotated[str | None, Query(description="default: now")] = None,
    tag: TagFilters = [],  # noqa: B006
) -> Response:
    try:
        functions = parse_functions(function)
    except ValueError as exc:
        raise AppError(422, "invalid_function", f"function: {exc}") from exc
    if not functions:
        raise AppError(422, "invalid_function", "function: name at least one function")
    end_at = _time(end, "end") or utcnow()
    start_at = _time(start, "start") or end_at - timedelta(hours=24)
    result = await service.aggregate(
        db,
        project_ids=scope,
        name=_name(name),
        tags=_tags(tag),
        functions=functions,
        unit=bucket,
        tz_name=tz,
        start=start_at,
        end=end_at,
        max_buckets=settings.metrics_max_buckets,
    )
    return ORJSONResponse(result)


@router.get(
    "/metrics/latest/{name}",
    summary="The newest point of a metric (from the latest-value cache)",
)
async def latest_metric(
    request: Request,
    session: ReadSessionDep,
    scope: ReadScope,
    _limit: ReadRateLimit,
    name: Annotated[str, Path()],
    tag: TagFilters = [],  # noqa: B006
) -> Response:
    point = await service.latest(
        session, get_realtime(request), project_ids=scope, name=_name(name), tags=_tags(tag)
    )
    return ORJSONResponse(point)


@router.get("/metrics/{point_id}", response_model=MetricPointRead, summary="One metric point")
async def get_metric(
    session: ReadSessionDep, scope: ReadScope, _limit: ReadRateLimit, point_id: Id64
) -> Response:
    return ORJSONResponse(await service.get_point(session, project_ids=scope, point_id=point_id))
