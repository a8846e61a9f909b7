"""The SDK against a real `gati serve`: a nested run reads back as the same tree."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gati.sdk import Tracer, Transport


def shape(nodes: list[dict[str, Any]]) -> list[tuple[str, str, list[Any]]]:
    return sorted((n["event_id"], n["event_type"], shape(n["children"])) for n in nodes)


def test_nested_run_reads_back_as_the_same_tree(live_server: Callable[..., Any]) -> None:
    server = live_server()
    tracer = Tracer(
        Transport(server.url, register_atexit=False, flush_interval=0.05), agent="researcher"
    )
    expected: dict[str, list[str]] = {}  # parent event id -> child event ids

    def child_of(parent: str, child: str) -> None:
        expected.setdefault(parent, []).append(child)

    @tracer.span("tool_call")
    def search(query: str) -> str:
        return f"results for {query}"

    with tracer.run(agent="researcher", metadata={"ticket": 42}) as run:
        with tracer.span("llm_call", "plan", model="gpt-4o-mini") as plan:
            plan.set(tokens_in=1000, tokens_out=200)
            child_of(run.event_id, plan.event_id)
            with tracer.span("chain", "gather") as gather:
                child_of(plan.event_id, gather.event_id)
                for query in ("a", "b"):
                    search(query)
                note = tracer.event("note", text="two searches done")
                child_of(gather.event_id, note)

        async def answer() -> None:
            async with tracer.span("llm_call", "answer", model="gpt-4o-mini") as call:
                call.set(tokens_in=500, tokens_out=100, cost=0.25)
                child_of(run.event_id, call.event_id)

        asyncio.run(answer())
    assert tracer.flush(30), (tracer.stats(), server.log.read_text()[-3000:])
    stats = tracer.stats()
    assert (stats.sent, stats.failed, stats.dropped) == (8, 0, 0)
    tracer.shutdown()

    with httpx.Client(base_url=server.url, timeout=10) as client:
        trace = client.get(f"/api/runs/{run.run_id}/trace").json()
        summary = client.get(f"/api/runs/{run.run_id}").json()
    assert trace["agent_name"] == "researcher"
    assert trace["event_count"] == 8
    [root] = trace["execution_tree"]
    assert (root["event_id"], root["event_type"]) == (run.event_id, "agent_start")

    got: dict[str, list[str]] = {}
    by_type: dict[str, list[dict[str, Any]]] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        by_type.setdefault(node["event_type"], []).append(node)
        for child in node["children"]:
            got.setdefault(node["event_id"], []).append(child["event_id"])
            stack.append(child)
    # The SDK's own links, plus the searches under "gather" and agent_end under the root.
    gather_id = next(n["event_id"] for n in by_type["chain"])
    searches = [n["event_id"] for n in by_type["tool_call"]]
    [end] = by_type["agent_end"]
    for parent, children in expected.items():
        assert set(children) <= set(got[parent]), parent
    assert set(searches) <= set(got[gather_id])
    assert end["event_id"] in got[run.event_id]
    assert sum(len(c) for c in got.values()) == 7  # every event but the root has a parent

    plan_node = next(n for n in by_type["llm_call"] if n["data"]["name"] == "plan")
    assert plan_node["data"]["cost_source"] == "price_table"
    answer_node = next(n for n in by_type["llm_call"] if n["data"]["name"] == "answer")
    assert answer_node["data"]["cost_source"] == "client"
    assert summary["status"] == "completed"
    assert (summary["tokens_in"], summary["tokens_out"]) == (1500, 300)
    assert summary["total_cost"] == pytest.approx(0.25 + plan_node["cost"])
    assert summary["run_metadata"] == {"ticket": 42}
