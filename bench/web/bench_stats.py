"""Statistics API latency for a site with 10,000,000 pageviews on PostgreSQL.

    uv run python -m bench.web.bench_stats [--pageviews 10000000] [--runs 30] [--keep]

Builds a database ``gati_bench_web`` (schema from the migrations), fills it server-side:
4,000,000 visits (1 to 4 pageviews, ~3.1 M visitors) and their pageviews spread over the last
365 days, the hourly rollups, then ``VACUUM ANALYZE`` (~10 minutes). With ``--keep`` the
database stays, and the next run reuses it when it holds the requested number of page views
(``--rebuild`` forces a new one; migrations are applied to a reused one). Then times the real
HTTP endpoints in-process (httpx ASGI transport, so no network) and prints p50/p95 per query,
and, as a baseline in the same run, the SQL of the previous implementation (visit metrics from
every visit of the window, grouped by local day in SQL).
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
    # Visits by their start hour, as the writer keeps them.
    await conn.execute(
        """
        INSERT INTO web_rollup_hourly (project_id, hour, pageviews, events, visits, bounces,
            duration, visit_changes)
        SELECT project_id, date_trunc('hour', started_at), 0, 0, count(*),
            count(*) FILTER (WHERE pageviews <= 1), sum(duration), count(*)
        FROM web_sessions WHERE NOT is_bot GROUP BY 1, 2
        ON CONFLICT (project_id, hour, shard) DO UPDATE SET visits = excluded.visits,
            bounces = excluded.bounces, duration = excluded.duration,
            visit_changes = excluded.visit_changes
        """
    )
    await conn.execute("VACUUM ANALYZE web_sessions")
    await conn.execute("VACUUM ANALYZE web_events")
    await conn.execute("VACUUM ANALYZE web_rollup_hourly")
    total = await conn.fetchval("SELECT count(*) FROM web_events")
    print(f"built {total:,} pageviews in {time.perf_counter() - started:.0f}s", flush=True)
    await conn.close()


async def reusable(pageviews: int) -> bool:
    """The database exists and holds ``pageviews`` page views (a complete earlier build)."""
    admin = await asyncpg.connect(ADMIN)
    exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", NAME)
    await admin.close()
    if not exists:
        return False
    conn = await asyncpg.connect(ADMIN.rsplit("/", 1)[0] + "/" + NAME)
    try:
        built = await conn.fetchval("SELECT count(*) FROM web_events")
    except asyncpg.PostgresError:
        return False
    finally:
        await conn.close()
    if built != pageviews:
        return False
    await migrate.upgrade(
        (ADMIN.rsplit("/", 1)[0] + "/" + NAME).replace("postgresql://", "postgresql+asyncpg://")
    )
    return True


# The previous implementation's SQL for the unfiltered 30-day aggregate and daily timeseries:
# visit metrics from every visit of the window (and grouped by local day in SQL).
BASELINE_AGGREGATE = """
SELECT count(DISTINCT visitor_key), count(*), sum(CASE WHEN pageviews <= 1 THEN 1 ELSE 0 END),
    sum(duration)
FROM web_sessions WHERE project_id = $1 AND started_at >= $2 AND started_at < $3 AND NOT is_bot
"""
BASELINE_TIMESERIES = """
SELECT to_char(date_trunc('day', timezone('Europe/Berlin', started_at)), 'YYYY-MM-DD'),
    count(DISTINCT visitor_key), count(*), sum(CASE WHEN pageviews <= 1 THEN 1 ELSE 0 END),
    sum(duration)
FROM web_sessions WHERE project_id = $1 AND started_at >= $2 AND started_at < $3 AND NOT is_bot
GROUP BY 1
"""


async def baseline(runs: int, period: dict[str, str]) -> None:
    conn = await asyncpg.connect(ADMIN.rsplit("/", 1)[0] + "/" + NAME)
    # The previous implementation's covering index (web_0002 replaced it), for its SQL only.
    await conn.execute(
        "CREATE INDEX IF NOT EXISTS bench_previous_ix_web_sessions_project_started "
        "ON web_sessions (project_id, started_at) "
        "INCLUDE (visitor_key, pageviews, duration, is_bot)"
    )
    await conn.execute("VACUUM ANALYZE web_sessions")
    project_id = await conn.fetchval("SELECT id FROM projects WHERE slug = $1", SITE)
    start = datetime.fromisoformat(period["from"])
    end = datetime.fromisoformat(period["to"])
    from zoneinfo import ZoneInfo

    from gati.web.periods import window

    span = window(start.date(), end.date(), ZoneInfo("Europe/Berlin"))
    for label, sql in (
        ("baseline SQL: aggregate 30d", BASELINE_AGGREGATE),
        ("baseline SQL: timeseries 30d", BASELINE_TIMESERIES),
    ):
        times = []
        for _ in range(runs):
            async with conn.transaction():
                await conn.execute("SET LOCAL work_mem = '64MB'")
                t0 = time.perf_counter()
                await conn.fetch(sql, project_id, span.start, span.end)
                times.append((time.perf_counter() - t0) * 1000)
        report(label, times)
    await conn.close()


def report(label: str, times: list[float]) -> None:
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    print(
        f"{label:40s} p50 {statistics.median(times):7.1f} ms   p95 {p95:7.1f} ms"
        f"   (n={len(times)})",
        flush=True,
    )


async def refresh_visitor_hours() -> None:
    """What the web.visitor_hours job does every 5 minutes (on a new database: every hour)."""
    from gati.db.engine import Database
    from gati.web import visitors

    url = (ADMIN.rsplit("/", 1)[0] + "/" + NAME).replace("postgresql://", "postgresql+asyncpg://")
    db = Database(url, Settings(database_url=url))
    started = time.perf_counter()
    written = await visitors.refresh(db)
    print(
        f"visitor key sets: {written} hours written in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    await db.dispose()


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
                report(label, times)
                if label == "aggregate 30d":
                    print("   ", first.json()["results"], flush=True)
                    await baseline(runs, first.json()["period"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pageviews", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--skip-build", action="store_true", help="use the database as it is")
    parser.add_argument("--rebuild", action="store_true", help="never reuse the database")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load average "
        + " ".join(f"{v:.2f}" for v in os.getloadavg()),
        flush=True,
    )
    if args.skip_build:
        pass
    elif not args.rebuild and asyncio.run(reusable(args.pageviews)):
        print("reusing the existing database", flush=True)
    else:
        asyncio.run(build(args.pageviews))
    asyncio.run(refresh_visitor_hours())
    asyncio.run(measure(args.runs))
    print("load average " + " ".join(f"{v:.2f}" for v in os.getloadavg()), flush=True)
    if not args.keep:

        async def drop() -> None:
            admin = await asyncpg.connect(ADMIN)
            await admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
            await admin.close()

        asyncio.run(drop())


if __name__ == "__main__":
    main()
