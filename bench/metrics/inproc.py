"""bench/metrics/inproc: CPU cost per request of POST /api/v1/metrics vs the no-op, in process.

    uv run python -m bench.metrics.inproc [--dialect sqlite|postgresql] [--requests 5000]

Calls the ASGI app directly (no sockets, no HTTP parser) from ``--concurrency`` asyncio tasks
under uvloop, alternating no-op and ingest rounds, and reports process CPU time (all threads,
incl. the SQLite driver thread) per request. CPU per request is far less sensitive to other
load on the machine than requests/s, so it is the figure to compare code changes with; the
wrk benchmark (bench.metrics.ingest) gives the end-to-end req/s ratio. The no-op is matched
first (``BENCH_NOOP_LAST=1``: appended after every other route; see bench/metrics/noop_app.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

from bench.common import fresh_pg_database, fresh_sqlite_database, machine

BODY = b'{"name":"ingest_bench","value":1.5}'


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _one(app: Any, path: str) -> int:
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await asyncio.Event().wait()  # never: the app does not wait for a disconnect here
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(path), receive, send)
    return status


async def _round(app: Any, path: str, requests: int, concurrency: int) -> tuple[float, float]:
    remaining = [requests]

    async def worker() -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            status = await _one(app, path)
            if status not in (200, 201):
                raise RuntimeError(f"{path}: HTTP {status}")

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - cpu0) / requests * 1e6, requests / (time.perf_counter() - wall0)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dialect", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    if args.dialect == "sqlite":
        url = await fresh_sqlite_database(tmp / "gati.db")
    else:
        url = await fresh_pg_database("gati_bench_metrics_inproc")
    os.environ.update(
        DATABASE_URL=url,
        GATI_DATA_DIR=str(tmp),
        GATI_SKIP_MIGRATIONS="1",
        RUN_JOBS_IN_PROCESS="false",
        LOG_LEVEL="WARNING",
        RATE_LIMIT_INGEST="1000000/second",
    )
    from bench.metrics.noop_app import create

    app = create()
    async with app.router.lifespan_context(app):
        await _round(app, "/bench/noop", 500, args.concurrency)
        await _round(app, "/api/v1/metrics", 500, args.concurrency)
        noop: list[float] = []
        ingest: list[float] = []
        for _ in range(args.rounds):
            noop.append((await _round(app, "/bench/noop", args.requests, args.concurrency))[0])
            ingest.append(
                (await _round(app, "/api/v1/metrics", args.requests, args.concurrency))[0]
            )
        committer = app.state.committer
        groups, items = committer.groups_committed, committer.items_committed
    n, i = min(noop), min(ingest)
    print(f"machine: {machine()}; {args.dialect}; in-process ASGI, {args.concurrency} tasks")
    print(
        f"no-op:           {n:6.0f} us CPU/request (rounds: {', '.join(f'{x:.0f}' for x in noop)})"
    )
    print(
        f"/api/v1/metrics: {i:6.0f} us CPU/request (rounds: {', '.join(f'{x:.0f}' for x in ingest)})"
    )
    print(f"ingest extra: {i - n:.0f} us; CPU-bound ratio no-op/ingest: {n / i * 100:.0f}%")
    print(
        f"group commit: {items} points in {groups} transactions ({items / max(groups, 1):.1f}/tx)"
    )


if __name__ == "__main__":
    uvloop.run(main())
