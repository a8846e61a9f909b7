"""POST /api/events at the edges: numbers, timestamps and nesting the storage cannot hold are
refused per item (never a 500), totals saturate instead of overflowing, and reads keep working."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import update

from gati.db.engine import Database
from gati.tracing.bounds import (
    MAX_COST,
    MAX_DATA_DEPTH,
    MAX_LATENCY_MS,
    MAX_TIMESTAMP,
    MAX_TOKENS,
    MAX_TOTAL,
    MIN_TIMESTAMP,
)
from gati.tracing.models import Agent, AgentMetric, Run
from tests.tracing.helpers import event

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1

# (data key, value): each must be refused with the field ``data.<key>`` named.
OUT_OF_RANGE: list[tuple[str, Any]] = [
    ("tokens_in", 2**63),
    ("tokens_out", 2**64),
    ("input_tokens", 1e308),
    ("output_tokens", -1),
    ("prompt_tokens", -9223372036854775809),
    ("completion_tokens", MAX_TOKENS + 1),
    ("tokens_cache_read", 2**63),
    ("cache_read_tokens", 1e308),
    ("cached_tokens", 2**70),
    ("tokens_cache_creation", -5),
    ("cache_creation_tokens", 1e300),
    ("cache_write_tokens", 2**64),
    ("tokens_reasoning", 2**63),
    ("reasoning_tokens", -1.5),
    ("latency_ms", 2**70),
    ("duration_ms", 1e308),
    ("latency_ms", -1),
    ("latency_ms", MAX_LATENCY_MS + 1),
    ("cost", 1e308),
    ("total_cost", 1e308),
    ("cost", -0.01),
    ("cost", MAX_COST * 2),
]


async def post(client: httpx.AsyncClient, events: list[dict[str, Any]]) -> httpx.Response:
    return await client.post("/api/events", json={"events": events})


async def test_out_of_range_numbers_fail_only_their_event(client: httpx.AsyncClient) -> None:
    good = [event("llm_call", "edge", cost=0.5, tokens_in=10, tokens_out=4, latency_ms=20)]
    bad = [event("llm_call", "edge", **{key: value}) for key, value in OUT_OF_RANGE]
    r = await post(client, [*good, *bad, event("llm_call", "edge", cost=0.25)])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "partial"
    assert body["count"] == 2 and body["failed"] == len(OUT_OF_RANGE)
    got = {(e["index"], e["field"]) for e in body["errors"]}
    assert got == {(i + 1, f"data.{key}") for i, (key, _) in enumerate(OUT_OF_RANGE)}
    for error in body["errors"]:
        assert "must be" in error["message"] and "got" in error["message"], error
    run = (await client.get("/api/runs/edge")).json()
    assert run["event_count"] == 2
    assert run["tokens_in"] == 10 and run["tokens_out"] == 4
    assert run["total_cost"] == pytest.approx(0.75)
    agent = (await client.get("/api/agents/my_agent")).json()
    assert agent["tokens_in"] == 10 and agent["total_events"] == 2


@pytest.mark.parametrize(("key", "value"), OUT_OF_RANGE[:1] + OUT_OF_RANGE[-4:])
async def test_a_batch_of_only_out_of_range_events_is_422(
    client: httpx.AsyncClient, key: str, value: Any
) -> None:
    r = await post(client, [event("llm_call", "only", **{key: value})])
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "no_valid_events"
    assert r.json()["errors"][0]["field"] == f"data.{key}"
    assert (await client.get("/api/agents")).json() == []


async def test_the_bounds_themselves_are_accepted(client: httpx.AsyncClient) -> None:
    at_max = event(
        "llm_call",
        "max",
        tokens_in=MAX_TOKENS,
        tokens_out=float(MAX_TOKENS),
        tokens_cache_read=MAX_TOKENS,
        latency_ms=MAX_LATENCY_MS,
        cost=MAX_COST,
    )
    at_zero = event("llm_call", "max", tokens_in=0, tokens_out=0.0, latency_ms=0, cost=0)
    r = await post(client, [at_max, at_zero])
    assert r.status_code == 200 and r.json()["count"] == 2, r.text
    run = (await client.get("/api/runs/max")).json()
    assert run["tokens_in"] == MAX_TOKENS and run["tokens_out"] == MAX_TOKENS
    assert run["total_cost"] == MAX_COST
    assert run["total_duration_ms"] == pytest.approx(MAX_LATENCY_MS)


async def test_token_totals_saturate_and_every_read_still_works(
    client: httpx.AsyncClient,
) -> None:
    """Sums of in-range counts may exceed what a column holds: every total (run, agent, rollup
    bucket, summary) stops at MAX_TOTAL instead of failing the batch or the reads."""
    big = MAX_TOKENS
    # One batch: its own per-run sum is already over the int64 range.
    batch = [event("llm_call", "sum", tokens_in=big, tokens_out=big) for _ in range(1100)]
    r = await post(client, batch)
    assert r.status_code == 200 and r.json()["count"] == 1100, r.text
    # A later batch adds to the saturated rows, through another agent and a new run too.
    r = await post(
        client,
        [
            event("llm_call", "sum", tokens_in=big, cost=1),
            event("llm_call", "sum2", agent="other", tokens_in=big, tokens_out=5),
        ],
    )
    assert r.status_code == 200, r.text
    run = (await client.get("/api/runs/sum")).json()
    assert run["tokens_in"] == MAX_TOTAL and run["tokens_out"] == MAX_TOTAL
    assert run["event_count"] == 1101 and run["total_cost"] == 1
    agent = (await client.get("/api/agents/my_agent")).json()
    assert agent["tokens_in"] == MAX_TOTAL and agent["tokens_out"] == MAX_TOTAL
    for period in ("hourly", "daily", "monthly"):
        r = await client.get(f"/api/agents/my_agent/metrics?period={period}")
        assert r.status_code == 200, r.text
        metrics = r.json()
        assert metrics["total_tokens_in"] == MAX_TOTAL
        assert [b["tokens_in"] for b in metrics["series"]] == [MAX_TOTAL]
    summary = (await client.get("/api/metrics/summary")).json()
    assert summary["total_tokens_in"] == MAX_TOTAL  # two agents at the ceiling: still capped
    assert summary["total_tokens_out"] == MAX_TOTAL
    assert summary["total_events"] == 1102


async def test_totals_stored_beyond_the_ceiling_are_repaired_not_overflowed(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Rows written before the bounds existed (int64 max tokens, 1e308 costs): the next batch
    saturates them instead of overflowing the column, and reads render them."""
    r = await post(client, [event("llm_call", "old", tokens_in=1, cost=1, latency_ms=1)])
    assert r.status_code == 200
    async with db.session() as session:
        await session.execute(
            update(Run).values(
                tokens_in=INT64_MAX,
                tokens_out=INT64_MAX,
                total_cost=1e308,
                event_count=INT32_MAX,
                error_count=INT32_MAX,
            )
        )
        await session.execute(
            update(Agent).values(
                tokens_in=INT64_MAX, tokens_out=INT64_MAX, total_cost=1e308, total_events=INT64_MAX
            )
        )
        await session.execute(
            update(AgentMetric).values(tokens_in=INT64_MAX, cost=1e308, duration_ms=1e308)
        )
        await session.commit()
    for path in ("/api/agents/my_agent/metrics", "/api/metrics/summary", "/api/agents/my_agent"):
        assert (await client.get(path)).status_code == 200, path
    r = await post(
        client,
        [
            event("llm_call", "old", tokens_in=MAX_TOKENS, cost=MAX_COST, latency_ms=5),
            event("error", "old"),
        ],
    )
    assert r.status_code == 200, r.text
    run = (await client.get("/api/runs/old")).json()
    assert run["tokens_in"] == MAX_TOTAL and run["total_cost"] == MAX_TOTAL
    assert run["event_count"] == run["error_count"] == INT32_MAX
    assert run["status"] == "failed"
    assert (await client.get("/api/agents/my_agent")).json()["total_events"] == MAX_TOTAL
    metrics = (await client.get("/api/agents/my_agent/metrics?period=hourly")).json()
    assert metrics["total_tokens_in"] == MAX_TOTAL
    assert metrics["series"][0]["tokens_in"] == MAX_TOTAL
    assert metrics["series"][0]["cost"] == MAX_TOTAL
    assert metrics["series"][0]["duration_ms"] == MAX_TOTAL
    summary = (await client.get("/api/metrics/summary")).json()
    assert summary["total_tokens_in"] == MAX_TOTAL and summary["total_cost"] == MAX_TOTAL


