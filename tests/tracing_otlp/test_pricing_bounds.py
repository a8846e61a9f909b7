"""Pricing at the edges, on SQLite and PostgreSQL: a computed cost never exceeds MAX_COST,
counts out of range are 422 on /quote, times beyond UTC are 422, and data pricing cannot read
is the same 400 on both validation paths."""

from __future__ import annotations

import uuid

import httpx
import orjson
import pytest

from gati.tracing.bounds import MAX_COST, MAX_TOKENS, MAX_TOTAL
from gati.tracing.pricing import TokenUsage
from tests.tracing.helpers import event

OVERFLOWING = ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"]


async def test_a_computed_cost_is_capped(client: httpx.AsyncClient) -> None:
    price = {"model": "pricey", "input_per_mtok": 1e300, "output_per_mtok": 1e300}
    assert (await client.post("/api/pricing/prices", json=price)).status_code == 201
    run = str(uuid.uuid4())
    events = [
        event("llm_call", run, model="pricey", tokens_in=MAX_TOKENS, tokens_out=MAX_TOKENS)
        for _ in range(3)
    ]
    response = await client.post("/api/events", json={"events": events})
    assert response.status_code == 200 and response.json()["count"] == 3, response.text
    timeline = (await client.get(f"/api/runs/{run}/timeline")).json()
    assert [e["cost"] for e in timeline["events"]] == [MAX_COST] * 3
    assert [e["data"]["cost"] for e in timeline["events"]] == [MAX_COST] * 3
    assert (await client.get(f"/api/runs/{run}")).json()["total_cost"] == 3 * MAX_COST
    agent = (await client.get("/api/agents/my_agent")).json()
    assert agent["tokens_in"] == MAX_TOTAL  # three counts at the bound: the total saturates
    quote = await client.get(
        "/api/pricing/quote",
        params={"model": "pricey", "tokens_in": MAX_TOKENS, "tokens_out": MAX_TOKENS},
    )
    assert quote.status_code == 200 and quote.json()["cost"] == MAX_COST


@pytest.mark.parametrize(
    "name",
    ["tokens_in", "tokens_out", "tokens_cache_read", "tokens_cache_creation", "tokens_reasoning"],
)
async def test_quote_counts_out_of_range_are_422(client: httpx.AsyncClient, name: str) -> None:
    for value in (MAX_TOKENS + 1, 2**70, -1):
        response = await client.get(
            "/api/pricing/quote", params={"model": "gpt-4o", name: str(value)}
        )
        assert response.status_code == 422, response.text
        assert name in response.json()["detail"]


@pytest.mark.parametrize("value", OVERFLOWING)
async def test_times_beyond_utc_are_422(client: httpx.AsyncClient, value: str) -> None:
    quote = await client.get("/api/pricing/quote", params={"model": "gpt-4o", "at": value})
    assert quote.status_code == 422, quote.text
    assert quote.json()["detail"].startswith("at: ")
    assert "years 1 to 9999" in quote.json()["detail"]
    price = {"model": "m", "input_per_mtok": 1, "output_per_mtok": 1, "effective_from": value}
    created = await client.post("/api/pricing/prices", json=price)
    assert created.status_code == 422, created.text
    assert "effective_from" in created.json()["detail"]
    assert (await client.get("/api/pricing/prices")).json() == []


@pytest.mark.parametrize("slow_path", [False, True])
async def test_data_no_json_reader_here_can_decode_is_400_on_both_paths(
    client: httpx.AsyncClient, slow_path: bool
) -> None:
    """The fast path keeps ``data`` as text and reads 1e400 (it skips it); pricing must decode
    it. The body gets the answer the item-by-item path gives it: 400 malformed_json."""
    priced = event("llm_call", "r1", model="gpt-4o", tokens_in=5, big="BIG")
    items = [priced, {"not": "an event"}] if slow_path else [priced]
    body = orjson.dumps({"events": items}).replace(b'"BIG"', b"1e400")
    response = await client.post(
        "/api/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "malformed_json"
    assert (await client.get("/api/agents")).json() == []


def test_token_usage_ignores_counts_it_cannot_hold() -> None:
    data = {
        "tokens_in": "1e300",
        "tokens_out": str(MAX_TOKENS),
        "cached_tokens": "nan",
        "reasoning_tokens": -3,
        "cache_write_tokens": 2**70,
    }
    assert TokenUsage.from_data(data) == TokenUsage(output=MAX_TOKENS)
