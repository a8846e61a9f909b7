"""POST /api/events: the seed's example, validation, limits, compression, idempotency."""

from __future__ import annotations

import gzip
import zlib

import httpx
import orjson
import pytest

from tests.tracing.helpers import event

SEED_EXAMPLE = {
    "events": [
        {
            "event_type": "llm_call",
            "run_id": "123e4567-e89b-12d3-a456-426614174000",
            "agent_name": "my_agent",
            "timestamp": "2024-11-04T10:30:00Z",
            "data": {"model": "gpt-4", "tokens_in": 100, "tokens_out": 50, "cost": 0.005},
        }
    ]
}


async def test_seed_example_verbatim(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/events", json=SEED_EXAMPLE)
    assert r.status_code == 200
    body = r.json()
    assert {k: body[k] for k in ("status", "message", "count", "failed")} == {
        "status": "success",
        "message": "Ingested 1 events",
        "count": 1,
        "failed": 0,
    }
    agents = (await client.get("/api/agents")).json()
    assert [(a["name"], a["description"]) for a in agents] == [
        ("my_agent", "Auto-created agent: my_agent")
    ]
    run = (await client.get("/api/runs/123e4567-e89b-12d3-a456-426614174000")).json()
    assert run["tokens_in"] == 100 and run["tokens_out"] == 50
    assert run["total_cost"] == pytest.approx(0.005)
    assert run["event_count"] == 1 and run["status"] == "active"


async def test_health_seed_shape(client: httpx.AsyncClient) -> None:
    for path in ("/health", "/"):
        r = await client.get(path)
        assert r.status_code == 200
        assert r.json()["status"] == "healthy" and r.json()["database"] == "connected"


async def test_per_item_errors_keep_valid_items(client: httpx.AsyncClient) -> None:
    events = [
        event("llm_call", "r1", cost=1.0),
        {"event_type": "llm_call", "agent_name": "a"},  # no run_id
        {"event_type": "x", "run_id": "r1", "agent_name": "a", "timestamp": "yesterday"},
        {"event_type": "x", "run_id": "r1", "agent_name": "a", "data": [1, 2]},
        "not an object",
        event("tool_call", "r1", cost=2.0),
    ]
    r = await client.post("/api/events", json={"events": events})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "partial"
    assert body["count"] == 2 and body["failed"] == 4
    fields = {(e["index"], e["field"]) for e in body["errors"]}
    assert {(1, "run_id"), (2, "timestamp"), (3, "data"), (4, "")} <= fields
    run = (await client.get("/api/runs/r1")).json()
    assert run["event_count"] == 2 and run["total_cost"] == pytest.approx(3.0)


async def test_all_invalid_is_422(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/events", json={"events": [{"run_id": "x"}]})
    assert r.status_code == 422
    assert r.json()["error"] == "no_valid_events"
    assert r.json()["errors"][0]["field"] == "event_type"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "malformed_json"),
        (b"", 400, "empty_body"),
        (b'{"foo": 1}', 422, "events_required"),
        (b'{"events": {}}', 422, "events_required"),
        (b'{"events": []}', 422, "empty_batch"),
    ],
)
async def test_malformed_bodies(
    client: httpx.AsyncClient, body: bytes, status: int, code: str
) -> None:
    r = await client.post("/api/events", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status
    assert r.json()["error"] == code


async def test_wrong_content_type(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/events", content=orjson.dumps(SEED_EXAMPLE), headers={"content-type": "text/csv"}
    )
    assert r.status_code == 415
    assert "text/csv" in r.json()["detail"]


async def test_batch_over_limit(make_app) -> None:  # type: ignore[no-untyped-def]
    async with make_app(max_batch_size=3) as client:
        events = [event("llm_call", "r") for _ in range(4)]
        r = await client.post("/api/events", json={"events": events})
        assert r.status_code == 413
        assert r.json()["error"] == "batch_too_large"
        assert (await client.get("/api/agents")).json() == []


async def test_event_over_size_limit(make_app) -> None:  # type: ignore[no-untyped-def]
    async with make_app(max_event_size_mb=0.001) as client:  # ~1 KB
        big = event("llm_call", "r", prompt="x" * 5000)
        small = event("llm_call", "r")
        r = await client.post("/api/events", json={"events": [big, small]})
        assert r.status_code == 200
        assert r.json()["count"] == 1 and r.json()["failed"] == 1
        assert "MAX_EVENT_SIZE_MB" in r.json()["errors"][0]["message"]


async def test_body_over_limit_is_413(make_app) -> None:  # type: ignore[no-untyped-def]
    async with make_app(max_request_body_mb=0.01) as client:
        events = [event("llm_call", "r", prompt="x" * 2000) for _ in range(10)]
        r = await client.post("/api/events", json={"events": events})
        assert r.status_code == 413


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_compressed_body(client: httpx.AsyncClient, encoding: str) -> None:
    raw = orjson.dumps({"events": [event("llm_call", "rz", cost=0.5) for _ in range(50)]})
    data = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)
    r = await client.post(
        "/api/events",
        content=data,
        headers={"content-type": "application/json", "content-encoding": encoding},
    )
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 50
    assert (await client.get("/api/runs/rz")).json()["event_count"] == 50


