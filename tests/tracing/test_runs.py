"""Runs and agents: status, totals, out-of-order events, pagination, metrics, summary."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.tracing.helpers import event


async def post(client: httpx.AsyncClient, *events: dict) -> dict:  # type: ignore[type-arg]
    r = await client.post("/api/events", json={"events": list(events)})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_status_follows_events(client: httpx.AsyncClient) -> None:
    await post(client, event("agent_start", "ok", at=0, environment="production"))
    assert (await client.get("/api/runs/ok")).json()["status"] == "active"
    await post(client, event("agent_end", "ok", at=5))
    run = (await client.get("/api/runs/ok")).json()
    assert run["status"] == "completed"
    assert run["total_duration_ms"] == pytest.approx(5000)
    assert run["environment"] == "production"

    await post(
        client, event("agent_start", "bad", at=0), event("error", "bad", at=1, message="boom")
    )
    await post(client, event("agent_end", "bad", at=2))
    run = (await client.get("/api/runs/bad")).json()
    assert run["status"] == "failed" and run["error_count"] == 1


async def test_events_out_of_order_across_batches(client: httpx.AsyncClient) -> None:
    await post(client, event("agent_end", "ooo", at=10))
    await post(client, event("llm_call", "ooo", at=4, cost=0.1, tokens_in=7, latency_ms=3000))
    await post(
        client,
        event("agent_start", "ooo", at=0, metadata={"user": "u1"}, environment="staging"),
    )
    run = (await client.get("/api/runs/ooo")).json()
    assert run["status"] == "completed"
    assert run["started_at"] == "2024-11-04T10:30:00Z"
    assert run["ended_at"] == "2024-11-04T10:30:10Z"
    assert run["total_duration_ms"] == pytest.approx(10_000)
    assert run["run_metadata"] == {"user": "u1"}
    assert run["environment"] == "staging"
    assert run["event_count"] == 3 and run["tokens_in"] == 7


async def test_concurrent_batches_of_one_run(client: httpx.AsyncClient) -> None:
    batches = [
        [event("llm_call", "conc", at=i * 10 + j, cost=0.01, tokens_in=1) for j in range(10)]
        for i in range(8)
    ]
    results = await asyncio.gather(
        *(client.post("/api/events", json={"events": b}) for b in batches)
    )
    assert all(r.status_code == 200 for r in results)
    run = (await client.get("/api/runs/conc")).json()
    assert run["event_count"] == 80 and run["tokens_in"] == 80
    assert run["total_cost"] == pytest.approx(0.8)
    agent = (await client.get("/api/agents/my_agent")).json()
    assert agent["total_runs"] == 1 and agent["total_events"] == 80


async def test_agent_details_and_runs_pagination(client: httpx.AsyncClient) -> None:
    events = []
    for i in range(60):
        events.append(
            event("agent_start", f"run-{i:02d}", at=i, environment="prod" if i % 2 else "dev")
        )
        events.append(event("llm_call", f"run-{i:02d}", at=i + 0.5, cost=0.5))
        if i % 3 == 0:
            events.append(event("agent_end", f"run-{i:02d}", at=i + 0.9))
    await post(client, *events)
    agent = (await client.get("/api/agents/my_agent")).json()
    assert agent["total_runs"] == 60
    assert agent["total_cost"] == pytest.approx(30.0)
    assert agent["avg_cost"] == pytest.approx(0.5)
    assert agent["total_events"] == len(events)

    page = (await client.get("/api/agents/my_agent/runs")).json()
    assert page["limit"] == 50 and len(page["runs"]) == 50 and page["total"] == 60
    assert page["has_more"] is True
    assert page["runs"][0]["run_id"] == "run-59"  # newest first
    rest = (await client.get("/api/agents/my_agent/runs", params={"offset": 50})).json()
    assert [r["run_id"] for r in rest["runs"]] == [f"run-{i:02d}" for i in range(9, -1, -1)]
    done = (await client.get("/api/agents/my_agent/runs", params={"status": "completed"})).json()
    assert done["total"] == 20 and all(r["status"] == "completed" for r in done["runs"])
    prod = (await client.get("/api/agents/my_agent/runs", params={"environment": "prod"})).json()
    assert prod["total"] == 30
    assert (
        await client.get("/api/agents/my_agent/runs", params={"limit": 1001})
    ).status_code == 422
    assert (
        await client.get("/api/agents/my_agent/runs", params={"limit": 1000})
    ).status_code == 200
    assert (await client.get("/api/agents/nobody")).status_code == 404
    assert (await client.get("/api/agents/nobody/runs")).status_code == 404


async def test_agent_metrics_rollups_late_and_duplicate(client: httpx.AsyncClient) -> None:
    a = event("llm_call", "m1", at=0, cost=1.0, tokens_in=10, tokens_out=1, latency_ms=100)
    b = event("llm_call", "m2", at=3600 * 2, cost=2.0, tokens_in=20, latency_ms=200)
    late = event("llm_call", "m1", at=60, cost=4.0)
    await post(client, a, b)
    await post(client, late)
    await post(client, late, a)  # retried: must not count again
    hourly = (await client.get("/api/agents/my_agent/metrics", params={"period": "hourly"})).json()
    series = {s["bucket_start"]: s for s in hourly["series"]}
    assert series["2024-11-04T10:00:00Z"]["cost"] == pytest.approx(5.0)
    assert series["2024-11-04T10:00:00Z"]["events"] == 2
    assert series["2024-11-04T10:00:00Z"]["runs"] == 1
    assert series["2024-11-04T12:00:00Z"]["cost"] == pytest.approx(2.0)
    assert series["2024-11-04T10:00:00Z"]["duration_ms"] == pytest.approx(100)
    daily = (await client.get("/api/agents/my_agent/metrics", params={"period": "daily"})).json()
    assert [(s["bucket_start"], s["runs"], s["events"]) for s in daily["series"]] == [
        ("2024-11-04T00:00:00Z", 2, 3)
    ]
    monthly = (
        await client.get("/api/agents/my_agent/metrics", params={"period": "monthly"})
    ).json()
    assert monthly["series"][0]["bucket_start"] == "2024-11-01T00:00:00Z"
    assert monthly["total_runs"] == 2 and monthly["active_runs"] == 2
    assert monthly["total_cost"] == pytest.approx(7.0)
    ranged = (
        await client.get(
            "/api/agents/my_agent/metrics",
            params={"period": "hourly", "since": "2024-11-04T11:00:00Z"},
        )
    ).json()
    assert [s["bucket_start"] for s in ranged["series"]] == ["2024-11-04T12:00:00Z"]


async def test_metrics_summary(client: httpx.AsyncClient) -> None:
    await post(
        client,
        event("agent_start", "s1", agent="alpha", at=0),
        event("llm_call", "s1", agent="alpha", at=1, cost=3.0, tokens_in=100, tokens_out=10),
        event("agent_end", "s1", agent="alpha", at=3600),
        event("llm_call", "s2", agent="beta", at=0, cost=1.0, tokens_in=5),
        event("llm_call", "s3", agent="beta", at=0, cost=1.0),
    )
    s = (await client.get("/api/metrics/summary")).json()
    assert s["total_agents"] == 2 and s["total_runs"] == 3 and s["total_events"] == 5
    assert s["total_cost"] == pytest.approx(5.0)
    assert s["avg_cost_per_run"] == pytest.approx(5.0 / 3)
    assert s["total_tokens_in"] == 105 and s["total_tokens_out"] == 10
    assert s["total_duration_hours"] == pytest.approx(1.0)
    assert s["top_agents_by_cost"] == [
        {"agent_name": "alpha", "cost": 3.0},
        {"agent_name": "beta", "cost": 2.0},
    ]
    assert s["top_agents_by_runs"] == [
        {"agent_name": "beta", "runs": 2},
        {"agent_name": "alpha", "runs": 1},
    ]
