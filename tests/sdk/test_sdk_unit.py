"""The Python SDK against a tiny real HTTP server (no Gati server needed)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

import gati.sdk as gati_sdk
from gati.sdk import Tracer, Transport
from gati.sdk.transport import retry_after_seconds
from tests.sdk.sdk_server import EventSink, Reply, event_sink


@pytest.fixture
def sink() -> Iterator[EventSink]:
    with event_sink() as s:
        yield s


def make_tracer(sink: EventSink, *, sleeps: list[float] | None = None, **options: object) -> Tracer:
    recorded = sleeps if sleeps is not None else []
    transport = Transport(
        sink.url,
        "gati_sk_test",
        register_atexit=False,
        flush_interval=0.05,
        sleep=recorded.append,
        **options,  # type: ignore[arg-type]
    )
    return Tracer(transport, agent="default-agent")


def by_type(events: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for e in events:
        out.setdefault(e["event_type"], []).append(e)
    return out


# --------------------------------------------------------------------------------------
# What is recorded
# --------------------------------------------------------------------------------------


def test_nested_run_spans_and_events_form_a_tree(sink: EventSink) -> None:
    tracer = make_tracer(sink)

    @tracer.span("tool_call")
    def search(query: str) -> str:
        tracer.event("note", message=f"searching {query}")
        return "result"

    with tracer.run(agent="planner", metadata={"user": "u1"}, environment="test") as run:
        with tracer.span("llm_call", "plan", model="gpt-4o") as call:
            call.set(tokens_in=100, tokens_out=20)
            search("gati")
        run.set(output="done")
    assert tracer.flush(5)
    events = sink.wait_for(5)
    assert len(events) == 5
    types = by_type(events)
    start = types["agent_start"][0]
    end = types["agent_end"][0]
    llm = types["llm_call"][0]
    tool = types["tool_call"][0]
    note = types["note"][0]

    assert {e["run_id"] for e in events} == {run.run_id}
    assert {e["agent_name"] for e in events} == {"planner"}
    assert start["event_id"] == run.event_id
    assert "parent_run_id" not in start["data"]
    assert start["data"]["metadata"] == {"user": "u1"}
    assert start["data"]["environment"] == "test"
    assert end["data"]["parent_run_id"] == start["event_id"]
    assert end["data"]["status"] == "completed"
    assert end["data"]["output"] == "done"
    assert llm["data"]["parent_run_id"] == start["event_id"]
    assert tool["data"]["parent_run_id"] == llm["event_id"]
    assert note["data"]["parent_run_id"] == tool["event_id"]
    assert llm["data"] | {"latency_ms": 0} == {
        "model": "gpt-4o",
        "tokens_in": 100,
        "tokens_out": 20,
        "parent_run_id": start["event_id"],
        "name": "plan",
        "latency_ms": 0,
        "status": "completed",
    }
    assert tool["data"]["name"].endswith("search")
    assert llm["data"]["latency_ms"] >= tool["data"]["latency_ms"] >= 0
    assert end["data"]["latency_ms"] >= llm["data"]["latency_ms"]
    # Timestamps are ISO 8601 UTC, and the start precedes the children.
    stamps = {e["event_type"]: e["timestamp"] for e in events}
    assert all(s.endswith("Z") for s in stamps.values())
    assert stamps["agent_start"] <= stamps["llm_call"] <= stamps["tool_call"] <= stamps["agent_end"]

    request = sink.requests[0]
    assert request["path"] == "/api/events"
    assert request["headers"]["Content-Encoding"] == "gzip"
    assert request["headers"]["Authorization"] == "Bearer gati_sk_test"
    tracer.shutdown()


def test_errors_mark_spans_and_runs_failed_and_propagate(sink: EventSink) -> None:
    tracer = make_tracer(sink)
    with pytest.raises(ValueError, match="bad input"), tracer.run(agent="a"):
        with tracer.span("tool_call", "lookup") as handled:
            handled.record_error(KeyError("missing"))
        with tracer.span("llm_call"):
            raise ValueError("bad input")
    assert tracer.flush(5)
    types = by_type(sink.wait_for(4))
    assert types["tool_call"][0]["data"]["status"] == "error"
    assert types["tool_call"][0]["data"]["error"]["type"] == "KeyError"
    assert types["llm_call"][0]["data"]["error"] == {"type": "ValueError", "message": "bad input"}
    assert types["agent_end"][0]["data"]["status"] == "error"
    tracer.shutdown()


def test_span_outside_a_run_is_its_own_run(sink: EventSink) -> None:
    tracer = make_tracer(sink)
    with tracer.span("llm_call") as one:
        pass
    with tracer.span("llm_call") as two:
        pass
    tracer.event("heartbeat")
    assert tracer.flush(5)
    events = sink.wait_for(3)
    assert one.run_id != two.run_id
    assert {e["agent_name"] for e in events} == {"default-agent"}
    assert all("parent_run_id" not in e["data"] for e in events)
    tracer.shutdown()


def test_nested_runs_are_separate_runs_that_remember_their_caller(sink: EventSink) -> None:
    tracer = make_tracer(sink)
    with (
        tracer.run(agent="boss") as boss,
        tracer.span("agent_call") as call,
        tracer.run(agent="helper") as helper,
    ):
        pass
    assert tracer.flush(5)
    events = sink.wait_for(5)
    helper_start = next(
        e for e in events if e["event_type"] == "agent_start" and e["agent_name"] == "helper"
    )
    assert helper.run_id != boss.run_id
    assert helper_start["run_id"] == helper.run_id
    assert helper_start["data"]["caller_run_id"] == boss.run_id
    assert helper_start["data"]["caller_event_id"] == call.event_id
    tracer.shutdown()


def test_async_functions_and_tasks_keep_their_parents(sink: EventSink) -> None:
    tracer = make_tracer(sink)

    @tracer.observe("tool_call", capture_input=True, capture_output=True)
    async def fetch(n: int) -> int:
        await asyncio.sleep(0)
        return n * 2

    async def main() -> None:
        async with tracer.run(agent="async-agent"), tracer.span("chain", "fan-out"):
            results = await asyncio.gather(*(fetch(i) for i in range(3)))
            assert results == [0, 2, 4]

    asyncio.run(main())
    assert tracer.flush(5)
    types = by_type(sink.wait_for(6))
    chain = types["chain"][0]
    tools = types["tool_call"]
    assert len(tools) == 3
    assert {t["data"]["parent_run_id"] for t in tools} == {chain["event_id"]}
    assert sorted(t["data"]["output"] for t in tools) == ["0", "2", "4"]
    assert all("'args': (" in t["data"]["input"] for t in tools)
    tracer.shutdown()


def test_run_decorator_and_explicit_event_fields(sink: EventSink) -> None:
    tracer = make_tracer(sink)

    @tracer.run(agent="worker")
    def job() -> str:
        return tracer.event(
            "custom",
            {"k": 1},
            timestamp=datetime(2025, 1, 2, 3, 4, 5, 600000),
            event_id="fixed-id",
        )

    assert job() == "fixed-id"
    assert job() == "fixed-id"
    assert tracer.flush(5)
    events = sink.wait_for(6)
    runs = {e["run_id"] for e in events}
    assert len(runs) == 2  # each call is its own run
    custom = [e for e in events if e["event_type"] == "custom"]
    assert custom[0]["timestamp"] == "2025-01-02T03:04:05.600000Z"
    assert custom[0]["data"]["k"] == 1
    tracer.shutdown()


def test_disabled_tracer_records_nothing() -> None:
    tracer = Tracer(None)
    with tracer.run(agent="x"), tracer.span("llm_call") as s:
        s.set(tokens_in=1)
    tracer.event("e")
    assert tracer.flush() is True
    assert tracer.stats().sent == 0


# --------------------------------------------------------------------------------------
# Delivery: batching, retries, backpressure
# --------------------------------------------------------------------------------------


def test_events_are_batched(sink: EventSink) -> None:
    tracer = make_tracer(sink, batch_size=100)
    for i in range(250):
        tracer.event("tick", i=i)
    assert tracer.flush(5)
    sink.wait_for(250)
    sizes = [len(r["payload"]["events"]) for r in sink.requests]
    assert sum(sizes) == 250
    assert max(sizes) <= 100
    assert len(sizes) >= 3
    stats = tracer.stats()
    assert (stats.sent, stats.failed, stats.dropped, stats.queued) == (250, 0, 0, 0)
    tracer.shutdown()


def test_429_is_retried_after_the_retry_after_delay(sink: EventSink) -> None:
    sink.script.extend(
        [
            Reply(429, {"Retry-After": "7"}, {"error": "rate_limited"}),
            Reply(503, {"Retry-After": "2"}, {"error": "overloaded"}),
        ]
    )
    sleeps: list[float] = []
    tracer = make_tracer(sink, sleeps=sleeps)
    tracer.event("e1")
    assert tracer.flush(5)
    assert [e["event_type"] for e in sink.wait_for(1)] == ["e1"]
    assert sleeps == [7.0, 2.0]
    assert len(sink.requests) == 3
    # Every attempt carries the same event ids: the server's idempotency makes retries safe.
    ids = {tuple(e["event_id"] for e in r["payload"]["events"]) for r in sink.requests}
    assert len(ids) == 1
    stats = tracer.stats()
    assert (stats.sent, stats.retries, stats.failed) == (1, 2, 0)
    tracer.shutdown()


def test_network_errors_and_503_back_off_exponentially(sink: EventSink) -> None:
    sink.script.extend([Reply(drop_connection=True), Reply(503), Reply(502)])
    sleeps: list[float] = []
    tracer = make_tracer(sink, sleeps=sleeps, backoff_base=1.0, backoff_max=30.0)
    tracer.event("e")
    assert tracer.flush(5)
    sink.wait_for(1)
    assert len(sleeps) == 3
    # Full jitter in [ceiling/2, ceiling] with ceilings 1, 2, 4.
    for delay, ceiling in zip(sleeps, (1.0, 2.0, 4.0), strict=True):
        assert ceiling / 2 <= delay <= ceiling
    tracer.shutdown()


def test_gives_up_after_max_retries_and_counts_the_failure(sink: EventSink) -> None:
    sink.script.extend([Reply(503)] * 3)
    tracer = make_tracer(sink, max_retries=2)
    tracer.event("doomed")
    assert tracer.flush(5)
    stats = tracer.stats()
    assert (stats.sent, stats.failed, stats.retries) == (0, 1, 2)
    assert len(sink.requests) == 3
    tracer.event("next")  # the sender keeps working afterwards
    assert tracer.flush(5)
    assert [e["event_type"] for e in sink.wait_for(1)] == ["next"]
    tracer.shutdown()


def test_client_errors_are_not_retried(sink: EventSink) -> None:
    sink.script.append(Reply(401, body={"error": "invalid_key"}))
    tracer = make_tracer(sink)
    tracer.event("e")
    assert tracer.flush(5)
    assert len(sink.requests) == 1
    assert tracer.stats().failed == 1
    tracer.shutdown()


def test_too_large_batches_are_split(sink: EventSink) -> None:
    sink.script.append(Reply(413, body={"error": "batch_too_large"}))
    tracer = make_tracer(sink, batch_size=10)
    for i in range(10):
        tracer.event("e", i=i)
    assert tracer.flush(5)
    events = sink.wait_for(10)
    assert sorted(e["data"]["i"] for e in events) == list(range(10))
    assert [len(r["payload"]["events"]) for r in sink.requests] == [10, 5, 5]
    tracer.shutdown()


def test_items_refused_by_the_server_are_counted(sink: EventSink) -> None:
    sink.script.append(
        Reply(200, body={"count": 1, "failed": 1, "errors": [{"index": 1, "field": "x"}]})
    )
    tracer = make_tracer(sink)
    tracer.event("ok")
    tracer.event("bad")
    assert tracer.flush(5)
    stats = tracer.stats()
    assert (stats.sent, stats.rejected) == (1, 1)
    tracer.shutdown()


def test_a_full_queue_drops_and_counts_without_blocking(sink: EventSink) -> None:
    sink.gate.clear()  # the server hangs: nothing leaves the queue
    tracer = make_tracer(sink, max_queue_size=50, batch_size=10)
    started = time.perf_counter()
    accepted = 0
    for i in range(1_000):
        with tracer.span("llm_call", i=i):
            pass
    elapsed = time.perf_counter() - started
    stats = tracer.stats()
    accepted = stats.queued
    assert elapsed < 1.0  # never waits for the server
    assert stats.dropped >= 1_000 - 50 - 10  # queue bound + at most one batch in flight
    assert accepted + stats.dropped == 1_000
    sink.gate.set()
    assert tracer.flush(10)
    stats = tracer.stats()
    assert stats.sent == 1_000 - stats.dropped
    assert len(sink.events()) == stats.sent
    tracer.shutdown()


def test_shutdown_flushes_and_later_events_are_dropped(sink: EventSink) -> None:
    tracer = make_tracer(sink)
    tracer.transport.flush_interval = 3600  # type: ignore[union-attr]
    for i in range(5):
        tracer.event("e", i=i)
    tracer.shutdown(5)
    assert len(sink.events()) == 5
    tracer.event("late")
    assert tracer.stats().dropped == 1


def test_events_are_flushed_at_interpreter_exit(sink: EventSink, tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import gati.sdk as gati
            gati.configure(url={sink.url!r}, agent="exit-agent", flush_interval=3600)
            with gati.run():
                with gati.span("llm_call", model="m"):
                    pass
            # no flush(): the atexit hook must send them
            """
        )
    )
    subprocess.run([sys.executable, str(script)], check=True, timeout=60)
    events = sink.wait_for(3)
    assert {e["agent_name"] for e in events} == {"exit-agent"}
    assert sorted(e["event_type"] for e in events) == ["agent_end", "agent_start", "llm_call"]


