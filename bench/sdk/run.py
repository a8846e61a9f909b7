"""bench/sdk: the SDK's cost per recorded span in the application thread.

    uv run python -m bench.sdk.run

A real `gati serve` (SQLite) receives the events while the application thread records spans
in a loop (``with span("llm_call", model=...) as s: s.set(tokens_in=..., tokens_out=...)``
inside a run). The per-span overhead is the loop's time minus the same loop around a no-op
context manager, divided by the number of spans; the median of ``--repeats`` batches is
reported, with the sender thread running (it competes for the GIL, as in a real program).
Also: the same with the SDK disabled, the delivered/dropped counts, and the sender throughput.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import fresh_sqlite_database, machine, run, start_server
from gati.sdk import Tracer, Transport


def loop_with_spans(tracer: Tracer, count: int) -> float:
    started = time.perf_counter()
    for i in range(count):
        with tracer.span("llm_call", "chat", model="gpt-4o-mini") as s:
            s.set(tokens_in=100 + (i & 1023), tokens_out=20)
    return time.perf_counter() - started


def loop_baseline(count: int) -> float:
    started = time.perf_counter()
    for i in range(count):
        with contextlib.nullcontext() as s:
            _ = (s, 100 + (i & 1023), 20)
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=20_000, help="spans per batch")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = await fresh_sqlite_database(Path(tmp) / "bench.db")
        server = start_server(url)
        try:
            total = args.spans * args.repeats
            transport = Transport(
                server.url,
                register_atexit=False,
                max_queue_size=total + 10,  # measure the recording cost, not drops
                batch_size=1_000,
            )
            tracer = Tracer(transport, agent="bench-sdk")
            disabled = Tracer(None)
            per_span: list[float] = []
            per_span_disabled: list[float] = []
            with tracer.run(agent="bench-sdk") as bench_run:
                loop_with_spans(tracer, 1_000)  # warm-up
                for _ in range(args.repeats):
                    base = loop_baseline(args.spans)
                    spent = loop_with_spans(tracer, args.spans)
                    per_span.append((spent - base) / args.spans)
                    per_span_disabled.append(
                        (loop_with_spans(disabled, args.spans) - base) / args.spans
                    )
            recorded = args.spans * args.repeats + 1_000 + 2
            sender_started = time.perf_counter()
            flushed = tracer.flush(600)
            drain_seconds = time.perf_counter() - sender_started
            stats = tracer.stats()
            tracer.shutdown()
            with httpx.Client(base_url=server.url, timeout=60) as client:
                stored = client.get(f"/api/runs/{bench_run.run_id}").json()["event_count"]
        finally:
            server.stop()

    print(f"machine: {machine()}")
    print(f"spans per batch={args.spans} repeats={args.repeats}")
    print(
        f"per-span overhead in the application thread: median {statistics.median(per_span) * 1e6:.2f} µs, "
        f"min {min(per_span) * 1e6:.2f} µs, max {max(per_span) * 1e6:.2f} µs"
    )
    print(
        "disabled SDK (configure(enabled=False)): median "
        f"{statistics.median(per_span_disabled) * 1e6:.2f} µs"
    )
    print(
        f"recorded {recorded}, sent {stats.sent}, dropped {stats.dropped}, failed {stats.failed}, "
        f"stored in the run {stored}; flush {'ok' if flushed else 'TIMED OUT'} "
        f"(remaining queue drained in {drain_seconds:.1f} s)"
    )


if __name__ == "__main__":
    run(main())
