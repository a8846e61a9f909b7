"""bench/ingest: sustained POST /api/events throughput vs the raw ceiling of the same database.

    uv run python -m bench.ingest.run --dialect postgresql --events 400000
    uv run python -m bench.ingest.run --dialect sqlite --events 200000

PostgreSQL: a real `gati serve --workers 2`, 4 concurrent clients, 10,000-event batches (~550 B per
event); ceiling = binary COPY with 4 connections straight into trace_events of a fresh database
with the same schema. SQLite: 1 server process (SQLite has one writer), 4 clients; ceiling =
executemany of the same rows in one process. Also: p50/p95 latency of one 10,000-event request,
and server RSS before/after.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from bench.common import (
    PG_BASE,
    fresh_pg_database,
    fresh_sqlite_database,
    machine,
    make_events,
    percentile,
    postgres_cpu_seconds,
    start_server,
)
from gati.db.types import sqlite_timestamp
from gati.tracing.repository import EVENT_COLUMNS

BATCH = 10_000


def rows_for(events: list[dict[str, Any]], *, sqlite: bool) -> list[tuple[Any, ...]]:
    now = datetime.now(UTC)
    rows = []
    for e in events:
        ts = datetime.fromisoformat(e["timestamp"])
        d = e["data"]
        rows.append(
            (
                1,
                e["event_id"],
                e["run_id"],
                e["agent_name"],
                e["event_type"],
                sqlite_timestamp(ts) if sqlite else ts,
                d.get("parent_run_id"),
                float(d["latency_ms"]),
                d["cost"],
                d["tokens_in"],
                d["tokens_out"],
                d["model"],
                orjson.dumps(d).decode(),
                sqlite_timestamp(now) if sqlite else now,
            )
        )
    return rows


async def ceiling_pg(events: list[dict[str, Any]], clients: int) -> float:
    url = await fresh_pg_database("gati_bench_ceiling")
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "INSERT INTO projects (slug, name, public_key, settings, created_at, updated_at) VALUES ('p','p','pk_x','{}',now(),now())"
    )
    await conn.close()
    rows = rows_for(events, sqlite=False)
    batches = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]
    queue: asyncio.Queue[list[tuple[Any, ...]]] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)

    async def worker(c: asyncpg.Connection) -> None:
        while not queue.empty():
            batch = queue.get_nowait()
            async with c.transaction():
                await c.copy_records_to_table(
                    "trace_events", records=batch, columns=list(EVENT_COLUMNS)
                )

    # The connections stay open until the CPU is read: a backend's CPU leaves with its process.
    conns = [await asyncpg.connect(dsn) for _ in range(clients)]
    try:
        pg_cpu = postgres_cpu_seconds()
        start = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in conns))
        elapsed = time.perf_counter() - start
        pg_cpu = postgres_cpu_seconds() - pg_cpu
    finally:
        for c in conns:
            await c.close()
    print(f"ceiling: PostgreSQL CPU {pg_cpu / len(rows) * 1e6:.1f} µs per event")
    return len(rows) / elapsed


async def ceiling_sqlite(events: list[dict[str, Any]], path: Path) -> float:
    await fresh_sqlite_database(path)
    rows = rows_for(events, sqlite=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "INSERT INTO projects (slug, name, public_key, settings, created_at, updated_at) VALUES ('p','p','pk_x','{}','2026-01-01','2026-01-01')"
    )
    conn.commit()
    sql = f"INSERT INTO trace_events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
    start = time.perf_counter()
    for i in range(0, len(rows), BATCH):
        conn.executemany(sql, rows[i : i + BATCH])
        conn.commit()
    elapsed = time.perf_counter() - start
    conn.close()
    return len(rows) / elapsed


async def drive(url: str, bodies: list[bytes], clients: int) -> tuple[float, list[float]]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            while not queue.empty():
                body = queue.get_nowait()
                t = time.perf_counter()
                r = await http.post(
                    "/api/events", content=body, headers={"content-type": "application/json"}
                )
                latencies.append(time.perf_counter() - t)
                if r.status_code != 200 or r.json()["count"] != BATCH:
                    raise RuntimeError(f"ingest failed: {r.status_code} {r.text[:300]}")

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - start, latencies


async def single_request_latency(url: str, bodies: list[bytes], n: int = 10) -> list[float]:
    out = []
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        for body in bodies[:n]:
            t = time.perf_counter()
            r = await http.post(
                "/api/events", content=body, headers={"content-type": "application/json"}
            )
            out.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dialect", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    workers = args.workers or (2 if args.dialect == "postgresql" else 1)

    events = make_events(args.events + 10 * BATCH, seed=7)
    warm, timed = events[: 10 * BATCH], events[10 * BATCH :]
    size = sum(len(orjson.dumps(e)) for e in timed[:1000]) / 1000
    bodies = [orjson.dumps({"events": timed[i : i + BATCH]}) for i in range(0, len(timed), BATCH)]
    warm_bodies = [
        orjson.dumps({"events": warm[i : i + BATCH]}) for i in range(0, len(warm), BATCH)
    ]

    tmp = Path(tempfile.mkdtemp())
    if args.dialect == "postgresql":
        ceiling = await ceiling_pg(timed, args.clients)
        url = await fresh_pg_database("gati_bench_ingest")
    else:
        ceiling = await ceiling_sqlite(timed, tmp / "ceiling.db")
        url = await fresh_sqlite_database(tmp / "gati.db")
    server = start_server(url, workers=workers)
    try:
        latencies = await single_request_latency(server.url, warm_bodies)
        rss_before = server.rss_mb()
        cpu_before, pg_before = server.cpu_seconds(), postgres_cpu_seconds()
        elapsed, _ = await drive(server.url, bodies, args.clients)
        server_cpu = (server.cpu_seconds() - cpu_before) / len(timed) * 1e6
        pg_cpu = (postgres_cpu_seconds() - pg_before) / len(timed) * 1e6
        rss_after = server.rss_mb()
    finally:
        server.stop()
    rate = len(timed) / elapsed
    print(f"machine: {machine()}")
    print(
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  dialect: {args.dialect}  server processes: {workers}  clients: {args.clients}"
    )
    print(f"events: {len(timed):,} in batches of {BATCH:,} (~{size:.0f} bytes per event)")
    print(
        f"single 10,000-event request (fresh database, first 10 batches): p50 {percentile(latencies, 50) * 1000:.0f} ms, p95 {percentile(latencies, 95) * 1000:.0f} ms"
    )
    print(f"gati POST /api/events: {rate:,.0f} events/s")
    print(
        f"raw ceiling ({'COPY, ' + str(args.clients) + ' connections' if args.dialect == 'postgresql' else 'executemany, 1 process'}): {ceiling:,.0f} events/s"
    )
    print(f"ratio: {rate / ceiling * 100:.1f}% of the ceiling")
    print(
        f"CPU per stored event: gati server {server_cpu:.1f} µs"
        + (f", PostgreSQL {pg_cpu:.1f} µs" if args.dialect == "postgresql" else "")
    )
    print(f"server RSS (all processes): {rss_before:.0f} MB before, {rss_after:.0f} MB after")
    _ = PG_BASE


if __name__ == "__main__":
    asyncio.run(main())
