"""bench/ingest/memory: server RSS while 10,000,000 events stream in through POST /api/events.

    uv run python -m bench.ingest.memory --dialect postgresql --events 10000000

20 distinct 10,000-event bodies are generated once; every round rewrites their ids (a fixed-width
round number replaces a placeholder), so every event is new and the client stays cheap. RSS of
every server process is sampled after each round; the figure that matters is the growth between
the first million and the end.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson

from bench.common import (
    fresh_pg_database,
    fresh_sqlite_database,
    machine,
    make_events,
    start_server,
)

BATCH = 10_000
TEMPLATES = 20
MARK = b"RND000"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dialect", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    events = make_events(BATCH * TEMPLATES, seed=11)
    for e in events:
        e["event_id"] = MARK.decode() + e["event_id"][6:]
        e["run_id"] = MARK.decode() + e["run_id"][6:]
        if "parent_run_id" in e["data"]:
            e["data"]["parent_run_id"] = MARK.decode() + e["data"]["parent_run_id"][6:]
    templates = [
        orjson.dumps({"events": events[i * BATCH : (i + 1) * BATCH]}) for i in range(TEMPLATES)
    ]
    if args.dialect == "postgresql":
        url = await fresh_pg_database("gati_bench_memory")
        workers = 2
    else:
        url = await fresh_sqlite_database(Path(tempfile.mkdtemp()) / "gati.db")
        workers = 1
    server = start_server(url, workers=workers)
    total_batches = args.events // BATCH
    samples: list[tuple[int, float, list[float]]] = []
    next_batch = 0
    lock = asyncio.Lock()
    start = time.perf_counter()

    async def client() -> None:
        nonlocal next_batch
        async with httpx.AsyncClient(base_url=server.url, timeout=300) as http:
            while True:
                async with lock:
                    if next_batch >= total_batches:
                        return
                    n = next_batch
                    next_batch += 1
                round_no, slot = divmod(n, TEMPLATES)
                body = templates[slot].replace(MARK, f"R{round_no:05d}".encode())
                r = await http.post(
                    "/api/events", content=body, headers={"content-type": "application/json"}
                )
                if r.status_code != 200 or r.json()["duplicates"]:
                    raise RuntimeError(f"batch {n}: {r.status_code} {r.text[:200]}")
                if slot == TEMPLATES - 1:
                    samples.append(((n + 1) * BATCH, server.rss_mb(), server.worker_rss_mb()))
                    done = (n + 1) * BATCH
                    rate = done / (time.perf_counter() - start)
                    print(
                        f"  {done:>11,} events  {rate:8,.0f}/s  RSS {samples[-1][1]:6.0f} MB  workers {[round(x) for x in samples[-1][2]]}",
                        flush=True,
                    )

    try:
        await asyncio.gather(*(client() for _ in range(args.clients)))
    finally:
        server.stop()
    elapsed = time.perf_counter() - start
    first = next((s for s in samples if s[0] >= 1_000_000), samples[0])
    last = samples[-1]
    print(f"machine: {machine()}")
    print(
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  dialect: {args.dialect}  workers: {workers}"
    )
    print(
        f"events: {total_batches * BATCH:,} in {elapsed:.0f} s ({total_batches * BATCH / elapsed:,.0f}/s)"
    )
    print(
        f"server RSS: {first[1]:.0f} MB at {first[0]:,} events -> {last[1]:.0f} MB at {last[0]:,} events"
    )


if __name__ == "__main__":
    asyncio.run(main())
