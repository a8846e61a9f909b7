"""/collect throughput against a no-op endpoint of the same app, in the same run.

    apt-get install -y wrk    # the load generator (C, so it leaves the CPU to the server)
    uv run python -m bench.web.bench_collect [--database postgresql|sqlite] [--seconds 10]

Starts one real server process (uvicorn, one worker) on a fresh database, with an extra
``POST /bench/noop`` route on the same app (same middleware, reads the body, answers the same
JSON shape, stores nothing), matched before every other route (the strictest baseline; until
2026-11-23 it was appended after them all and paid their routing). wrk sends single events
with a different user agent per request (so every request is a new visitor and visit). After
the /collect run it checks that every acknowledged event is in the database. Per run it prints
the server's and PostgreSQL's CPU per request and how busy the event loop's thread was.

Ceiling runs (``--writer events-only|none``) replace /collect's group writer, to show what the
rest of the request allows: one INSERT of the events and nothing else, or no write at all.
Neither is a valid server (no visits, no rollups; or nothing stored).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import asyncpg
import httpx
from fastapi import FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncConnection

import gati.app as gati_app
from bench.common import (
    loop_cpu_seconds,
    match_first,
    postgres_cpu_seconds,
    process_cpu_seconds,
    start_profile,
)
from gati.app import create_app_from_env
from gati.db import bulk
from gati.json import ORJSONResponse
from gati.web import repository
from gati.web import service as web_service
from gati.web.service import EventRow

PG_ADMIN = os.environ.get("GATI_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_NAME = "gati_bench_collect"
SITE = "bench-collect"

LUA = r"""
local n = %(offset)d
local path = "%(path)s"
request = function()
  n = n + 1
  local body = '{"eventType":"pageview","siteId":"%(site)s","url":"https://bench.io/p' ..
    (n %% 50) .. '","referrer":"https://www.google.com/","title":"Bench",' ..
    '"attribution":{"utmParams":{"utm_source":"bench"}}}'
  return wrk.format("POST", path, {
    ["Content-Type"] = "text/plain",
    ["User-Agent"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 " ..
      "(KHTML, like Gecko) Chrome/124.0." .. (n %% 5000) .. "." .. (n %% 97) .. " Safari/537.36",
  }, body)
end
"""


async def _events_only_writer(conn: AsyncConnection, rows: list[EventRow]) -> list[str]:
    """Ceiling (``--writer events-only``): the cheapest write that still stores each event, ONE
    multi-row INSERT per group, without what /collect must also do (no visit assignment, no
    visits, no rollups, no locks). Not a valid server: it shows what the write alone costs."""
    events = []
    for row in rows:
        row.values["session_id"] = "s_" + row.values["id"]
        events.append(row.values)
    if conn.dialect.name == "sqlite":
        write = partial(repository.sqlite_write_batch, events=events, visits=[], rollups=[])
        await bulk.sqlite_run(conn, write)
    else:
        await repository.write_batch(conn, events=events, visits=[], rollups=[])
    return [row.values["id"] for row in rows]


async def _no_writer(conn: AsyncConnection, rows: list[EventRow]) -> list[str]:
    """Ceiling (``--writer none``): stores nothing; what the request side alone allows."""
    return [row.values["id"] for row in rows]


CEILING_WRITERS = {"events-only": _events_only_writer, "none": _no_writer}


async def _replace_writer(app: FastAPI) -> None:
    writer = CEILING_WRITERS[os.environ["GATI_BENCH_WRITER"]]
    app.state.committer.register(web_service.WRITER_KIND, writer, autocommit=True)


def make_app() -> FastAPI:
    """The real app plus a no-op endpoint (uvicorn factory). With ``GATI_BENCH_WRITER`` (set by
    ``--writer``), /collect's group writer is replaced by a ceiling writer (see above), after
    the web module registered the real one."""
    app = create_app_from_env()
    if os.environ.get("GATI_BENCH_WRITER", "real") != "real":
        gati_app.STARTUP_HOOKS.append(_replace_writer)

    @app.post("/bench/noop")
    async def noop(request: Request) -> ORJSONResponse:
        await request.body()
        return ORJSONResponse(
            {
                "status": "success",
                "message": "Event received and stored",
                "event_id": "00000000-0000-0000-0000-000000000000",
                "timestamp": datetime.now(UTC),
            }
        )

    match_first(app, "/bench/noop")  # the strictest baseline: matched before /collect
    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wrk(
    url: str,
    path: str,
    seconds: int,
    connections: int,
    server_pid: int | None = None,
    offset: int = 0,
) -> tuple[float, int, int]:
    """One wrk run; with ``server_pid``, also the server's CPU per request (user + system,
    less sensitive to the machine's other load than requests/s). Its user agents start after
    the ``offset`` ones sent before, so that every request is a new visitor, as in every run
    (until 2026-12-07 each run began with the previous runs' visitors, who continued visits)."""
    cpu_before = process_cpu_seconds([server_pid]) if server_pid else 0.0
    pg_before = postgres_cpu_seconds()
    loop_before = loop_cpu_seconds([server_pid]) if server_pid else 0.0
    started = time.monotonic()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA % {"path": path, "site": SITE, "offset": offset})
    out = subprocess.run(
        [
            "wrk",
            "-t",
            "1",
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            script.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    cpu = process_cpu_seconds([server_pid]) - cpu_before if server_pid else 0.0
    pg_cpu = postgres_cpu_seconds() - pg_before
    # How busy the event loop's thread was: below ~95 % it waited (for the database), not
    # for the CPU.
    loop_busy = (loop_cpu_seconds([server_pid]) - loop_before) / (time.monotonic() - started)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    per_request = (
        f", CPU µs/request: server {1e6 * cpu / total:.0f}, PostgreSQL {1e6 * pg_cpu / total:.0f}"
        f"; event loop thread {100 * loop_busy:.0f}% busy"
        if server_pid
        else ""
    )
    print(
        f"  {path:14s} {rps:9.0f} req/s  ({total} requests, p50 {p50.group(1) if p50 else '?'}"
        f", non-2xx {bad.group(1) if bad else 0}{per_request})",
        flush=True,
    )
    return rps, total, int(bad.group(1)) if bad else 0


async def prepare(database: str, workdir: Path) -> str:
    from gati.db import migrate
    from gati.db.engine import Database
    from gati.projects import service
    from gati.settings import Settings

    if database == "postgresql":
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{PG_NAME}"')
        await admin.close()
        url = (
            PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
            + "/"
            + PG_NAME
        )
    else:
        url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    await migrate.upgrade(url)
    db = Database(url, Settings(database_url=url))
    async with db.session() as session:
        await service.create_project(session, name=SITE, slug=SITE, with_secret_key=False)
    await db.dispose()
    return url


async def stored(url: str) -> int:
    from sqlalchemy import text

    from gati.db.engine import Database
    from gati.settings import Settings

    db = Database(url, Settings(database_url=url))
    async with db.read_session() as session:
        count = int((await session.execute(text("SELECT count(*) FROM web_events"))).scalar_one())
    await db.dispose()
    return count


async def analyze(url: str) -> None:
    """ANALYZE the whole database, as autovacuum (PostgreSQL) would within about a minute of
    the load starting, or an operator would (SQLite has no autovacuum)."""
    from gati.db.engine import Database
    from gati.settings import Settings

    db = Database(url, Settings(database_url=url))
    async with db.engine.connect() as conn:
        await conn.exec_driver_sql("ANALYZE")
        await conn.commit()
    await db.dispose()
    print("  ANALYZE after the warm-up", flush=True)


async def statistics_state(url: str) -> str:
    """When the planner last got statistics of web_sessions (PostgreSQL): the runs before that
    were planned without them."""
    if not url.startswith("postgresql"):
        return "(SQLite: only what ANALYZE stores)"
    from gati.db.engine import Database
    from gati.settings import Settings

    db = Database(url, Settings(database_url=url))
    async with db.engine.connect() as conn:
        row = (
            await conn.exec_driver_sql(
                "SELECT last_analyze, last_autoanalyze FROM pg_stat_user_tables "
                "WHERE relname = 'web_sessions'"
            )
        ).one()
    await db.dispose()
    return f"last ANALYZE {row[0] or 'never'}, last autoanalyze {row[1] or 'never'}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="record the server with py-spy during the last /collect run (collapsed stacks)",
    )
    parser.add_argument(
        "--writer",
        choices=["real", *CEILING_WRITERS],
        default="real",
        help="a ceiling run: /collect's group writer replaced by one that only inserts the "
        "events (events-only) or stores nothing (none); what the rest of /collect allows",
    )
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="ANALYZE the database after the warm-up: measure with planner statistics, as a "
        "server is once autovacuum has run (a fresh database has none for about a minute)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    workdir = Path(tempfile.mkdtemp(prefix="gati-bench-"))
    url = asyncio.run(prepare(args.database, workdir))
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "RUN_JOBS_IN_PROCESS": "false",
        "LOG_LEVEL": "WARNING",
        "GATI_DATA_DIR": str(workdir),
        "GATI_SKIP_MIGRATIONS": "1",
        "GATI_BENCH_WRITER": args.writer,
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.web.bench_collect:make_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.2)
        print(
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, {args.database},"
            f" {args.connections} connections, {args.seconds}s per run"
            + ("" if args.writer == "real" else f", CEILING RUN: --writer {args.writer}"),
            flush=True,
        )
        wrk(base, "/bench/noop", 3, args.connections)  # warm-up
        sent = args.connections + wrk(base, "/collect", 3, args.connections)[1]
        if args.analyze:
            asyncio.run(analyze(url))
        best_noop = best_collect = 0.0
        acknowledged = 0
        ratios = []
        for index in range(args.rounds):
            noop, _, _ = wrk(base, "/bench/noop", args.seconds, args.connections, server.pid)
            spy = None
            if args.profile and index == args.rounds - 1:
                spy = start_profile(args.profile, server.pid, args.seconds)
            collect, total, bad = wrk(
                base, "/collect", args.seconds, args.connections, server.pid, offset=sent
            )
            sent += total + args.connections
            if spy is not None:
                spy.wait()
            best_noop, best_collect = max(best_noop, noop), max(best_collect, collect)
            acknowledged += total - bad
            ratios.append(collect / noop)
        count = asyncio.run(stored(url))
        print(f"planner statistics of web_sessions: {asyncio.run(statistics_state(url))}")
        # The machine is shared: besides the best of each, the ratio of each round's pair of
        # adjacent runs (less sensitive to a load change between the two bests).
        print(
            f"noop {best_noop:.0f} req/s, /collect {best_collect:.0f} req/s: "
            f"{100 * best_collect / best_noop:.0f}% of no-op (best of each); per round: "
            + ", ".join(f"{100 * r:.0f}%" for r in ratios)
            + f" (median {100 * statistics.median(ratios):.0f}%); load average "
            + " ".join(f"{v:.2f}" for v in os.getloadavg()),
            flush=True,
        )
        # wrk counts requests whose response arrived; warm-up events are stored too.
        verdict = "ok" if count >= acknowledged else "MISSING EVENTS"
        if args.writer == "none":
            verdict = "nothing stored: a ceiling run"
        print(
            f"acknowledged in measured runs: {acknowledged}, stored in total: {count} ({verdict})",
            flush=True,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)
        if args.database == "postgresql":

            async def drop() -> None:
                admin = await asyncpg.connect(PG_ADMIN)
                await admin.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')
                await admin.close()

            asyncio.run(drop())


if __name__ == "__main__":
    main()
