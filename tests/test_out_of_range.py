"""Numbers a column cannot hold, on SQLite and PostgreSQL: a 4xx that says so, never a 500.

PostgreSQL refuses an out-of-range parameter (a data exception) and sqlite3 raises
``OverflowError``; ids and offsets in URLs are bounded by their columns (``gati.apiparams``), a
project reference beyond the id column is looked up as a slug, and anything that still reaches
the storage layer is answered ``400 value_out_of_range`` by the app's safety net."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from starlette.requests import Request

from gati.apiparams import INT32_MAX, INT64_MAX, MAX_OFFSET
from tests.auth.helpers import register

HUGE = 2**70


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", f"/api/v1/issues/{INT64_MAX + 1}"),
        ("GET", f"/api/v1/issues/{HUGE}/events"),
        ("PATCH", f"/api/v1/issues/{INT64_MAX + 1}"),
        ("GET", f"/api/v1/metrics/{INT64_MAX + 1}"),
        ("GET", f"/export/runs/{INT32_MAX + 1}"),
        ("GET", f"/api/v1/projects/default/issues?offset={MAX_OFFSET + 1}"),
        ("GET", f"/api/v1/issues/1/events?offset={HUGE}"),
    ],
)
async def test_ids_and_offsets_beyond_their_column_are_422(
    client: httpx.AsyncClient, method: str, url: str
) -> None:
    body = {"status": "resolved"} if method == "PATCH" else None
    response = await client.request(method, url, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_error"


@pytest.mark.parametrize("ref", [str(INT32_MAX + 1), str(HUGE), "²"])
async def test_a_project_reference_no_id_can_be_is_not_found(
    client: httpx.AsyncClient, ref: str
) -> None:
    response = await client.get("/api/v1/events", params={"project": ref})
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "project_not_found"
    response = await client.post("/api/v1/events", json={"event_type": "a", "project": int(HUGE)})
    assert response.status_code == 422, response.text


async def test_project_routes_with_an_id_beyond_the_column(
    make_app: Any, production_settings: dict[str, Any]
) -> None:
    async with make_app(**production_settings) as prod:
        owner = await register(prod)
        created = await prod.post(
            "/api/v1/projects", json={"name": "Shop"}, headers=owner["headers"]
        )
        slug = created.json()["slug"]
        for method, url in [
            ("DELETE", f"/api/v1/projects/{slug}/keys/{INT64_MAX + 1}"),
            ("DELETE", f"/api/v1/projects/{slug}/members/{INT32_MAX + 1}"),
            ("GET", f"/api/v1/projects/{INT32_MAX + 1}"),
        ]:
            response = await prod.request(method, url, headers=owner["headers"])
            assert response.status_code in (404, 422), (url, response.text)


async def test_tracing_offsets_and_price_ids_are_bounded(client: httpx.AsyncClient) -> None:
    event = {"event_type": "agent_start", "run_id": "r1", "agent_name": "a"}
    assert (await client.post("/api/events", json={"events": [event]})).json()["count"] == 1
    response = await client.get(f"/api/agents/a/runs?offset={INT64_MAX + 1}")
    assert response.status_code == 422, response.text
    response = await client.delete(f"/api/pricing/prices/{INT32_MAX + 1}")
    assert response.status_code == 422, response.text


async def test_dates_without_a_utc_form_in_queries_are_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/events", params={"start": "9999-12-31T23:59:59-12:00"})
    assert response.status_code == 422 and response.json()["detail"].startswith("start:")
    response = await client.post(
        "/export/run", params={"since": "9999-12-31T23:59:59-12:00", "until": "2024-01-01"}
    )
    assert response.status_code == 422, response.text


async def test_the_safety_net_answers_400_not_500(client: httpx.AsyncClient) -> None:
    """What no validation caught: an ``OverflowError`` in a route, and a number the database
    (or its driver) refuses for a column type."""
    app = client.app  # type: ignore[attr-defined]

    async def overflow() -> None:
        raise OverflowError("date value out of range")

    async def too_big(request: Request) -> None:
        async with request.app.state.db.read_session() as session:
            await session.execute(text("SELECT CAST(:x AS INTEGER)"), {"x": HUGE})

    app.add_api_route("/test/overflow", overflow)
    app.add_api_route("/test/too-big", too_big)
    for url in ("/test/overflow", "/test/too-big"):
        response = await client.get(url)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "value_out_of_range"
