"""Product events and metric points at the edges of what can be stored, on both databases:
each refused item gets a 422 (or its own error in a batch) that names the field."""

from __future__ import annotations

import httpx
import pytest

JSON = {"content-type": "application/json"}


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("timestamp", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"])
async def test_event_timestamp_without_a_utc_form_is_422(
    client: httpx.AsyncClient, timestamp: str
) -> None:
    response = await client.post("/api/v1/events", json={"event_type": "a", "timestamp": timestamp})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "timestamp"
    batch = [{"event_type": "a", "timestamp": timestamp}, {"event_type": "ok"}]
    response = await client.post("/api/v1/events/batch", json=batch)
    assert response.status_code == 200, response.text
    assert response.json()["count"] == 1 and response.json()["errors"][0]["index"] == 0


async def test_deeply_nested_properties_are_422(client: httpx.AsyncClient) -> None:
    body = b'{"event_type": "a", "properties": ' + _nested(1000) + b"}"
    response = await client.post("/api/v1/events", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "properties"
    assert "nested" in response.json()["detail"]
    ok = b'{"event_type": "a", "properties": ' + _nested(20) + b"}"
    assert (await client.post("/api/v1/events", content=ok, headers=JSON)).status_code == 201


async def test_metric_point_edges(client: httpx.AsyncClient) -> None:
    for point in (
        {"name": "m", "value": 1, "timestamp": "9999-12-31T23:59:59-12:00"},
        {"name": "m", "value": 1.7e308},
    ):
        response = await client.post("/api/v1/metrics", json=point)
        assert response.status_code == 422, response.text
    points = [
        {"name": "big", "value": 1e300, "timestamp": "2024-01-01T00:00:00Z"},
        {"name": "big", "value": 1e300, "timestamp": "2024-01-01T00:00:01Z"},
    ]
    assert (await client.post("/api/v1/metrics", json=points)).json()["count"] == 2
    response = await client.get(
        "/api/v1/metrics/aggregate/big",
        params={"fn": "sum", "start": "2023-12-31T00:00:00Z", "end": "2024-01-02T00:00:00Z"},
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("bound", ["start", "end"])
async def test_listing_with_a_bound_without_a_utc_form_is_4xx(
    client: httpx.AsyncClient, bound: str
) -> None:
    response = await client.get("/api/v1/events", params={bound: "9999-12-31T23:59:59-12:00"})
    assert response.status_code == 422, response.text
