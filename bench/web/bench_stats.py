"""Statistics API latency for a site with 10,000,000 pageviews on PostgreSQL.

    uv run python -m bench.web.bench_stats [--pageviews 10000000] [--runs 30] [--keep]

Builds a throw-away database ``gati_bench_web`` (schema from the migrations), fills it
server-side: 4,000,000 visits (1 to 4 pageviews, ~3.1 M visitors) and their pageviews spread
over the last 365 days, the hourly rollups, then ``VACUUM ANALYZE``. Then times the real HTTP
endpoints in-process (httpx ASGI transport, so no network) and prints p50/p95 per query.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from datetime import UTC, datetime

import asyncpg
import httpx

from gati.app import create_app
from gati.db import migrate
from gati.settings import Settings

ADMIN = os.environ.get("GATI_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
NAME = "gati_bench_web"
SITE = "bench-site"


async def build(pageviews: int) -> None:
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{NAME}"')
    await admin.close()
    url = ADMIN.rsplit("/", 1)[0] + "/" + NAME
    await migrate.upgrade(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    conn = await asyncpg.connect(url)
    visits = pageviews * 2 // 5  # 1..4 pageviews per visit: 2.5 on average
    started = time.perf_counter()
    await conn.execute(
        "INSERT INTO projects (slug, name, public_key, settings, created_at, updated_at) "
        "VALUES ($1, $1, 'pk_bench', '{\"timezone\": \"Europe/Berlin\"}', now(), now())",
        SITE,
    )
    project_id = await conn.fetchval("SELECT id FROM projects WHERE slug = $1", SITE)
    await conn.execute("SET synchronous_commit = off")
    await conn.execute(
        """
        INSERT INTO web_sessions (project_id, id, visitor_id, visitor_key, started_at,
            last_seen_at, duration, pageviews, events, entry_page, exit_page, hostname, referrer,
            source, utm_source, browser, os, device, is_bot)
        SELECT $1, 's' || g, 'v' || (g * 10 / 13), (g * 10 / 13)::bigint, t, t + d, extract(epoch
            from d)::int, pv, pv, '/p' || (g % 50), '/p' || ((g + pv) % 50), 'bench.io',
            CASE WHEN g % 3 = 0 THEN 'https://www.google.com/' END,
            CASE WHEN g % 3 = 0 THEN 'Google' WHEN g % 5 = 0 THEN 'Twitter' END,
            CASE WHEN g % 7 = 0 THEN 'newsletter' END,
            (ARRAY['Chrome','Firefox','Safari','Edge'])[1 + g % 4],
            (ARRAY['Windows','Mac OS X','iOS','Android','Linux'])[1 + g % 5],
            (ARRAY['desktop','mobile','tablet'])[1 + g % 3], g % 50 = 0
        FROM (
            SELECT g, 1 + g % 4 AS pv,
                   now() - (random() * interval '365 days') AS t,
                   ((g % 4) * interval '1 minute') AS d
            FROM generate_series(1, $2::int) AS g
        ) s
        """,
        project_id,
        visits,
    )
    print(f"visits: {visits:,} in {time.perf_counter() - started:.0f}s", flush=True)
    await conn.execute(
        """
        INSERT INTO web_events (project_id, id, event_type, timestamp, received_at, session_id,
            visitor_id, visitor_key, url, path, hostname, source, utm_source, browser, os,
            device, is_bot)
        SELECT s.project_id, s.id || '-' || n, 'pageview', s.started_at + (n - 1) * interval
            '1 minute', s.started_at, s.id, s.visitor_id, s.visitor_key,
            'https://bench.io/p' || n, '/p' || n, 'bench.io', s.source, s.utm_source,
            s.browser, s.os, s.device, s.is_bot
        FROM web_sessions s, generate_series(1, s.pageviews) AS n
        """
    )
    print(f"events done at {time.perf_counter() - started:.0f}s", flush=True)
    await conn.execute(
        """
        INSERT INTO web_rollup_hourly (project_id, hour, pageviews, events)
        SELECT project_id, date_trunc('hour', timestamp), count(*), count(*)
        FROM web_events WHERE NOT is_bot GROUP BY 1, 2
        """
    )
    await conn.execute("VACUUM ANALYZE web_sessions")
    await conn.execute("VACUUM ANALYZE web_events")
    await conn.execute("VACUUM ANALYZE web_rollup_hourly")
    total = await conn.fetchval("SELECT count(*) FROM web_events")
    print(f"built {total:,} pageviews in {time.perf_counter() - started:.0f}s", flush=True)
    await conn.close()


async def measure(runs: int) -> None:
    url = (ADMIN.rsplit("/", 1)[0] + "/" + NAME).replace("postgresql://", "postgresql+asyncpg://")
    os.environ["GATI_SKIP_MIGRATIONS"] = "1"
    app = create_app(Settings(database_url=url, run_jobs_in_process=False, log_level="WARNING"))
    queries = {
        "aggregate 30d": ("aggregate", {"period": "30d"}),
        "aggregate 30d + compare": ("aggregate", {"period": "30d", "compare": "previous_period"}),
        "timeseries 30d": ("timeseries", {"period": "30d"}),
        "aggregate 30d, filter source==Google": (
            "aggregate",
            {"period": "30d", "filters": "source==Google"},
        ),
        "breakdown 30d by page": ("breakdown", {"period": "30d", "property": "page"}),
        "realtime": ("realtime", {}),
    }
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for label, (kind, params) in queries.items():
                path = f"/api/v1/sites/{SITE}/stats/{kind}"
                first = await client.get(path, params=params)  # warm-up
                assert first.status_code == 200, first.text
                times = []
                n = (
                    runs
                    if "breakdown" not in label and "filter" not in label
                    else max(5, runs // 5)
                )
                for _ in range(n):
                    t0 = time.perf_counter()
                    response = await client.get(path, params=params)
                    times.append((time.perf_counter() - t0) * 1000)
                    assert response.status_code == 200
                times.sort()
                p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
                print(
                    f"{label:40s} p50 {statistics.median(times):7.1f} ms   p95 {p95:7.1f} ms"
                    f"   (n={n})",
                    flush=True,
                )
                if label == "aggregate 30d":
                    print(
                        "   ",
                        first.json()["results"]["visitors"],
                        first.json()["results"]["pageviews"],
                        flush=True,
                    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pageviews", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs", flush=True)
    if not args.skip_build:
        asyncio.run(build(args.pageviews))
    asyncio.run(measure(args.runs))
    if not args.keep:

        async def drop() -> None:
            admin = await asyncpg.connect(ADMIN)
            await admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
            await admin.close()

        asyncio.run(drop())


if __name__ == "__main__":
    main()