# --- timestamps -----------------------------------------------------------------------------

BAD_TIMESTAMPS: list[Any] = [
    "0001-01-01T00:00:00Z",  # PostgreSQL: -infinity
    "9999-12-31T23:59:59-12:00",  # beyond year 9999 in UTC
    "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
    "9999-12-31T23:59:59.999999Z",  # PostgreSQL: infinity
    "1969-12-31T23:59:59Z",
    "9000-01-01T00:00:00Z",
    "8999-12-31T23:59:59-00:01",
    -1,
    1e20,
    2**70,
]


async def test_timestamps_outside_the_accepted_range_fail_only_their_event(
    client: httpx.AsyncClient,
) -> None:
    bad = [dict(event("llm_call", "ts", cost=1), timestamp=value) for value in BAD_TIMESTAMPS]
    lowest = dict(event("agent_start", "ts"), timestamp="1970-01-01T00:00:00Z")
    highest = dict(
        event("agent_end", "ts2", latency_ms=MAX_LATENCY_MS),
        timestamp="8999-12-31T23:59:59.999999Z",
    )
    r = await post(client, [lowest, *bad, highest])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 2 and body["failed"] == len(BAD_TIMESTAMPS)
    assert [e["index"] for e in body["errors"]] == list(range(1, len(BAD_TIMESTAMPS) + 1))
    for error in body["errors"]:
        assert error["field"] == "timestamp"
        assert "1970-01-01T00:00:00Z" in error["message"], error
    run = (await client.get("/api/runs/ts")).json()
    assert run["started_at"].startswith("1970-01-01T00:00:00")
    run2 = (await client.get("/api/runs/ts2")).json()
    assert run2["started_at"].startswith("8999-12-31T23:59:59.999999")
    assert run2["total_duration_ms"] == pytest.approx(MAX_LATENCY_MS)
    for period in ("hourly", "daily", "monthly"):
        r = await client.get(f"/api/agents/my_agent/metrics?period={period}")
        assert r.status_code == 200 and len(r.json()["series"]) == 2, r.text


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:59:59-12:00",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59.999999-00:01",
    ],
)
@pytest.mark.parametrize("name", ["since", "until"])
async def test_metrics_query_times_beyond_utc_are_422(
    client: httpx.AsyncClient, name: str, value: str
) -> None:
    await post(client, [event("llm_call", "q")])
    r = await client.get("/api/agents/my_agent/metrics", params={name: value})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "validation_error"
    assert name in r.json()["detail"] and "years 1 to 9999" in r.json()["detail"]


