"""bench/live/latency: POST /api/v1/metrics returning -> WebSocket subscriber receiving the point.

    uv run python -m bench.live.latency [--subscribers 1000] [--posts 200] [--dialect sqlite|postgresql] [--redis]

A real `gati serve` (1 process, local mode), ``--subscribers`` WebSocket clients (one asyncio
process, `websockets`) all subscribed to the same metric, then ``--posts`` single-point POSTs
one after another (``--interval``, default 50 ms apart). For each (post, subscriber) pair: latency = wall-clock receipt
time minus the time the POST returned (negative when the point arrives before the HTTP response
completes, counted as is). Prints p50/p95/p99/max over all pairs, and messages missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson
from websockets.asyncio.client import connect

from bench.common import fresh_pg_database, fresh_sqlite_database, machine, percentile, start_server

COMPRESSION: str | None = "deflate"


async def subscriber(
    url: str,
    ready: asyncio.Event,
    counter: list[int],
    received: dict[int, list[float]],
    stop: asyncio.Event,
) -> None:
    async with connect(url, max_queue=None, compression=COMPRESSION) as ws:
        await ws.recv()  # welcome
        await ws.send(orjson.dumps({"type": "subscribe", "metrics": ["live_bench"]}).decode())
        while True:
            message = orjson.loads(await ws.recv())
            if message["type"] == "subscribed":
                break
        counter[0] += 1
        if counter[0] == counter[1]:
            ready.set()
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except TimeoutError:
                continue
            now = time.time()
            message = orjson.loads(raw)
            if message["type"] == "metric":
                for point in message["points"]:
                    received.setdefault(point["id"], []).append(now)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--dialect", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--redis", action="store_true", help="fan out through Redis pub/sub")
    parser.add_argument("--no-compression", action="store_true", help="no permessage-deflate")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between posts")
    args = parser.parse_args()
    global COMPRESSION
    COMPRESSION = None if args.no_compression else "deflate"
    tmp = Path(tempfile.mkdtemp())
    if args.dialect == "sqlite":
        url = await fresh_sqlite_database(tmp / "gati.db")
    else:
        url = await fresh_pg_database("gati_bench_live")
    env = {"LOG_LEVEL": "WARNING", "GATI_DATA_DIR": str(tmp)}
    if args.redis:
        env.update(
            REDIS_URL="redis://127.0.0.1:6379/0", REDIS_PREFIX=f"bench:{uuid.uuid4().hex[:8]}:"
        )
    server = start_server(url, **env)
    try:
        ws_url = server.url.replace("http://", "ws://") + "/api/v1/ws/metrics"
        ready, stop = asyncio.Event(), asyncio.Event()
        counter = [0, args.subscribers]
        received: dict[int, list[float]] = {}
        tasks = []
        for i in range(args.subscribers):
            tasks.append(asyncio.create_task(subscriber(ws_url, ready, counter, received, stop)))
            if i % 50 == 49:
                await asyncio.sleep(0.05)
        await asyncio.wait_for(ready.wait(), timeout=120)
        returned: dict[int, float] = {}
        async with httpx.AsyncClient(base_url=server.url) as http:
            for i in range(args.posts):
                response = await http.post(
                    "/api/v1/metrics", json={"name": "live_bench", "value": i}
                )
                returned[response.json()["id"]] = time.time()
                await asyncio.sleep(args.interval)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if sum(len(v) for v in received.values()) >= args.posts * args.subscribers:
                break
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        server.stop()
    latencies = [
        (t - returned[pid]) * 1000
        for pid, times in received.items()
        if pid in returned
        for t in times
    ]
    expected = args.posts * args.subscribers
    print(
        f"machine: {machine()}; {args.dialect}{' + Redis pub/sub' if args.redis else ', in-process hub'}; "
        f"permessage-deflate {'off' if args.no_compression else 'on'}; {args.subscribers} subscribers, {args.posts} posts {args.interval * 1000:.0f} ms apart"
    )
    print(
        f"latency POST-return -> receipt: p50 {percentile(latencies, 50):.1f} ms, "
        f"p95 {percentile(latencies, 95):.1f} ms, p99 {percentile(latencies, 99):.1f} ms, "
        f"max {max(latencies):.1f} ms; received {len(latencies)}/{expected}"
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(main())
