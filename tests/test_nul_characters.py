"""The NUL character (U+0000) on every route, on SQLite and PostgreSQL: a clear 4xx or a
per-item error that names the field, never a 500, and nothing half-stored.

PostgreSQL cannot hold U+0000 in text or jsonb; in JSON it arrives as the escape ``\\u0000``
and in a URL as ``%00`` (docs/decisions.md, "NUL characters")."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gati.db.engine import Database
from gati.events.models import Event
from gati.ingest.nul import NUL_REASON, nul_field
from gati.metrics.models import MetricPoint
from gati.web.models import WebEvent
from tests.auth.helpers import register

JSON = {"content-type": "application/json"}


async def _count(db: Database, model: Any) -> int:
    async with db.read_session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def _single_error(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_error"
    assert body["errors"][0]["field"] == field
    assert body["errors"][0]["message"] == NUL_REASON
    assert body["detail"] == f"{field}: {NUL_REASON}"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"event_type": "x", "properties": {"k": "a\\u0000b"}}', "properties.k"),
        (b'{"event_type": "x", "properties": {"k\\u0000": 1}}', "properties.k\\u0000"),
        (b'{"event_type": "x", "properties": {"l": [1, {"m": "\\u0000"}]}}', "properties.l[1].m"),
        (b'{"event_type": "x\\u0000"}', "event_type"),
        (b'{"event_type": "x", "event_id": "e\\u0000"}', "event_id"),
    ],
)
async def test_product_event_with_nul_is_422_naming_the_field(
    client: httpx.AsyncClient, db: Database, body: bytes, field: str
) -> None:
    _single_error(await client.post("/api/v1/events", content=body, headers=JSON), field)
    assert await _count(db, Event) == 0


async def test_product_event_with_escaped_backslash_is_plain_text(
    client: httpx.AsyncClient,
) -> None:
    body = b'{"event_type": "x", "properties": {"k": "a\\\\u0000b"}}'
    response = await client.post("/api/v1/events", content=body, headers=JSON)
    assert response.status_code == 201, response.text
    stored = (await client.get(f"/api/v1/events/{response.json()['id']}")).json()
    assert stored["properties"] == {"k": "a\\u0000b"}


async def test_product_batch_refuses_only_the_item_with_nul(
    client: httpx.AsyncClient, db: Database
) -> None:
    body = (
        b'[{"event_type": "bad", "properties": {"k": "\\u0000"}},'
        b' {"event_type": "good", "properties": {"k": "v"}}]'
    )
    response = await client.post("/api/v1/events/batch", content=body, headers=JSON)
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["count"] == 1 and out["failed"] == 1
    assert out["errors"] == [{"index": 0, "field": "properties.k", "message": NUL_REASON}]
    items = (await client.get("/api/v1/events")).json()["items"]
    assert [item["event_type"] for item in items] == ["good"]


async def test_metric_point_with_nul_in_a_tag(client: httpx.AsyncClient, db: Database) -> None:
    single = b'{"name": "m", "value": 1, "tags": {"env": "a\\u0000"}}'
    response = await client.post("/api/v1/metrics", content=single, headers=JSON)
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [{"index": 0, "field": "tags.env", "message": NUL_REASON}]
    assert await _count(db, MetricPoint) == 0
    many = (
        b'[{"name": "m", "value": 1, "tags": {"env": "a\\u0000"}},'
        b' {"name": "m", "value": 2, "id": "c\\u0000"},'
        b' {"name": "m", "value": 3, "tags": {"env": "prod"}}]'
    )
    response = await client.post("/api/v1/metrics", content=many, headers=JSON)
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["count"] == 1 and out["failed"] == 2
    assert [(e["index"], e["field"]) for e in out["errors"]] == [(0, "tags.env"), (1, "id")]
    assert await _count(db, MetricPoint) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"siteId": "s", "url": "https://a.io/\\u0000"}', "url"),
        (b'{"siteId": "s", "url": "https://a.io/", "title": "t\\u0000"}', "title"),
        (
            b'{"siteId": "s", "url": "https://a.io/", "properties": {"p": "\\u0000"}}',
            "properties.p",
        ),
    ],
)
async def test_collect_with_nul_is_422_and_stores_nothing(
    client: httpx.AsyncClient, db: Database, body: bytes, field: str
) -> None:
    for content_type in ("application/json", "text/plain"):
        response = await client.post(
            "/collect", content=body, headers={"content-type": content_type}
        )
        _single_error(response, field)
        assert response.headers["access-control-allow-origin"] == "*"
    assert await _count(db, WebEvent) == 0


@pytest.mark.parametrize(
    "url",
    [
        "/api/agents/a%00b",
        "/api/runs/r%00",
        "/api/events/e%00/children",
        "/api/v1/events?event_type=a%00",
        "/api/v1/projects/p%00/issues",
        "/api/v1/sites/s%00/stats/aggregate",
        "/collect?siteId=s&url=https://a.io/%00",
    ],
)
async def test_url_with_nul_is_400(client: httpx.AsyncClient, db: Database, url: str) -> None:
    response = await client.get(url)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "nul_character"
    assert await _count(db, WebEvent) == 0


async def test_error_report_refuses_a_nul_project_key_and_scrubs_the_text(
    client: httpx.AsyncClient,
) -> None:
    bad_key = b'{"project_key": "p\\u0000", "message": "boom"}'
    _single_error(await client.post("/api/v1/events", content=bad_key, headers=JSON), "project_key")
    text = b'{"project_key": "shop", "message": "boom\\u0000here"}'
    response = await client.post("/api/v1/events", content=text, headers=JSON)
    assert response.status_code == 201, response.text
    assert response.json()["message"] == "boomhere"


async def test_other_routes_answer_a_nul_with_a_4xx_not_a_500(
    make_app: Any, production_settings: dict[str, Any], dialect: str
) -> None:
    """Routes without their own check (here: naming a project) rely on the safety net: on
    PostgreSQL the database's refusal becomes ``400 nul_character``; SQLite stores the name."""
    async with make_app(**production_settings) as prod:
        owner = await register(prod)
        body = b'{"name": "Shop\\u0000"}'
        headers = {**owner["headers"], **JSON}
        response = await prod.post("/api/v1/projects", content=body, headers=headers)
        if dialect == "postgresql":
            assert response.status_code == 400, response.text
            assert response.json()["error"] == "nul_character"
        else:
            assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("a\x00", "where"),
        ({"a": {"b": ["x", ("y", "\x00")]}}, "where.a.b[1][1]"),
        ({"ok": "x", "k\x00": "v"}, "where.k\\u0000"),
        ({"a": 2**70, "b": "\x00"}, "where.b"),  # orjson cannot serialise it: walked instead
        ({"a": "a\\u0000b", "n": None, "l": [1.5, True]}, None),
    ],
)
def test_nul_field_names_the_first_place(value: Any, field: str | None) -> None:
    assert nul_field(value, "where") == field
