"""HTTP endpoints of web analytics: /collect (POST, GET pixel, OPTIONS), /js/gati.js,
/events/recent, site settings and the statistics API."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from starlette.responses import Response

import gati.app as gati_app
from gati.auth.deps import Reader, ReadScope
from gati.db.engine import Database
from gati.deps import DatabaseDep, ReadSessionDep, SessionDep
from gati.exceptions import AppError
from gati.ingest.decode import read_decoded_body
from gati.json import ORJSONResponse
from gati.settings import Settings
from gati.web import jobs as _jobs  # noqa: F401  (registers the web jobs)
from gati.web import repository, service, stats
from gati.web.client_ip import TrustedProxies
from gati.web.geoip import open_country_lookup
from gati.web.payload import (
    MAX_COLLECT_BODY,
    CollectPayload,
    decode_collect_body,
    parse_collect_query,
    validate_collect,
)
from gati.web.schemas import SiteSettingsRead, SiteSettingsUpdate
from gati.web.sites import Site, origin_host
from gati.web.state import WebState
from gati.web.useragent import parse_user_agent

router = APIRouter(tags=["web analytics"])

# The smallest transparent GIF (43 bytes).
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
SCRIPT = resources.files("gati.web").joinpath("static/gati.js").read_bytes()
SCRIPT_GZIP = gzip.compress(SCRIPT, compresslevel=9, mtime=0)
NO_STORE = {"Cache-Control": "no-store"}


# --- lifecycle -------------------------------------------------------------------------------


async def _start(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    app.state.web = WebState(
        trusted=TrustedProxies.parse(settings.trusted_proxies),
        auto_create_sites=(
            settings.web_auto_create_sites
            if settings.web_auto_create_sites is not None
            else settings.is_local
        ),
        countries=open_country_lookup(settings.geoip_database),
    )
    # Autocommit-safe: alone in a group on PostgreSQL the writer runs its own transaction on
    # the driver (see write_events); on SQLite its statements share one transaction.
    app.state.committer.register(service.WRITER_KIND, service.write_events, autocommit=True)
    parse_user_agent("Mozilla/5.0")  # load ua-parser's rules now, not on the first request


async def _stop(app: FastAPI) -> None:
    state: WebState | None = getattr(app.state, "web", None)
    if state is not None:
        state.countries.close()


if _start not in gati_app.STARTUP_HOOKS:
    gati_app.STARTUP_HOOKS.append(_start)
    gati_app.SHUTDOWN_HOOKS.append(_stop)


def _state(request: Request) -> WebState:
    return request.app.state.web


def _db(request: Request) -> Database:
    return request.app.state.db


# --- /collect --------------------------------------------------------------------------------


def _cors_headers(origin: str | None, site: Site | None) -> dict[str, str]:
    # A site with hostnames echoes the origin; an unparsable one counts as no origin.
    if site is not None and site.settings.hostnames and origin and origin_host(origin):
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {"Access-Control-Allow-Origin": "*"}


async def _collect(request: Request, payload: CollectPayload, *, pixel: bool) -> Response:
    state = _state(request)
    db = _db(request)
    origin = request.headers.get("origin")
    site = await service.resolve_site(
        db, state.sites, payload.site_id, auto_create=state.auto_create_sites
    )
    now = datetime.now(UTC)
    salts = await service.daily_salts(db, state.salts, now)
    row = service.build_event(
        payload,
        site=site,
        meta=service.RequestMeta(
            peer=request.client.host if request.client else None,
            headers=request.headers,
            user_agent=request.headers.get("user-agent"),
            origin=origin,
        ),
        trusted=state.trusted,
        salts=salts,
        countries=state.countries,
        now=now,
    )
    event_id = await service.submit(request.app.state.committer, row)
    headers = {**_cors_headers(origin, site), **NO_STORE}
    if pixel:
        return Response(PIXEL, media_type="image/gif", headers=headers)
    return ORJSONResponse(
        {
            "status": "success",
            "message": "Event received and stored",
            "event_id": event_id,
            "timestamp": now,
        },
        headers=headers,
    )


def _with_cors(exc: AppError) -> AppError:
    # Error bodies of /collect stay readable from any page (they name the bad field).
    exc.headers.setdefault("Access-Control-Allow-Origin", "*")
    return exc


@router.post("/collect", summary="Collect one web analytics event (JSON or text/plain JSON)")
async def collect(request: Request) -> Response:
    try:
        body = await read_decoded_body(
            request, max_bytes=MAX_COLLECT_BODY, max_decompressed=MAX_COLLECT_BODY
        )
        payload = validate_collect(decode_collect_body(body, request.headers.get("content-type")))
        return await _collect(request, payload, pixel=False)
    except AppError as exc:
        raise _with_cors(exc) from None


@router.get("/collect", summary="Collect one event from query parameters; answers a 1x1 GIF")
async def collect_pixel(request: Request) -> Response:
    try:
        payload = parse_collect_query(request.query_params.multi_items())
        return await _collect(request, payload, pixel=True)
    except AppError as exc:
        raise _with_cors(exc) from None


@router.options("/collect", include_in_schema=False)
async def collect_preflight(request: Request) -> Response:
    origin = request.headers.get("origin")
    headers = {
        "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
        "Access-Control-Allow-Headers": request.headers.get(
            "access-control-request-headers", "Content-Type"
        ),
        "Access-Control-Max-Age": "86400",
    }
    site_ref = request.query_params.get("siteId")
    site: Site | None = None
    if site_ref and origin:
        state = _state(request)
        site = await service.resolve_site(_db(request), state.sites, site_ref, auto_create=False)
        # An unparsable Origin has no host: a site with hostnames refuses it, as Origin: null.
        if not site.settings.allows_host(origin_host(origin)):
            return Response(status_code=403, headers={"Vary": "Origin"})
    return Response(status_code=204, headers={**headers, **_cors_headers(origin, site)})


@router.get("/js/gati.js", summary="The tracking script", include_in_schema=False)
async def tracking_script(request: Request) -> Response:
    headers = {
        "Cache-Control": "public, max-age=3600",
        "Access-Control-Allow-Origin": "*",
        "Vary": "Accept-Encoding",
    }
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(
            SCRIPT_GZIP,
            media_type="application/javascript",
            headers={**headers, "Content-Encoding": "gzip"},
        )
    return Response(SCRIPT, media_type="application/javascript", headers=headers)


# --- reads -----------------------------------------------------------------------------------


def _recent(event: Any, slug: str) -> dict[str, Any]:
    return {
        "event_id": event.id,
        "event_type": event.event_type,
        "site_id": slug,
        "session_id": event.session_id,
        "visitor_id": event.visitor_id,
        "timestamp": event.timestamp,
        "url": event.url,
        "path": event.path,
        "referrer": event.referrer,
        "title": event.title,
        "source": event.source,
        "utm_source": event.utm_source,
        "utm_medium": event.utm_medium,
        "utm_campaign": event.utm_campaign,
        "utm_term": event.utm_term,
        "utm_content": event.utm_content,
        "browser": event.browser,
        "os": event.os,
        "device": event.device,
        "country": event.country,
        "is_bot": event.is_bot,
        "properties": event.properties or {},
    }


@router.get("/events/recent", summary="The newest web analytics events of the caller's sites")
async def recent_events(
    session: ReadSessionDep,
    scope: ReadScope,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> ORJSONResponse:
    rows = await repository.list_recent(session, project_ids=scope, limit=limit)
    events = [_recent(event, slug) for event, slug in rows]
    return ORJSONResponse({"events": events, "count": len(events)})


# --- site settings ---------------------------------------------------------------------------


async def readable_site(db: Database, principal: Any, ref: str) -> Site:
    async with db.read_session() as session:
        project = await service.find_project(session, ref)
    if project is None or not principal.may_read(project.id):
        raise AppError(
            404,
            "site_not_found",
            f"Site {ref} does not exist or is not visible to these credentials",
        )
    return service._site(project)


@router.get("/api/v1/sites/{site}/settings", response_model=SiteSettingsRead)
async def get_site_settings(site: str, db: DatabaseDep, principal: Reader) -> SiteSettingsRead:
    found = await readable_site(db, principal, site)
    return SiteSettingsRead(site_id=found.slug, **found.settings.as_dict())


@router.patch("/api/v1/sites/{site}/settings", response_model=SiteSettingsRead)
async def update_site_settings(
    site: str,
    body: SiteSettingsUpdate,
    request: Request,
    db: DatabaseDep,
    session: SessionDep,
    principal: Reader,
) -> SiteSettingsRead:
    found = await readable_site(db, principal, site)
    if principal.kind == "public_key" or not principal.may_write(found.project_id):
        raise AppError(403, "write_not_allowed", "These credentials cannot change this site")
    updated = await service.update_settings(
        session, project_id=found.project_id, changes=body.model_dump(exclude_unset=True)
    )
    _state(request).sites.forget(found.project_id)
    return SiteSettingsRead(site_id=found.slug, **updated.as_dict())


# --- statistics ------------------------------------------------------------------------------

PeriodParam = Annotated[
    str, Query(description="day, 7d, 30d, month, 12mo or custom", examples=["30d"])
]
DateParam = Annotated[
    str | None,
    Query(description="YYYY-MM-DD (the period's last day), or FROM,TO for custom"),
]
FiltersParam = Annotated[
    str | None, Query(description="e.g. page==/pricing;source==Google|Twitter;browser!=Chrome")
]
MetricsParam = Annotated[
    str | None, Query(description="comma-separated; default: all", examples=["visitors,pageviews"])
]
CompareParam = Annotated[
    str | None, Query(description="previous_period to compare with the period before")
]


def _compare(value: str | None) -> bool:
    if value in (None, "", "false"):
        return False
    if value in ("previous_period", "true"):
        return True
    raise AppError(
        422,
        "validation_error",
        "compare: use previous_period",
        extra={"errors": [{"field": "compare", "message": "use previous_period"}]},
    )


async def _stats_query(
    db: Database,
    principal: Any,
    site: str,
    *,
    period: str,
    date: str | None,
    interval: str | None,
    filters: str | None,
    metrics: str | None,
) -> tuple[Site, stats.Query]:
    found = await readable_site(db, principal, site)
    query = stats.build_query(
        project_id=found.project_id,
        timezone=found.settings.timezone,
        period=period,
        date=date,
        interval=interval,
        filters=filters,
        metrics=metrics,
    )
    return found, query


@router.get("/api/v1/sites/{site}/stats/aggregate", summary="Totals of the period")
async def stats_aggregate(
    site: str,
    db: DatabaseDep,
    session: ReadSessionDep,
    principal: Reader,
    period: PeriodParam = "30d",
    date: DateParam = None,
    filters: FiltersParam = None,
    metrics: MetricsParam = None,
    compare: CompareParam = None,
) -> ORJSONResponse:
    found, query = await _stats_query(
        db,
        principal,
        site,
        period=period,
        date=date,
        interval=None,
        filters=filters,
        metrics=metrics,
    )
    result = await stats.aggregate(session, db.dialect, query, compare=_compare(compare))
    return ORJSONResponse({"site_id": found.slug, **result})


@router.get("/api/v1/sites/{site}/stats/timeseries", summary="Metrics per hour, day or month")
async def stats_timeseries(
    site: str,
    db: DatabaseDep,
    session: ReadSessionDep,
    principal: Reader,
    period: PeriodParam = "30d",
    date: DateParam = None,
    interval: Annotated[str | None, Query(description="minute, hour, day, week or month")] = None,
    filters: FiltersParam = None,
    metrics: MetricsParam = None,
    compare: CompareParam = None,
) -> ORJSONResponse:
    found, query = await _stats_query(
        db,
        principal,
        site,
        period=period,
        date=date,
        interval=interval,
        filters=filters,
        metrics=metrics,
    )
    result = await stats.timeseries(session, db.dialect, query, compare=_compare(compare))
    return ORJSONResponse({"site_id": found.slug, **result})


@router.get("/api/v1/sites/{site}/stats/breakdown", summary="Metrics per value of a dimension")
async def stats_breakdown(
    site: str,
    db: DatabaseDep,
    session: ReadSessionDep,
    principal: Reader,
    property: Annotated[
        str,
        Query(
            description="page, entry_page, exit_page, source, referrer, utm_*, browser, os, "
            "device, country, event, property:NAME"
        ),
    ],
    period: PeriodParam = "30d",
    date: DateParam = None,
    filters: FiltersParam = None,
    metrics: MetricsParam = None,
    limit: int = 100,
    page: int = 1,
) -> ORJSONResponse:
    found, query = await _stats_query(
        db,
        principal,
        site,
        period=period,
        date=date,
        interval=None,
        filters=filters,
        metrics=metrics,
    )
    result = await stats.breakdown(
        session, db.dialect, query, property_name=property, limit=limit, page=page
    )
    return ORJSONResponse({"site_id": found.slug, **result})


@router.get("/api/v1/sites/{site}/stats/realtime", summary="Visitors in the last 5 minutes")
async def stats_realtime(
    site: str, db: DatabaseDep, session: ReadSessionDep, principal: Reader
) -> ORJSONResponse:
    found = await readable_site(db, principal, site)
    result = await stats.realtime(session, project_id=found.project_id)
    return ORJSONResponse({"site_id": found.slug, **result})
