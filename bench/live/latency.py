"""bench/live/latency: POST /api/v1/metrics returning -> WebSocket subscriber receiving the point.

    uv run python -m bench.live.latency [--subscribers 1000] [--posts 200] [--client-procs 2]
        [--dialect sqlite|postgresql] [--redis [--workers 2]] [--compression] [--interval 0.05]

A real `gati serve` (``--workers`` processes, default 1; local mode); ``--subscribers`` WebSocket clients, all subscribed
to the same metric, spread over ``--client-procs`` separate client processes (so that parsing
1,000 frames per point does not run in one Python process: the clients share the machine's cores
with the server, and this split is part of the result); then ``--posts`` single-point POSTs one
after another, ``--interval`` apart, from the main process. For each (post, subscriber) pair:
latency = wall-clock receipt time in the client process minus the time the POST returned
(negative when the point arrives before the HTTP response completes, counted as is).

The clients are lean: one asyncio protocol per connection driving the `websockets` sans-I/O
client (no per-message futures or tasks); ``--compression`` offers permessage-deflate as
browsers do (the server decides whether to accept it: LIVE_WS_COMPRESSION).

Prints p50/p95/p99/max over all pairs, messages missed, the spread between the first and the
last subscriber receiving each point, and the CPU time each side used.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import tempfile
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import cast
from urllib.parse import urlparse

import httpx
import orjson
import psutil
import uvloop
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from bench.common import fresh_pg_database, fresh_sqlite_database, machine, percentile, start_server

SUBSCRIBE = orjson.dumps({"type": "subscribe", "metrics": ["live_bench"]}).decode()


class Subscriber(asyncio.Protocol):
    """One WebSocket client: handshake, subscribe, then record (point id, receipt time)."""

    def __init__(
        self, url: str, compression: bool, received: list[tuple[int, float]], ready: asyncio.Event
    ) -> None:
        extensions = [ClientPerMessageDeflateFactory()] if compression else None
        self.ws = ClientProtocol(parse_uri(url), extensions=extensions, max_size=None)
        self.received = received
        self.ready = ready
        self.transport: asyncio.Transport | None = None
        self.subscribed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.ws.send_request(self.ws.connect())
        self._flush()

    def _flush(self) -> None:
        assert self.transport is not None
        for data in self.ws.data_to_send():
            if data:
                self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Response):
                continue
            if event.opcode is not Opcode.TEXT:
                continue
            now = time.time()
            message = orjson.loads(event.data)
            kind = message.get("type")
            if kind == "metric":
                for point in message["points"]:
                    self.received.append((point["id"], now))
            elif kind == "welcome":
                self.ws.send_text(SUBSCRIBE.encode())
            elif kind == "subscribed":
                self.subscribed = True
                self.ready.set()
        self._flush()


async def client_process_main(url: str, count: int, compression: bool, pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    parsed = urlparse(url)
    received: list[tuple[int, float]] = []
    subscribers: list[Subscriber] = []
    for i in range(count):
        ready = asyncio.Event()
        _, protocol = await loop.create_connection(
            lambda r=ready: Subscriber(url, compression, received, r),  # type: ignore[misc]
            parsed.hostname,
            parsed.port,
        )
        subscribers.append(protocol)
        if i % 50 == 49:
            await asyncio.wait_for(ready.wait(), timeout=60)
    deadline = time.monotonic() + 120
    while not all(s.subscribed for s in subscribers):
        if time.monotonic() > deadline:
            raise TimeoutError("subscriptions not confirmed")
        await asyncio.sleep(0.05)
    cpu0 = time.process_time()
    pipe.send("ready")
    # Wait for "stop" without blocking the loop.
    stop = asyncio.Event()
    loop.add_reader(pipe.fileno(), stop.set)
    await stop.wait()
    loop.remove_reader(pipe.fileno())
    os.set_blocking(pipe.fileno(), True)  # the event loop made it non-blocking
    pipe.recv()
    pipe.send((received, time.process_time() - cpu0))
    for s in subscribers:
        if s.transport is not None:
            s.transport.close()


def client_process(url: str, count: int, compression: bool, pipe: Connection) -> None:
    uvloop.run(client_process_main(url, count, compression, pipe))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--dialect", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--redis", action="store_true", help="fan out through Redis pub/sub")
    parser.add_argument(
        "--compression", action="store_true", help="clients offer permessage-deflate"
    )
    parser.add_argument(
        "--server-compression",
        action="store_true",
        help="server accepts permessage-deflate (LIVE_WS_COMPRESSION=true)",
    )
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between posts")
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes (more than 1 needs --redis)"
    )
    args = parser.parse_args()
    if args.workers > 1 and not args.redis:
        parser.error("--workers > 1 needs --redis (subscribers and posts meet in any process)")
    tmp = Path(tempfile.mkdtemp())
    if args.dialect == "sqlite":
        url = await fresh_sqlite_database(tmp / "gati.db")
    else:
        url = await fresh_pg_database("gati_bench_live")
    env = {
        "LOG_LEVEL": "WARNING",
        "GATI_DATA_DIR": str(tmp),
        "LIVE_WS_COMPRESSION": "true" if args.server_compression else "false",
    }
    if args.redis:
        env.update(
            REDIS_URL="redis://127.0.0.1:6379/0", REDIS_PREFIX=f"bench:{uuid.uuid4().hex[:8]}:"
        )
    server = start_server(url, workers=args.workers, **env)
    procs: list[tuple[mp.process.BaseProcess, Connection]] = []
    try:
        ws_url = server.url.replace("http://", "ws://") + "/api/v1/ws/metrics"
        ctx = mp.get_context("spawn")
        per_proc = [
            args.subscribers // args.client_procs
            + (1 if i < args.subscribers % args.client_procs else 0)
            for i in range(args.client_procs)
        ]
        for count in per_proc:
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=client_process, args=(ws_url, count, args.compression, theirs)
            )
            proc.start()
            procs.append((proc, ours))
        for _, pipe in procs:
            if not await asyncio.to_thread(pipe.poll, 180):
                raise TimeoutError("client process not ready")
            pipe.recv()
        server_processes = [psutil.Process(pid) for pid in server.pids()]
        server_cpu0 = sum(sum(p.cpu_times()[:2]) for p in server_processes)
        load0 = os.getloadavg()[0]
        returned: dict[int, float] = {}
        async with httpx.AsyncClient(base_url=server.url) as http:
            for i in range(args.posts):
                response = await http.post(
                    "/api/v1/metrics", json={"name": "live_bench", "value": i}
                )
                returned[response.json()["id"]] = time.time()
                await asyncio.sleep(args.interval)
        await asyncio.sleep(1.0)  # stragglers (counted as missed if they never arrive)
        server_cpu = sum(sum(p.cpu_times()[:2]) for p in server_processes) - server_cpu0
        load1 = os.getloadavg()[0]
        received: list[tuple[int, float]] = []
        client_cpu: list[float] = []
        for _, pipe in procs:
            pipe.send("stop")
        for _, pipe in procs:
            part, cpu = await asyncio.to_thread(pipe.recv)
            received.extend(part)
            client_cpu.append(cpu)
    finally:
        for proc, _ in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
        server.stop()
    latencies: list[float] = []
    first_last: dict[int, list[float]] = {}
    for pid, t in received:
        if pid in returned:
            latencies.append((t - returned[pid]) * 1000)
            span = first_last.setdefault(pid, [t, t])
            span[0], span[1] = min(span[0], t), max(span[1], t)
    spreads = [(b - a) * 1000 for a, b in first_last.values()]
    expected = args.posts * args.subscribers
    fanout = "Redis pub/sub" if args.redis else "in-process hub"
    print(
        f"machine: {machine()}; {args.dialect}, {fanout}; permessage-deflate "
        f"{'offered' if args.compression else 'not offered'} by clients, "
        f"{'accepted' if args.server_compression else 'off'} on the server; "
        f"{args.workers} server process(es); "
        f"{args.subscribers} subscribers in {args.client_procs} client process(es); "
        f"{args.posts} posts {args.interval * 1000:.0f} ms apart; load average {load0:.1f} -> {load1:.1f}"
    )
    print(
        f"latency POST-return -> receipt: p50 {percentile(latencies, 50):.1f} ms, "
        f"p95 {percentile(latencies, 95):.1f} ms, p99 {percentile(latencies, 99):.1f} ms, "
        f"max {max(latencies):.1f} ms; received {len(latencies)}/{expected}"
    )
    print(
        f"first-to-last subscriber spread per point: p50 {percentile(spreads, 50):.1f} ms, "
        f"p99 {percentile(spreads, 99):.1f} ms"
    )
    print(
        f"CPU during the posts: server {server_cpu:.2f} s "
        f"({server_cpu / args.posts * 1000:.1f} ms per point); clients "
        + ", ".join(f"{c:.2f} s" for c in client_cpu)
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    uvloop.run(main())