def test_module_level_api_uses_the_configured_tracer(sink: EventSink) -> None:
    tracer = gati_sdk.configure(url=sink.url, api_key="k", agent="mod", flush_interval=0.05)
    try:
        assert gati_sdk.get_tracer() is tracer

        @gati_sdk.observe("tool_call")
        def tool() -> None:
            assert gati_sdk.current_run_id() is not None

        with gati_sdk.run() as run, gati_sdk.span("llm_call") as span:
            assert gati_sdk.current_event_id() == span.event_id
            tool()
            gati_sdk.event("note")
        assert gati_sdk.current_run_id() is None
        assert gati_sdk.flush(5)
        events = sink.wait_for(5)
        assert {e["run_id"] for e in events} == {run.run_id}
        assert gati_sdk.stats().sent == 5
    finally:
        gati_sdk.shutdown()
        gati_sdk.configure(enabled=False)


def test_retry_after_parsing() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(" 1.5 ") == 1.5
    assert retry_after_seconds("-4") == 0.0
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(later, now=now.timestamp()) == pytest.approx(30.0)
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_a_forked_child_sends_its_own_events(sink: EventSink) -> None:
    import os

    tracer = make_tracer(sink)
    tracer.event("parent-before-fork")
    assert tracer.flush(5)
    pid = os.fork()
    if pid == 0:  # the child: a fresh queue and sender thread
        code = 1
        try:
            tracer.event("from-child")
            code = 0 if tracer.flush(10) and tracer.stats().sent >= 1 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    tracer.event("parent-after-fork")
    assert tracer.flush(5)
    types = sorted(e["event_type"] for e in sink.wait_for(3))
    assert types == ["from-child", "parent-after-fork", "parent-before-fork"]
    tracer.shutdown()
