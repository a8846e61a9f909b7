"""The flat route table: every domain route sits in the app's own list, ingestion routes first."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from gati.app import create_app
from gati.routing import include_flat, promote
from gati.settings import Settings
from tests.conftest import app_client, settings_for

HOT = [
    ("POST", "/api/v1/events"),
    ("POST", "/collect"),
    ("POST", "/api/v1/metrics"),
    ("POST", "/api/{project_id}/envelope/"),
    ("POST", "/api/{project_id}/store/"),
    ("POST", "/api/events"),
    ("POST", "/v1/traces"),
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
    assert _pairs(app)[: len(HOT)] == HOT
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


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        # The POST route promoted first matches the path only partly: GET still reaches /{id}.
        ("GET", "/api/v1/events/batch", 404),
        ("PUT", "/api/v1/metrics", 405),
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
