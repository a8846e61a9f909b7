"""Execution trees: the seed's example, orphans, cycles, 10,000 events and a 1,000-deep chain."""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx
import pytest

from tests.tracing.helpers import event


def walk(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out, stack = [], list(reversed(nodes))
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(node["children"]))
    return out


async def test_seed_trace_example(client: httpx.AsyncClient) -> None:
    run = "123e4567-e89b-12d3-a456-426614174000"
    events = [
        event("agent_start", run, at=0, event_id="root-event"),
        event(
            "llm_call",
            run,
            at=1,
            event_id="llm-call-1",
            parent_run_id="root-event",
            model="gpt-4",
            tokens_in=100,
            tokens_out=50,
            cost=0.005,
            status="completed",
        ),
        event(
            "tool_call",
            run,
            at=2,
            event_id="tool-call-1",
            parent_run_id="llm-call-1",
            tool_name="search",
            cost=0.001,
            latency_ms=500,
        ),
    ]
    await client.post("/api/events", json={"events": events})
    trace = (await client.get(f"/api/runs/{run}/trace")).json()
    assert trace["run_id"] == run and trace["agent_name"] == "my_agent"
    assert trace["total_cost"] == pytest.approx(0.006)
    assert trace["total_duration_ms"] == pytest.approx(2500)
    [root] = trace["execution_tree"]
    assert (root["event_id"], root["depth"], root["parent_run_id"]) == ("root-event", 1, None)
    [llm] = root["children"]
    assert (llm["event_id"], llm["depth"], llm["parent_run_id"]) == ("llm-call-1", 2, "root-event")
    assert llm["data"]["model"] == "gpt-4"
    [tool] = llm["children"]
    assert (tool["event_id"], tool["depth"], tool["children"]) == ("tool-call-1", 3, [])
    assert llm["total_cost"] == pytest.approx(0.006) and root["total_cost"] == pytest.approx(0.006)

    children = (await client.get("/api/events/llm-call-1/children")).json()
    assert [c["event_id"] for c in children["children"]] == ["tool-call-1"]
    assert (await client.get("/api/events/nope/children")).status_code == 404
    timeline = (await client.get(f"/api/runs/{run}/timeline")).json()
    assert [e["event_id"] for e in timeline["events"]] == [
        "root-event",
        "llm-call-1",
        "tool-call-1",
    ]


async def test_missing_parents_and_cycles_are_roots(client: httpx.AsyncClient) -> None:
    events = [
        event("llm_call", "t", at=0, event_id="child", parent_run_id="not-yet-here"),
        event("tool_call", "t", at=1, event_id="c1", parent_run_id="c2"),
        event("tool_call", "t", at=2, event_id="c2", parent_run_id="c1"),
        event("tool_call", "t", at=3, event_id="self", parent_run_id="self"),
    ]
    await client.post("/api/events", json={"events": events})
    trace = (await client.get("/api/runs/t/trace")).json()
    seen = {n["event_id"] for n in walk(trace["execution_tree"])}
    assert seen == {"child", "c1", "c2", "self"}
    assert trace["event_count"] == 4
    # the parent arrives later: the tree is rebuilt correctly
    await client.post(
        "/api/events", json={"events": [event("agent_start", "t", at=-1, event_id="not-yet-here")]}
    )
    trace = (await client.get("/api/runs/t/trace")).json()
    roots = {n["event_id"]: n for n in trace["execution_tree"]}
    assert [c["event_id"] for c in roots["not-yet-here"]["children"]] == ["child"]


async def test_large_run_and_deep_chain(client: httpx.AsyncClient) -> None:
    wide = [event("agent_start", "big", at=0, event_id="big-root")]
    wide += [
        event(
            "llm_call",
            "big",
            at=1 + i / 1000,
            event_id=f"big-{i}",
            parent_run_id="big-root",
            cost=0.001,
        )
        for i in range(10_000)
    ]
    r = await client.post("/api/events", json={"events": wide[:5001]})
    assert r.status_code == 200
    r = await client.post("/api/events", json={"events": wide[5001:]})
    assert r.status_code == 200
    trace = (await client.get("/api/runs/big/trace")).json()
    assert trace["event_count"] == 10_001
    assert len(trace["execution_tree"][0]["children"]) == 10_000
    assert trace["execution_tree"][0]["total_cost"] == pytest.approx(10.0)

    chain = [
        event(
            "step", "deep", at=i, event_id=f"d{i}", parent_run_id=f"d{i - 1}" if i else None, cost=1
        )
        for i in range(1000)
    ]
    await client.post("/api/events", json={"events": chain})
    raw = (await client.get("/api/runs/deep/trace")).content
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)  # 1,000 levels of {"children": [...]} exceed the default
    try:
        trace = json.loads(raw)
    finally:
        sys.setrecursionlimit(limit)
    node, depth = trace["execution_tree"][0], 1
    while node["children"]:
        assert node["depth"] == depth and node["total_cost"] == pytest.approx(1000 - depth + 1)
        [node] = node["children"]
        depth += 1
    assert depth == 1000 and node["event_id"] == "d999"
