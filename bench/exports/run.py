"""Benchmark: export N web events (default 10,000,000) of one window to Parquet on PostgreSQL.

    uv run python -m bench.exports.run [--rows 10000000] [--keep]

Rows are generated in the database (INSERT ... SELECT generate_series), then exported twice
through the real exporter (server-side cursor, chunked writer, local folder destination): a
window holding a tenth of the rows, then the whole window. Prints events/s and the peak RSS of
each (sampled every 50 ms), to show that memory stays flat as the window grows. The file is read
back and its row count checked.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import psutil
import pyarrow.parquet as pq

from bench.common import PG_ADMIN, PG_BASE, fresh_pg_database, machine
from gati.db.engine import Database
from gati.exports import service
from gati.exports.destinations import LocalFolderDestination
from gati.exports.layout import window_stamp
from gati.exports.pipeline import NamedDestination
from gati.exports.writers import ExportFormat
from gati.projects import service as projects
from gati.settings import Settings

DB_NAME = "gati_bench_exports"
DAY = datetime(2025, 6, 22, tzinfo=UTC)

GENERATE = """
INSERT INTO web_events (
    project_id, id, event_type, timestamp, received_at, session_id, visitor_id, visitor_key,
    url, path, hostname, referrer, title, source, utm_source, utm_medium, utm_campaign,
    browser, browser_version, os, device, country, ip, is_bot, properties, raw)
SELECT
    $1,
    md5(g::text),
    CASE WHEN g % 10 = 0 THEN 'signup' ELSE 'pageview' END,
    $2::timestamptz + g * interval '8 ms' - interval '1 second',
    $2::timestamptz + g * interval '8 ms',
    'sess_' || (g / 7),
    'vis_' || (g % 50000),
    g % 50000,
    'https://example.com/page/' || (g % 500) || '?utm_source=news',
    '/page/' || (g % 500),
    'example.com',
    CASE WHEN g % 3 = 0 THEN 'https://www.google.com/' END,
    'Page ' || (g % 500),
    CASE WHEN g % 3 = 0 THEN 'Google' END,
    CASE WHEN g % 4 = 0 THEN 'news' END,
    CASE WHEN g % 4 = 0 THEN 'email' END,
    NULL,
    'Chrome', '126.0', 'Windows', 'desktop', 'DE', '203.0.113.0',
    g % 50 = 0,
    CASE WHEN g % 10 = 0 THEN jsonb_build_object('plan', 'pro', 'seats', g % 20) END,
    jsonb_build_object(
        'eventType', 'pageview', 'siteId', 'bench', 'sessionId', 'sess_' || (g / 7),
        'url', 'https://example.com/page/' || (g % 500),
        'attribution', jsonb_build_object('utmParams', jsonb_build_object('utm_source', 'news')))
FROM generate_series($3::bigint, $4::bigint) AS g
"""


class RssSampler:
    """Peak resident memory of this process, sampled every 50 ms in a thread."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


async def prepare(rows: int, keep: bool) -> tuple[str, int]:
    dsn = f"{PG_BASE}/{DB_NAME}"
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    if keep:
        try:
            conn = await asyncpg.connect(dsn)
            try:
                have = await conn.fetchval("SELECT count(*) FROM web_events")
                project_id = await conn.fetchval("SELECT min(project_id) FROM web_events")
            finally:
                await conn.close()
            if have == rows:
                print(f"reusing {have:,} rows in {DB_NAME}")
                return url, int(project_id)
        except (OSError, asyncpg.PostgresError):
            pass
    url = await fresh_pg_database(DB_NAME)
    db = Database(url, Settings(database_url=url))
    async with db.session() as session:
        project, _ = await projects.create_project(session, name="Bench", slug="bench")
        project_id = project.id
    await db.dispose()
    conn = await asyncpg.connect(dsn)
    try:
        step = 1_000_000
        started = time.perf_counter()
        for first in range(1, rows + 1, step):
            last = min(first + step - 1, rows)
            await conn.execute(GENERATE, project_id, DAY, first, last)
            print(f"  generated {last:,} rows ({time.perf_counter() - started:.0f} s)", flush=True)
        await conn.execute("VACUUM ANALYZE web_events")
    finally:
        await conn.close()
    return url, project_id


async def export_once(
    db: Database, ctx: service.ExportContext, project_id: int, until: datetime, folder: Path
) -> tuple[int, float, int, int]:
    async with db.read_session() as session:
        project = await projects.get_project(session, project_id)
    assert project is not None
    run, _ = await service.start_manual_run(
        db,
        project=project,
        fmt=ExportFormat.PARQUET,
        gzip_output=False,
        since=DAY,
        until=until,
        require_destinations=False,
    )
    destination = NamedDestination("folder", LocalFolderDestination(folder))
    with RssSampler() as rss:
        started = time.perf_counter()
        finished = await service.run_manual(
            db, ctx, run=run, site=project.slug, rows=[], extra=[destination]
        )
        elapsed = time.perf_counter() - started
    assert finished.status == "succeeded", finished.error
    (path,) = folder.rglob(f"*-{window_stamp(until)}.parquet")
    assert pq.ParquetFile(path).metadata.num_rows == finished.rows
    return int(finished.rows or 0), elapsed, rss.peak, int(finished.bytes or 0)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--keep", action="store_true", help="reuse the generated rows")
    parser.add_argument("--chunk-rows", type=int, default=20_000)
    args = parser.parse_args()
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    print(f"PostgreSQL via {PG_ADMIN.rsplit('@', 1)[-1]}")
    started = time.perf_counter()
    url, project_id = await prepare(args.rows, args.keep)
    print(f"data ready in {time.perf_counter() - started:.0f} s")
    settings = Settings(database_url=url, export_chunk_rows=args.chunk_rows)
    db = Database(url, settings)
    try:
        with tempfile.TemporaryDirectory(prefix="gati-bench-export-") as tmp:
            ctx = service.ExportContext.from_settings(settings)
            span = timedelta(milliseconds=8) * args.rows
            base_rss = psutil.Process().memory_info().rss
            results = []
            for label, until in (
                ("1/10 of the window", DAY + span / 10 + timedelta(milliseconds=4)),
                ("whole window", DAY + span + timedelta(milliseconds=4)),
            ):
                rows, elapsed, peak, size = await export_once(db, ctx, project_id, until, Path(tmp))
                results.append((label, rows, elapsed, peak, size))
                print(
                    f"{label}: {rows:,} events in {elapsed:.1f} s = {rows / elapsed:,.0f} events/s; "
                    f"peak RSS {peak / 2**20:.0f} MiB (before: {base_rss / 2**20:.0f} MiB); "
                    f"file {size / 2**20:.0f} MiB",
                    flush=True,
                )
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"ru_maxrss of the whole benchmark: {maxrss:.0f} MiB")
    finally:
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
