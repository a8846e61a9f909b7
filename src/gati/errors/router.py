"""HTTP layer of error tracking: the Sentry ingest endpoints, issues and error events.

Seed-002 reports arrive on the shared ``POST /api/v1/events`` (``gati.events.router``), which
calls :func:`gati.errors.service.ingest_error_report`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from fastapi import APIRouter, FastAPI, Query, Request
from starlette.responses import Response

from gati import app as gati_app
from gati.apiparams import Id64, Offset
from gati.auth.deps import Reader, ReadScope
from gati.deps import ReadSessionDep, SessionDep, SettingsDep
from gati.errors import jobs as _jobs  # noqa: F401  (registers the retention job)
from gati.errors import service
from gati.errors.schemas import (
    DsnRead,
    ErrorEventPage,
    ErrorEventRead,
    ErrorSettingsRead,
    ErrorSettingsUpdate,
    IssuePage,
    IssueRead,
    IssueUpdate,
)
from gati.ingest.decode import read_decoded_body
from gati.json import ORJSONResponse
from gati.projects.service import visible_project
from gati.ratelimit.limiter import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from gati.settings import Settings

sentry_router = APIRouter(tags=["error tracking (Sentry protocol)"])
router = APIRouter(tags=["error tracking"])


async def _startup(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    limiter: RateLimiter
    if settings.redis_url:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(settings.redis_url)
        app.state.errors_redis = client
        limiter = RedisRateLimiter(client, prefix=settings.redis_prefix)
    else:
        limiter = MemoryRateLimiter()
    app.state.errors = service.ErrorsRuntime(limiter=limiter)

    service.install_seen_values(app.state.db)
    # Autocommit-safe on PostgreSQL: one statement stores a group's events and issues (a retry
    # of a seed-002 event also looks its row id up, a read). A lane of its own, one writer,
    # groups of at most 32: the statement is heavy, so a second writer's groups of one or two
    # cost more than they overlap, and smaller groups pipeline (docs/benchmarks.md).
    app.state.committer.register(
        service.WRITER_KIND, service.write_error_batch, autocommit=True, writers=1, max_batch=32
    )


async def _shutdown(app: FastAPI) -> None:
    client = getattr(app.state, "errors_redis", None)
    if client is not None:
        await client.aclose()


if _startup not in gati_app.STARTUP_HOOKS:
    gati_app.STARTUP_HOOKS.append(_startup)
    gati_app.SHUTDOWN_HOOKS.append(_shutdown)


# ---------------------------------------------------------------------------------------------
# Sentry protocol
# ---------------------------------------------------------------------------------------------


async def _sentry(request: Request, project_id: str, endpoint: str) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    body = await read_decoded_body(
        request, max_bytes=settings.max_body_bytes, max_decompressed=settings.max_decompressed_bytes
    )
    result = await service.ingest_sentry(
        endpoint=endpoint,
        url_project_id=project_id,
        body=body,
        headers=request.headers,
        # SDKs authenticate by header: parse a query string only when there is one
        query=request.query_params if request.scope["query_string"] else _NO_QUERY,
        db=state.db,
        settings=settings,
        committer=state.committer,
        runtime=state.errors,
    )
    return ORJSONResponse(result)


_NO_QUERY: Mapping[str, str] = MappingProxyType({})


_SENTRY_DOC = (
    "Authenticated by `X-Sentry-Auth: Sentry sentry_key=<public key>`, the `sentry_key` query "
    "parameter, or (envelopes) the `dsn` of the envelope header. Bodies may be gzip, deflate, "
    "br or zstd. Answered after the events are committed."
)


@sentry_router.post(
    "/api/{project_id}/envelope/", summary="Sentry envelope", description=_SENTRY_DOC
)
@sentry_router.post("/api/{project_id}/envelope", include_in_schema=False)
async def sentry_envelope(request: Request, project_id: str) -> Response:
    return await _sentry(request, project_id, "envelope")


@sentry_router.post(
    "/api/{project_id}/store/", summary="Sentry store (legacy)", description=_SENTRY_DOC
)
@sentry_router.post("/api/{project_id}/store", include_in_schema=False)
async def sentry_store(request: Request, project_id: str) -> Response:
    return await _sentry(request, project_id, "store")


# ---------------------------------------------------------------------------------------------
# Issues and error events
# ---------------------------------------------------------------------------------------------


@router.get("/projects/{project}/issues", response_model=IssuePage, summary="List issues")
async def list_issues(
    project: str,
    session: ReadSessionDep,
    principal: Reader,
    status: Literal["unresolved", "resolved", "ignored", "regressed"] | None = Query(
        None, description="Filter by status ('regressed': reopened by a new event)"
    ),
    environment: str | None = None,
    release: str | None = None,
    query: str | None = Query(None, max_length=200, description="Text in title, culprit or type"),
    sort: Literal["last_seen", "first_seen", "count"] = "last_seen",
    limit: int = Query(25, ge=1, le=100),
    offset: Offset = 0,
) -> Response:
    project_id = (await visible_project(session, principal, project)).id
    page = await service.list_issues(
        session,
        project_ids=[project_id],
        status=status,
        environment=environment,
        release=release,
        text=query,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    return ORJSONResponse(page)


@router.get("/projects/{project}/dsn", response_model=DsnRead, summary="The project's Sentry DSN")
async def project_dsn(
    project: str,
    request: Request,
    session: ReadSessionDep,
    principal: Reader,
    settings: SettingsDep,
) -> Response:
    found = await visible_project(session, principal, project)
    base = settings.public_url or str(request.base_url)
    return ORJSONResponse(service.dsn_for(found, base_url=base))


@router.get(
    "/projects/{project}/error-settings",
    response_model=ErrorSettingsRead,
    summary="Error retention and rate limit of a project",
)
async def get_error_settings(
    project: str, session: ReadSessionDep, principal: Reader, settings: SettingsDep
) -> Response:
    found = await visible_project(session, principal, project)
    return ORJSONResponse(
        await service.get_error_settings(session, project=found, settings=settings)
    )


@router.patch(
    "/projects/{project}/error-settings",
    response_model=ErrorSettingsRead,
    summary="Change error retention (days) or rate limit; null returns to the default",
)
async def update_error_settings(
    project: str,
    update: ErrorSettingsUpdate,
    request: Request,
    session: SessionDep,
    principal: Reader,
    settings: SettingsDep,
) -> Response:
    found = await visible_project(session, principal, project)
    return ORJSONResponse(
        await service.update_error_settings(
            session,
            principal=principal,
            project=found,
            changes=update.model_dump(exclude_unset=True),
            settings=settings,
            runtime=getattr(request.app.state, "errors", None),
        )
    )


@router.get("/issues/{issue_id}", response_model=IssueRead, summary="Get an issue")
async def get_issue(issue_id: Id64, session: ReadSessionDep, principal: Reader) -> Response:
    return ORJSONResponse(await service.get_issue(session, principal=principal, issue_id=issue_id))


@router.get(
    "/issues/{issue_id}/events", response_model=ErrorEventPage, summary="Events of an issue"
)
async def list_issue_events(
    issue_id: Id64,
    session: ReadSessionDep,
    principal: Reader,
    limit: int = Query(25, ge=1, le=100),
    offset: Offset = 0,
) -> Response:
    return ORJSONResponse(
        await service.list_issue_events(
            session, principal=principal, issue_id=issue_id, limit=limit, offset=offset
        )
    )


@router.patch(
    "/issues/{issue_id}",
    response_model=IssueRead,
    summary="Resolve, ignore or unresolve an issue",
)
async def update_issue(
    issue_id: Id64, update: IssueUpdate, session: SessionDep, principal: Reader
) -> Response:
    return ORJSONResponse(
        await service.update_issue_status(
            session, principal=principal, issue_id=issue_id, status=update.status
        )
    )


@router.get(
    "/error-events/{ident}",
    response_model=ErrorEventRead,
    summary="Get an error event (numeric id or 32-character event_id)",
)
async def get_error_event(ident: str, session: ReadSessionDep, scope: ReadScope) -> Response:
    return ORJSONResponse(await service.get_error_event(session, project_ids=scope, ident=ident))
