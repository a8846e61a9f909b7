"""bench/metrics/aggregate: GET /api/v1/metrics/aggregate over 10,000,000 points, PostgreSQL.

    uv run python -m bench.metrics.aggregate [--points 10000000] [--runs 50]

One series with 10M points spread evenly over 30 days (loaded with COPY), folded into hour and
quarter-hour rollups by the real rollup job (`roll_up`), plus 5,000 points ingested after the last
rollup (the not-yet-rolled-up tail that every query merges). Timed: 30 days in hour buckets (720
buckets), through the HTTP app in-process (httpx ASGI transport: routing, auth, rate limit,
JSON), for count/avg/min/max and for p50/p95/p99; also day and hour buckets in Asia/Kolkata
(half-hour offset: the hours cut by a local bucket boundary come from quarter-hour rollups) and
day buckets with percentiles (sketches merged). Prints p50/p95 over ``--runs`` requests.
``--reuse --reset-rollups`` keeps the loaded points, migrates, and times the rollup job again.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from bench.common import PG_BASE, fresh_pg_database, machine, percentile
from gati.app import create_app
from gati.db import migrate
from gati.db.engine import Database
from gati.metrics.schemas import tags_key
from gati.metrics.service import roll_up
from gati.settings import Settings

DB_NAME = "gati_bench_metrics_aggregate"
DAYS = 30


async def load(url: str, points: int) -> tuple[int, datetime, datetime]:
    dsn = f"{PG_BASE}/{DB_NAME}"
    conn = await asyncpg.connect(dsn)
    try:
        project_id = await conn.fetchval(
            "INSERT INTO projects (slug, name, public_key, settings, created_at, updated_at) "
            "VALUES ('bench', 'bench', 'pk_bench', '{}', now(), now()) RETURNING id"
        )
        series_id = await conn.fetchval(
            "INSERT INTO metric_series (project_id, name, tags, tags_key, created_at) "
            "VALUES ($1, 'load', '{}', $2, now()) RETURNING id",
            project_id,
            tags_key({}),
        )
        end = datetime(2024, 7, 1, tzinfo=UTC)
        start = end - timedelta(days=DAYS)
        step = (end - start) / points
        rng = random.Random(1)
        now = datetime.now(UTC)
        chunk = 1_000_000
        for offset in range(0, points, chunk):
            rows = [
                (project_id, series_id, start + step * i, rng.lognormvariate(3, 0.8), None, now)
                for i in range(offset, min(offset + chunk, points))
            ]
            await conn.copy_records_to_table(
                "metric_points",
                records=rows,
                columns=["project_id", "series_id", "ts", "value", "client_id", "received_at"],
            )
        await conn.execute("ANALYZE metric_points")
        return project_id, start, end
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--reuse", action="store_true", help="reuse the loaded database")
    parser.add_argument(
        "--reset-rollups",
        action="store_true",
        help="with --reuse: migrate, drop every rollup and time the rollup job from scratch",
    )
    args = parser.parse_args()
    if args.reuse:  # the database of a previous run (same --points): skip the load
        url = f"{PG_BASE}/{DB_NAME}".replace("postgresql://", "postgresql+asyncpg://", 1)
        conn = await asyncpg.connect(f"{PG_BASE}/{DB_NAME}")
        try:
            project_id = await conn.fetchval("SELECT id FROM projects WHERE slug = 'bench'")
            await conn.execute(
                "DELETE FROM metric_points WHERE received_at > now() - interval '1 day' AND id > $1",
                args.points,
            )
        finally:
            await conn.close()
        if args.reset_rollups:
            await migrate.upgrade(url)
            conn = await asyncpg.connect(f"{PG_BASE}/{DB_NAME}")
            try:
                await conn.execute("DELETE FROM metric_rollups")
                await conn.execute("DELETE FROM metric_quarter_rollups")
                await conn.execute("UPDATE metric_rollup_state SET watermark = 0")
            finally:
                await conn.close()
        end = datetime(2024, 7, 1, tzinfo=UTC)
        start = end - timedelta(days=DAYS)
        load_s = float("nan")
    else:
        url = await fresh_pg_database(DB_NAME)
        t0 = time.perf_counter()
        project_id, start, end = await load(url, args.points)
        load_s = time.perf_counter() - t0
    db = Database(url, Settings(database_url=url))
    t0 = time.perf_counter()
    folded = await roll_up(db, chunk=200_000)
    rollup_s = time.perf_counter() - t0
    await db.dispose()
    os.environ["GATI_SKIP_MIGRATIONS"] = "1"
    app = create_app(
        Settings(
            database_url=url,
            run_jobs_in_process=False,
            log_level="WARNING",
            rate_limit_enabled=False,
        )
    )
    results: dict[str, list[float]] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            tail = [
                {
                    "name": "load",
                    "value": random.random() * 50,
                    "timestamp": (end - timedelta(seconds=i)).isoformat(),
                }
                for i in range(1, 5001)
            ]
            assert (await client.post("/api/v1/metrics", json=tail)).json()["count"] == 5000
            cases = {
                "hour x 720, count/avg/min/max": {
                    "function": "count,avg,min,max",
                    "bucket": "hour",
                    "tz": "UTC",
                },
                "hour x 720, p50/p95/p99": {
                    "function": "p50,p95,p99",
                    "bucket": "hour",
                    "tz": "UTC",
                },
                "hour x 720, avg, Europe/Berlin": {
                    "function": "avg",
                    "bucket": "hour",
                    "tz": "Europe/Berlin",
                },
                "day x 30, avg, Asia/Kolkata": {
                    "function": "avg",
                    "bucket": "day",
                    "tz": "Asia/Kolkata",
                },
                "day x 30, p50/p95/p99, UTC": {
                    "function": "p50,p95,p99",
                    "bucket": "day",
                    "tz": "UTC",
                },
                "day x 30, p50/p95/p99, Asia/Kolkata": {
                    "function": "p50,p95,p99",
                    "bucket": "day",
                    "tz": "Asia/Kolkata",
                },
                "hour x 720, count/avg, Asia/Kolkata": {
                    "function": "count,avg",
                    "bucket": "hour",
                    "tz": "Asia/Kolkata",
                },
            }
            for label, params in cases.items():
                query = {**params, "start": start.isoformat(), "end": end.isoformat()}
                timings = []
                for i in range(args.runs + 3):
                    t = time.perf_counter()
                    response = await client.get("/api/v1/metrics/aggregate/load", params=query)
                    elapsed = (time.perf_counter() - t) * 1000
                    assert response.status_code == 200, response.text
                    if i >= 3:
                        timings.append(elapsed)
                body = response.json()
                total = (
                    sum(b.get("count") or 0 for b in body["buckets"])
                    if "count" in params["function"]
                    else None
                )
                if total is not None:
                    assert total == args.points + 5000, total
                results[label] = timings
    print(
        f"machine: {machine()}; PostgreSQL; {args.points:,} points + 5,000 tail; project {project_id}"
    )
    print(
        f"load (COPY): {load_s:.1f} s; rollup job: {folded:,} points in {rollup_s:.1f} s "
        f"({folded / rollup_s:,.0f} points/s)"
    )
    for label, timings in results.items():
        print(
            f"{label}: p50 {percentile(timings, 50):.1f} ms, p95 {percentile(timings, 95):.1f} ms ({len(timings)} runs)"
        )


if __name__ == "__main__":
    asyncio.run(main())
