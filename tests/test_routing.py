"""The flat route table: every domain route sits in the app's own list, ingestion routes first."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.routing import Route

from gati.app import SINGLE_EVENT_ROUTES, create_app
from gati.routing import include_flat, plain_routes, promote
from gati.settings import Settings
from tests.conftest import app_client, settings_for

PROMOTED = [
    ("POST", "/api/events"),
    ("POST", "/v1/traces"),
    ("POST", "/api/v1/events/batch"),
]


def _pairs(app: FastAPI) -> list[tuple[str, str]]:
    return [
        (method, route.path)
        for route in app.router.routes
        if isinstance(route, APIRoute)
        for method in sorted(route.methods or ())
    ]


def test_no_lazily_included_routers_and_ingestion_first() -> None:
    app = create_app(Settings(database_url="sqlite:///unused.db"))
    kinds = {type(route).__name__ for route in app.router.routes}
    assert "_IncludedRouter" not in kinds, kinds
    plain = app.router.routes[: len(SINGLE_EVENT_ROUTES)]
    assert [(type(r), *r.methods, r.path) for r in plain if isinstance(r, Route)] == [
        (Route, method, path) for method, path in SINGLE_EVENT_ROUTES
    ]
    # Each plain route has its FastAPI twin (same endpoint name), which the OpenAPI document shows.
    twins = {(r.name, r.path) for r in app.router.routes if isinstance(r, APIRoute)}
    assert all((r.name, r.path) in twins for r in plain)
    operations = app.openapi()["paths"]
    assert "post" in operations["/api/v1/metrics"]
    assert "post" in operations["/api/{project_id}/envelope/"]
    assert _pairs(app)[: len(PROMOTED)] == PROMOTED
    # Each (method, path) once: flattening did not duplicate a route.
    pairs = _pairs(app)
    assert len(pairs) == len(set(pairs))
    assert ("GET", "/api/v1/projects/{project}/issues") in pairs
    assert ("GET", "/api/agents/{agent_name}") in pairs


def test_api_prefix_applies_to_the_tracing_routes() -> None:
    app = create_app(Settings(database_url="sqlite:///unused.db", api_prefix="/tracing"))
    pairs = _pairs(app)
    assert ("POST", "/tracing/events") in pairs
    assert ("GET", "/tracing/runs/{run_id}") in pairs
    assert ("POST", "/api/events") not in pairs


def test_include_flat_keeps_route_options_and_promote_refuses_unknown() -> None:
    router = APIRouter(tags=["demo"])

    @router.post("/things", status_code=202, summary="Make a thing")
    async def make_thing() -> dict[str, str]:
        return {"ok": "yes"}

    app = FastAPI()
    include_flat(app, router, "/v9")
    route = app.router.routes[-1]
    assert isinstance(route, APIRoute)
    assert (route.path, route.status_code, route.tags, route.summary) == (
        "/v9/things",
        202,
        ["demo"],
        "Make a thing",
    )
    with pytest.raises(LookupError, match="GET /v9/things matches 0 routes"):
        promote(app, [("GET", "/v9/things")])


def test_plain_routes_take_only_request_and_str_path_parameters() -> None:
    app = FastAPI()

    async def settings() -> str:
        return "x"

    @app.post("/a/{name}")
    async def by_name(request: Request, name: str) -> Response:
        return Response(f"{request.method} {name}")

    @app.post("/b/{number}")
    async def by_number(request: Request, number: int) -> Response:
        return Response(str(number))

    @app.post("/c")
    async def with_dependency(request: Request, value: str = Depends(settings)) -> Response:
        return Response(value)

    plain_routes(app, [("POST", "/a/{name}")])
    assert isinstance(app.router.routes[0], Route) and not isinstance(
        app.router.routes[0], APIRoute
    )
    with pytest.raises(TypeError, match="number"):
        plain_routes(app, [("POST", "/b/{number}")])
    with pytest.raises(TypeError, match="value"):
        plain_routes(app, [("POST", "/c")])
    with pytest.raises(LookupError, match=r"GET /a/\{name\} matches 0 routes"):
        plain_routes(app, [("GET", "/a/{name}")])


async def test_plain_route_passes_path_parameters() -> None:
    app = FastAPI()

    @app.post("/a/{name}")
    async def by_name(request: Request, name: str) -> Response:
        return Response(f"{request.method} {name}")

    plain_routes(app, [("POST", "/a/{name}")])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.post("/a/hello")
        assert (r.status_code, r.text) == (200, "POST hello")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        # The POST route promoted first matches the path only partly: GET still reaches /{id}.
        ("GET", "/api/v1/events/batch", 404),
        ("PUT", "/api/v1/metrics", 405),
        # The plain GET /collect route answers GET only, like FastAPI's (HEAD collects nothing).
        ("HEAD", "/collect", 405),
        ("GET", "/health", 200),
    ],
)
async def test_promoted_routes_do_not_shadow_others(
    database_url: str, method: str, path: str, status: int
) -> None:
    async with app_client(settings_for(database_url)) as client:
        r: httpx.Response = await client.request(method, path)
        assert r.status_code == status, r.text
        if status == 404:
            assert r.json()["error"] == "event_not_found"