async def test_metrics_query_times_at_the_edges_of_utc_work(client: httpx.AsyncClient) -> None:
    await post(client, [event("llm_call", "q")])
    for params in (
        {"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59.999999Z"},
        {"since": "0001-01-01T12:00:00+12:00", "until": "9999-12-31T11:00:00-12:00"},
    ):
        r = await client.get("/api/agents/my_agent/metrics", params=params)
        assert r.status_code == 200, r.text
        assert len(r.json()["series"]) == 1


# --- nesting --------------------------------------------------------------------------------


def nested(depth: int) -> Any:
    """``depth`` levels of objects and arrays (1 = a flat object), built without recursion."""
    value: Any = {"leaf": 1}
    for level in range(depth - 1):
        value = {"a": value} if level % 2 else [value]
    return value


def envelope(data: bytes) -> bytes:
    return (
        b'{"events": [{"event_type": "llm_call", "run_id": "deep", "agent_name": "a", '
        b'"data": ' + data + b"}]}"
    )


@pytest.mark.parametrize("depth", [5000, 1100, 900])
async def test_deeply_nested_data_is_a_clear_4xx(client: httpx.AsyncClient, depth: int) -> None:
    data = b'{"a":' * depth + b"1" + b"}" * depth
    r = await client.post(
        "/api/events", content=envelope(data), headers={"Content-Type": "application/json"}
    )
    if depth > 1000:  # beyond what any JSON parser here reads: the body is refused
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "malformed_json"
    else:
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "data"
        assert "nested deeper than" in r.json()["errors"][0]["message"]


