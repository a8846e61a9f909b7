"""CPU of the /collect group writer, ``gati.web.service.write_events``, in process.

    uv run python -m bench.web.write_events [--database sqlite|postgresql] [--events 4000] [--group 17] [--analyze]

Builds ``--events`` events with ``build_event`` (the bench's /collect body, a new user agent each,
so every event is a new visitor and visit), then writes them in groups of ``--group`` (17 is the
mean group of ``bench.web.bench_collect`` at 64 connections) as the group committer does for an
autocommit kind, and prints the CPU per event of the second half (the first fills the tables):
the whole process (on SQLite that includes aiosqlite's thread), the event loop's thread alone
(what limits a server's requests/s) and, on PostgreSQL, the backends that ran the writes.
Also prints the CPU per event of validating the body and of ``build_event``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.datastructures import Headers

from bench.common import fresh_pg_database, fresh_sqlite_database, machine, process_cpu_seconds
from gati.db.bulk import AUTOCOMMIT_DRIVER, raw_driver
from gati.db.engine import Database
from gati.process_tuning import GC_THRESHOLD0
from gati.projects import service as projects
from gati.settings import Settings
from gati.web import service
from gati.web.client_ip import TrustedProxies
from gati.web.geoip import NoCountries
from gati.web.payload import decode_collect_body, validate_collect

BODY = (
    b'{"eventType":"pageview","siteId":"bench","url":"https://bench.io/p7",'
    b'"referrer":"https://www.google.com/","title":"Bench",'
    b'"attribution":{"utmParams":{"utm_source":"bench"}}}'
)


def _user_agent(n: int) -> str:
    return (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/124.0.{n % 5000}.{n % 97} Safari/537.36 b{n}"
    )


def backend_pids(driver: Any) -> list[int]:
    """The PostgreSQL backend serving ``driver`` (an asyncpg connection; none on SQLite)."""
    get_pid = getattr(driver, "get_server_pid", None)
    return [get_pid()] if get_pid else []


def _per_event(seconds: float, count: int) -> str:
    return f"{1e6 * seconds / count:.1f} µs"


async def run(database: str, count: int, group: int, analyze: bool = False) -> None:
    if database == "sqlite":
        url = await fresh_sqlite_database(Path(tempfile.mkdtemp()) / "bench.db")
    else:
        url = await fresh_pg_database("gati_bench_web_write_events")
    db = Database(url, Settings(database_url=url))
    try:
        async with db.session() as session:
            project, _ = await projects.create_project(session, name="bench", slug="bench")
        site = service._site(project)
        started = time.process_time()
        payloads = [validate_collect(decode_collect_body(BODY, "text/plain")) for _ in range(count)]
        validate_cpu = time.process_time() - started
        now = datetime.now(UTC)
        salts = (os.urandom(32), os.urandom(32))
        metas = [
            service.RequestMeta(
                peer="127.0.0.1",
                headers=Headers({"user-agent": _user_agent(i)}),
                user_agent=_user_agent(i),
                origin=None,
            )
            for i in range(count)
        ]
        started = time.process_time()
        rows = [
            service.build_event(
                payload,
                site=site,
                meta=meta,
                trusted=TrustedProxies(),
                salts=salts,
                countries=NoCountries(),
                now=now,
            )
            for payload, meta in zip(payloads, metas, strict=True)
        ]
        build_cpu = time.process_time() - started
        process_cpu = thread_cpu = database_cpu = 0.0
        # The first half fills the tables (not measured), as a running server's are.
        half = count // 2 // group * group
        for start in range(0, count, group):
            if start == half and analyze:
                async with db.engine.connect() as conn:
                    await conn.exec_driver_sql("ANALYZE")
                    await conn.commit()
            async with db.write_engine.connect() as conn:
                driver = await raw_driver(conn)
                backend = backend_pids(driver)
                before, before_thread = time.process_time(), time.thread_time()
                before_backend = process_cpu_seconds(backend)
                conn.info[AUTOCOMMIT_DRIVER] = driver
                await service.write_events(conn, rows[start : start + group])
                del conn.info[AUTOCOMMIT_DRIVER]
                if conn.in_transaction():
                    await conn.commit()
                if start >= half:
                    process_cpu += time.process_time() - before
                    thread_cpu += time.thread_time() - before_thread
                    database_cpu += process_cpu_seconds(backend) - before_backend
        measured = count - half
        print(machine())
        print(
            f"{database}, {count} events, new visitor each: validate {_per_event(validate_cpu, count)}, "
            f"build_event {_per_event(build_cpu, count)}; write_events in groups of {group} "
            f"(the last {measured}, after {half}{' and ANALYZE' if analyze else ''}): "
            f"process {_per_event(process_cpu, measured)}, "
            f"event loop's thread {_per_event(thread_cpu, measured)}"
            + (
                f", PostgreSQL backend {_per_event(database_cpu, measured)}"
                if database == "postgresql"
                else ""
            )
            + " per event"
        )
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--group", type=int, default=17)
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="ANALYZE after the first half (planner statistics, as autovacuum or "
        "gati.db.statistics give a running server's tables)",
    )
    args = parser.parse_args()
    gc.set_threshold(GC_THRESHOLD0, *gc.get_threshold()[1:])  # as the server runs
    asyncio.run(run(args.database, args.events, args.group, args.analyze))


if __name__ == "__main__":
    main()
