"""bench/queries: read latency over HTTP with 10,000,000 trace events stored on PostgreSQL.

    uv run python -m bench.queries.run                 # loads 10M events (a few minutes), then measures
    uv run python -m bench.queries.run --reuse         # measures again on the loaded database

Loading: rows are generated inside PostgreSQL (generate_series) straight into trace_events —
100,000 runs of 100 events over 20 agents, parent links, ~550-byte rows — and the derived tables
(runs, agents, agent_metrics) are computed from them with GROUP BY, exactly as ingestion keeps
them. One extra run holds 10,000 events (a 5,000-deep chain plus a wide fan-out) for the trace.
Measured: p50/p95 over 200 requests each through a real `gati serve` process.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import UTC, datetime

import asyncpg
import httpx

from bench.common import PG_BASE, fresh_pg_database, machine, percentile, start_server

DB = "gati_bench_queries"

LOAD_SQL = [
    """INSERT INTO projects (id, slug, name, public_key, settings, created_at, updated_at)
       VALUES (1, 'bench', 'bench', 'pk_bench', '{}', now(), now())""",
    # the server creates its default project at start: keep the id sequence ahead of id 1
    "SELECT setval(pg_get_serial_sequence('projects', 'id'), 1)",
    """INSERT INTO trace_events (project_id, event_id, run_id, agent_name, event_type, timestamp,
           parent_id, latency_ms, cost, tokens_in, tokens_out, model, data, created_at)
       SELECT 1, 'e' || g, 'run-' || (g / 100), 'agent-' || ((g / 100) % 20),
              CASE WHEN g % 100 = 0 THEN 'agent_start' WHEN g % 100 = 99 THEN 'agent_end'
                   WHEN g % 3 = 0 THEN 'tool_call' ELSE 'llm_call' END,
              timestamptz '2026-08-01' + g * interval '700 ms',
              CASE WHEN g % 100 = 0 THEN NULL ELSE 'e' || (g - g % 100) END,
              (g % 3000)::float, ((g % 97) / 10000.0)::float, g % 4000, g % 800,
              'gpt-4o',
              jsonb_build_object('model', 'gpt-4o', 'tokens_in', g % 4000, 'tokens_out', g % 800,
                                 'cost', (g % 97) / 10000.0, 'latency_ms', g % 3000,
                                 'status', 'completed', 'prompt', repeat('x', 300)),
              now()
       FROM generate_series(0, {n} - 1) AS g""",
    # the 10,000-event run: a 5,000-deep chain and 5,000 children of its root
    """INSERT INTO trace_events (project_id, event_id, run_id, agent_name, event_type, timestamp,
           parent_id, latency_ms, cost, tokens_in, tokens_out, model, data, created_at)
       SELECT 1, 'big-' || g, 'run-big', 'agent-0', CASE WHEN g = 0 THEN 'agent_start' ELSE 'llm_call' END,
              timestamptz '2026-11-01' + g * interval '10 ms',
              CASE WHEN g = 0 THEN NULL WHEN g < 5000 THEN 'big-' || (g - 1) ELSE 'big-0' END,
              5, 0.001, 10, 5, 'gpt-4o',
              jsonb_build_object('model', 'gpt-4o', 'cost', 0.001, 'prompt', repeat('x', 300)),
              now()
       FROM generate_series(0, 9999) AS g""",
    """INSERT INTO runs (project_id, run_id, agent_name, environment, status, started_at, ended_at,
           total_duration_ms, total_cost, tokens_in, tokens_out, event_count, error_count, has_end,
           run_metadata, created_at, updated_at)
       SELECT 1, run_id, min(agent_name), 'production',
              CASE WHEN bool_or(event_type = 'agent_end') THEN 'completed' ELSE 'active' END,
              min(timestamp), max(timestamp),
              extract(epoch FROM max(timestamp) - min(timestamp)) * 1000,
              sum(cost), sum(tokens_in), sum(tokens_out), count(*), 0,
              max(CASE WHEN event_type = 'agent_end' THEN 1 ELSE 0 END), NULL, now(), now()
       FROM trace_events GROUP BY run_id""",
    """INSERT INTO agents (project_id, name, description, total_runs, total_events, total_cost,
           tokens_in, tokens_out, created_at, updated_at)
       SELECT 1, agent_name, 'Auto-created agent: ' || agent_name, count(*), sum(event_count),
              sum(total_cost), sum(tokens_in), sum(tokens_out), now(), now()
       FROM runs GROUP BY agent_name""",
    """INSERT INTO agent_metrics (project_id, agent_name, period, bucket_start, runs, events, errors,
           cost, tokens_in, tokens_out, duration_ms)
       SELECT 1, agent_name, p.period, date_trunc(p.unit, timestamp, 'UTC'), 0, count(*), 0,
              sum(cost), sum(tokens_in), sum(tokens_out), sum(latency_ms)
       FROM trace_events CROSS JOIN (VALUES ('hourly', 'hour'), ('daily', 'day'), ('monthly', 'month')) AS p(period, unit)
       GROUP BY 1, 2, 3, 4""",
    "ANALYZE",
]


async def load(n: int) -> None:
    await fresh_pg_database(DB)
    conn = await asyncpg.connect(f"{PG_BASE}/{DB}")
    try:
        for sql in LOAD_SQL:
            t = time.perf_counter()
            await conn.execute(sql.replace("{n}", str(n)))
            print(
                f"  {sql.split()[2] if sql.startswith('INSERT') else sql}: {time.perf_counter() - t:.1f} s",
                flush=True,
            )
    finally:
        await conn.close()


async def measure(url: str, path: str, n: int) -> tuple[float, float]:
    latencies = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        for _ in range(5):
            (await http.get(path)).raise_for_status()
        for _ in range(n):
            t = time.perf_counter()
            r = await http.get(path)
            latencies.append(time.perf_counter() - t)
            r.raise_for_status()
    return percentile(latencies, 50) * 1000, percentile(latencies, 95) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    if not args.reuse:
        print(f"loading {args.events:,} events ...", flush=True)
        await load(args.events)
    url = f"{PG_BASE}/{DB}".replace("postgresql://", "postgresql+asyncpg://")
    conn = await asyncpg.connect(f"{PG_BASE}/{DB}")
    stored = await conn.fetchval("SELECT count(*) FROM trace_events")
    size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('trace_events'))")
    await conn.close()
    server = start_server(url, workers=1)
    rng = random.Random(5)
    try:
        rows = []
        for label, path, n in [
            ("agent details", "/api/agents/agent-7", args.requests),
            ("run details", f"/api/runs/run-{rng.randrange(stored // 100)}", args.requests),
            ("agent runs page (50)", "/api/agents/agent-3/runs", args.requests),
            ("agent metrics (daily)", "/api/agents/agent-3/metrics", args.requests),
            ("metrics summary", "/api/metrics/summary", args.requests),
            ("run timeline (100 events)", "/api/runs/run-4242/timeline", args.requests),
            ("trace of a 10,000-event run", "/api/runs/run-big/trace", 30),
        ]:
            p50, p95 = await measure(server.url, path, n)
            rows.append((label, p50, p95))
    finally:
        server.stop()
    print(f"machine: {machine()}")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  trace_events: {stored:,} rows ({size})")
    for label, p50, p95 in rows:
        print(f"  {label:32s} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