@pytest.mark.parametrize("body", [b"[" * 5000 + b"]" * 5000, b'{"a":' * 5000 + b"1" + b"}" * 5000])
async def test_a_deeply_nested_body_is_malformed_json(
    client: httpx.AsyncClient, body: bytes
) -> None:
    r = await client.post("/api/events", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "malformed_json"


@pytest.mark.parametrize("nul", [False, True])
async def test_data_nesting_limit_on_both_validation_paths(
    client: httpx.AsyncClient, nul: bool
) -> None:
    """At the limit the event is stored and every read returns it; one level more is refused.
    ``nul`` adds a refused event, which sends the batch down the item-by-item path."""
    ok = event("llm_call", "nest", event_id="ok", model="gpt-4o", tokens_in=5)
    ok["data"]["deep"] = nested(MAX_DATA_DEPTH - 1)  # data itself is level 1
    ok["data"]["run_metadata"] = {"tree": nested(MAX_DATA_DEPTH - 2)}
    too_deep = event("llm_call", "nest")
    too_deep["data"]["deep"] = nested(MAX_DATA_DEPTH)
    events = [ok, too_deep]
    if nul:
        events.append(event("llm_call", "nest", note="\x00"))
    r = await client.post(
        "/api/events",
        content=orjson.dumps({"events": events}),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 1
    assert body["errors"][0] == {
        "index": 1,
        "field": "data",
        "message": f"is nested deeper than {MAX_DATA_DEPTH} levels",
    }
    for path in (
        "/api/runs/nest",
        "/api/runs/nest/timeline",
        "/api/runs/nest/trace",
        "/api/agents/my_agent/runs",
    ):
        r = await client.get(path)
        assert r.status_code == 200, (path, r.text)
    timeline = (await client.get("/api/runs/nest/timeline")).json()
    assert timeline["events"][0]["data"]["deep"] == ok["data"]["deep"]
    assert timeline["events"][0]["data"]["cost_source"] == "price_table"


async def test_deep_members_outside_data_are_ignored_on_both_paths(
    client: httpx.AsyncClient,
) -> None:
    """Members Gati does not read are not stored: their nesting does not matter."""
    extra = event("llm_call", "extra", event_id="x1")
    extra["unknown"] = "DEEP"
    extra["environment"] = "DEEPER"
    for events in ([extra], [dict(extra, event_id="x2"), {"not": "an event"}]):
        body = orjson.dumps({"events": events})
        body = body.replace(b'"DEEP"', deep_json(600)).replace(b'"DEEPER"', deep_json(300))
        r = await client.post(
            "/api/events", content=body, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 200, r.text
        assert r.json()["count"] == 1
    assert (await client.get("/api/runs/extra")).json()["event_count"] == 2


def deep_json(depth: int) -> bytes:
    return b'{"a":[' * (depth // 2) + b"1" + b"]}" * (depth // 2)


def test_constants_are_consistent() -> None:
    assert MAX_TOKENS == MAX_TOTAL == 2**53 - 1
    assert MAX_LATENCY_MS == 10 * 365.25 * 24 * 3600 * 1000
    assert (
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(9000, 1, 1, tzinfo=UTC),
    ) == (MIN_TIMESTAMP, MAX_TIMESTAMP)
    # The latest event's end is still a date (and not PostgreSQL's "infinity").
    assert MAX_TIMESTAMP + timedelta(milliseconds=MAX_LATENCY_MS) < datetime.max.replace(tzinfo=UTC)
