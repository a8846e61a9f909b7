"""HTTP layer of agent tracing (seed 000): /api/events, /api/agents, /api/runs, /api/metrics."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gati.apiparams import Offset
from gati.auth.deps import IngestProject, ReadScope
from gati.deps import DatabaseDep, ReadSessionDep, SettingsDep
from gati.ingest.batch import batch_items
from gati.ingest.decode import parse_json, read_decoded_body, require_json_content_type
from gati.json import ORJSONResponse
from gati.tracing import service
from gati.tracing.schemas import (
    AgentDetail,
    AgentRead,
    IngestResponse,
    RunPage,
    RunRead,
    UtcDatetime,
)

router = APIRouter(tags=["agent tracing"])

_EVENTS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["events"],
                    "properties": {
                        "events": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["event_type", "run_id", "agent_name"],
                                "properties": {
                                    "event_id": {"type": "string"},
                                    "event_type": {"type": "string"},
                                    "run_id": {"type": "string"},
                                    "agent_name": {"type": "string"},
                                    "timestamp": {"type": "string", "format": "date-time"},
                                    "data": {"type": "object"},
                                },
                            },
                        }
                    },
                }
            }
        },
    }
}


@router.post(
    "/events",
    response_model=IngestResponse,
    openapi_extra=_EVENTS_BODY,
    summary="Bulk ingest trace events (up to MAX_BATCH_SIZE; gzip accepted)",
)
async def ingest_events(
    request: Request, project: IngestProject, db: DatabaseDep, settings: SettingsDep
) -> Response:
    require_json_content_type(request)
    raw = await read_decoded_body(
        request, max_bytes=settings.max_body_bytes, max_decompressed=settings.max_decompressed_bytes
    )
    if len(raw) <= settings.max_event_bytes:  # then no single event can be over the limit
        fast = await service.ingest_well_formed(
            db, project_id=project.id, body=raw, max_batch_size=settings.max_batch_size
        )
        if fast is not None:
            return ORJSONResponse(fast)
    events = batch_items(parse_json(raw))
    result = await service.ingest_batch(
        db,
        project_id=project.id,
        raw_events=events,
        max_batch_size=settings.max_batch_size,
        # Checking each event's size only matters when the whole body could exceed the limit.
        max_event_bytes=settings.max_event_bytes if len(raw) > settings.max_event_bytes else None,
        # Valid JSON has a NUL character only as the escape \u0000: none in the body, none to find.
        check_nul=b"\\u0000" in raw,
    )
    return ORJSONResponse(result)


@router.get("/agents", response_model=list[AgentRead])
async def list_agents(session: ReadSessionDep, scope: ReadScope) -> Response:
    return ORJSONResponse(await service.list_agents(session, project_ids=scope))


@router.get("/agents/{agent_name}", response_model=AgentDetail)
async def get_agent(agent_name: str, session: ReadSessionDep, scope: ReadScope) -> Response:
    return ORJSONResponse(await service.get_agent(session, project_ids=scope, name=agent_name))


@router.get("/agents/{agent_name}/runs", response_model=RunPage)
async def list_agent_runs(
    agent_name: str,
    session: ReadSessionDep,
    scope: ReadScope,
    limit: int = Query(50, ge=1, le=1000),
    offset: Offset = 0,
    status: Literal["active", "completed", "failed"] | None = None,
    environment: str | None = None,
) -> Response:
    return ORJSONResponse(
        await service.list_agent_runs(
            session,
            project_ids=scope,
            name=agent_name,
            status=status,
            environment=environment,
            limit=limit,
            offset=offset,
        )
    )


@router.get("/agents/{agent_name}/metrics")
async def get_agent_metrics(
    agent_name: str,
    session: ReadSessionDep,
    scope: ReadScope,
    period: Literal["hourly", "daily", "monthly"] = "daily",
    since: UtcDatetime | None = None,
    until: UtcDatetime | None = None,
) -> Response:
    return ORJSONResponse(
        await service.agent_metrics(
            session, project_ids=scope, name=agent_name, period=period, since=since, until=until
        )
    )


@router.get("/runs/{run_id}", response_model=RunRead)
async def get_run(run_id: str, session: ReadSessionDep, scope: ReadScope) -> Response:
    run = await service.get_run(session, project_ids=scope, run_id=run_id)
    return ORJSONResponse(service.run_dict(run))


@router.get("/runs/{run_id}/timeline")
async def get_run_timeline(run_id: str, session: ReadSessionDep, scope: ReadScope) -> Response:
    return ORJSONResponse(await service.run_timeline(session, project_ids=scope, run_id=run_id))


@router.get("/runs/{run_id}/trace")
async def get_run_trace(run_id: str, session: ReadSessionDep, scope: ReadScope) -> Response:
    body = await service.run_trace_json(session, project_ids=scope, run_id=run_id)
    return Response(body, media_type="application/json")


@router.get("/events/{event_id}/children")
async def get_event_children(event_id: str, session: ReadSessionDep, scope: ReadScope) -> Response:
    return ORJSONResponse(
        await service.event_children(session, project_ids=scope, event_id=event_id)
    )


@router.get("/metrics/summary")
async def metrics_summary(
    session: ReadSessionDep, scope: ReadScope, top: int = Query(5, ge=1, le=100)
) -> Any:
    return ORJSONResponse(await service.metrics_summary(session, project_ids=scope, top=top))