async def test_compression_bomb_and_garbage(make_app) -> None:  # type: ignore[no-untyped-def]
    async with make_app(max_decompressed_body_mb=1) as client:
        bomb = gzip.compress(b"[" + b" " * (20 * 1024 * 1024) + b"]")
        r = await client.post(
            "/api/events",
            content=bomb,
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
        assert r.status_code == 413
        r = await client.post(
            "/api/events",
            content=b"definitely not gzip",
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
        assert r.status_code == 400 and r.json()["error"] == "bad_compression"
        r = await client.post(
            "/api/events",
            content=b"{}",
            headers={"content-type": "application/json", "content-encoding": "lzma"},
        )
        assert r.status_code == 415


async def test_retried_batch_is_harmless(client: httpx.AsyncClient) -> None:
    batch = {
        "events": [
            event("agent_start", "r2", at=0),
            event("llm_call", "r2", at=1, cost=0.25, tokens_in=10, tokens_out=5),
            event("agent_end", "r2", at=3),
        ]
    }
    first = await client.post("/api/events", json=batch)
    second = await client.post("/api/events", json=batch)
    assert first.json()["duplicates"] == 0
    assert second.status_code == 200 and second.json()["duplicates"] == 3
    run = (await client.get("/api/runs/r2")).json()
    assert run["event_count"] == 3
    assert run["total_cost"] == pytest.approx(0.25)
    assert run["tokens_in"] == 10
    agent = (await client.get("/api/agents/my_agent")).json()
    assert agent["total_runs"] == 1 and agent["total_events"] == 3


async def test_duplicate_ids_inside_one_batch(client: httpx.AsyncClient) -> None:
    e = event("llm_call", "r3", cost=1.0, event_id="same")
    r = await client.post("/api/events", json={"events": [e, dict(e)]})
    assert r.json()["duplicates"] == 1
    assert (await client.get("/api/runs/r3")).json()["total_cost"] == pytest.approx(1.0)


async def test_missing_timestamp_defaults_and_epoch_accepted(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/events",
        json={
            "events": [
                {"event_type": "x", "run_id": "r4", "agent_name": "a"},
                {"event_type": "x", "run_id": "r4", "agent_name": "a", "timestamp": 1730716200},
                {"event_type": "x", "run_id": "r4", "agent_name": "a", "timestamp": 1730716200500},
            ]
        },
    )
    assert r.json()["count"] == 3
    timeline = (await client.get("/api/runs/r4/timeline")).json()
    stamps = [e["timestamp"] for e in timeline["events"]]
    assert stamps[0] == "2024-11-04T10:30:00Z" and stamps[1] == "2024-11-04T10:30:00.500000Z"


async def test_nul_characters_are_refused_per_item(client: httpx.AsyncClient) -> None:
    """PostgreSQL cannot store U+0000 in text or jsonb: such an event is refused on both
    databases with a reason, and the rest of the batch is stored."""
    body = (
        b'{"events": ['
        b'{"event_type": "x", "run_id": "nul", "agent_name": "a", "data": {"k": "a\\u0000b"}},'
        b'{"event_type": "x", "run_id": "nul\\u0000", "agent_name": "a"},'
        b'{"event_type": "x", "run_id": "nul", "agent_name": "a", "data": {"k": "a\\\\u0000b"}}'
        b"]}"
    )
    r = await client.post("/api/events", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["count"] == 1 and out["failed"] == 2
    assert [(e["index"], "NUL" in e["message"]) for e in out["errors"]] == [(0, True), (1, True)]
    (stored,) = (await client.get("/api/runs/nul/timeline")).json()["events"]
    assert stored["data"] == {"k": "a\\u0000b"}  # a backslash, then "u0000": plain text


async def test_invalid_utf8_is_400(client: httpx.AsyncClient) -> None:
    body = b'{"events": [{"event_type": "x", "run_id": "u8", "agent_name": "a", "data": {"k": "\xff"}}]}'
    r = await client.post("/api/events", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "malformed_json"
    assert (await client.get("/api/runs/u8")).status_code == 404


async def test_data_is_stored_as_sent_with_the_client_cost_marked(
    client: httpx.AsyncClient,
) -> None:
    body = (
        b'{"events": [{"event_type": "llm_call", "run_id": "raw", "agent_name": "a", '
        b'"data": { "cost" : 0.5, "model": "gpt-4o", "nested": {"z": [1, {"y": null}]}, '
        b'"text": "caf\\u00e9 \\ud83d\\ude00" }}]}'
    )
    r = await client.post("/api/events", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["count"] == 1
    (stored,) = (await client.get("/api/runs/raw/timeline")).json()["events"]
    assert stored["data"] == {
        "cost": 0.5,
        "model": "gpt-4o",
        "nested": {"z": [1, {"y": None}]},
        "text": "café 😀",
        "cost_source": "client",
    }
    assert (await client.get("/api/runs/raw")).json()["total_cost"] == pytest.approx(0.5)


def _big_run(run_id: str, count: int) -> list[dict[str, object]]:
    """``count`` events of one run, ~300 bytes each: a batch of thousands crosses asyncpg's
    512 KB COPY buffer, so the database has rows of it before the last event is validated."""
    return [
        event("llm_call", run_id, at=i, cost=0.5, tokens_in=10, tokens_out=2, text="x" * 150)
        for i in range(count)
    ]


async def test_a_late_bad_event_aborts_the_streamed_insert(client: httpx.AsyncClient) -> None:
    """The fast path validates each event as the COPY takes it. An event it cannot accept (here
    the 2,501st of 3,000, with a negative token count) aborts that COPY and its transaction; the
    item-by-item path then stores the 2,999 valid events once and names the bad one."""
    events = _big_run("r-late", 3000)
    events[2500]["data"] = {"tokens_in": -1}
    r = await client.post("/api/events", json={"events": events})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["count"], body["failed"], body["duplicates"]) == (2999, 1, 0)
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(2500, "data.tokens_in")]
    run = (await client.get("/api/runs/r-late")).json()
    assert run["event_count"] == 2999
    assert run["total_cost"] == pytest.approx(0.5 * 2999)
    assert run["tokens_in"] == 10 * 2999
    timeline = (await client.get("/api/runs/r-late/timeline")).json()
    assert len(timeline["events"]) == 2999


async def test_a_large_batch_with_stored_events_counts_only_the_new(
    client: httpx.AsyncClient,
) -> None:
    """A retried batch that grew: its first 100 events are stored already. The streamed COPY
    fails on the first of them; every row of it, those streamed after the failure included,
    reaches the insert that skips the stored ones, and the totals count the new events once."""
    events = _big_run("r-grown", 3000)
    first = await client.post("/api/events", json={"events": events[:100]})
    assert first.status_code == 200 and first.json()["count"] == 100
    r = await client.post("/api/events", json={"events": events})
    assert r.status_code == 200, r.text
    assert (r.json()["count"], r.json()["duplicates"]) == (3000, 100)
    run = (await client.get("/api/runs/r-grown")).json()
    assert run["event_count"] == 3000
    assert run["tokens_in"] == 10 * 3000
    assert run["total_cost"] == pytest.approx(0.5 * 3000)
    agent = (await client.get("/api/agents/my_agent")).json()
    assert agent["total_events"] == 3000 and agent["total_runs"] == 1
