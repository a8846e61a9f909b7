"""Error-tracking benchmark (docs/benchmarks.md, "Error tracking").

1. Sentry envelopes/s: single-error envelopes (~2 KB of JSON, gzip) POSTed by ``wrk`` to
   ``/api/{id}/envelope/`` of a real server, against a no-op endpoint of the SAME app in the same
   run (it reads the body and answers a constant ``{"id"}``). Every acknowledged event id is then
   looked up in the database: all must be committed.
2. Grouping: one batch of 10,000 error events with 100 distinct fingerprints through the batch
   writer, counting the statements that write the issues table.

    uv run python -m bench.errors.run [--seconds 10] [--connections 64] [--dialects sqlite,postgresql]

Needs ``wrk`` on the PATH (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select

from bench.common import (
    Server,
    fresh_pg_database,
    fresh_sqlite_database,
    machine,
    start_app_factory,
    start_profile,
    wrk_latency_ms,
)
from bench.errors.counting import IssueStatements
from gati.db.engine import Database
from gati.errors import service
from gati.errors.models import ErrorEvent
from gati.errors.normalize import normalize_sentry_event
from gati.projects import service as projects
from gati.settings import Settings

HERE = Path(__file__).resolve().parent
FINGERPRINTS = 100


def make_event(i: int, rng: random.Random) -> dict[str, Any]:
    fp = i % FINGERPRINTS
    frames = [
        {
            "filename": f"shop/module_{fp}/{name}.py",
            "abs_path": f"/srv/shop/module_{fp}/{name}.py",
            "module": f"shop.module_{fp}.{name}",
            "function": f"{name}_{fp}",
            "lineno": 10 + k,
            "context_line": f"    result = {name}(order, amount={k})",
            "in_app": True,
        }
        for k, name in enumerate(("views", "service", "repository"))
    ]
    event = {
        "event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "timestamp": datetime.now(UTC).isoformat(),
        "platform": "python",
        "level": "error",
        "logger": "shop.orders",
        "server_name": "web-3",
        "environment": "production",
        "release": "shop@1.4.2",
        "transaction": f"/api/orders/{{id}}/step{fp}",
        "exception": {
            "values": [
                {
                    "type": f"OrderError{fp % 10}",
                    "value": f"order {rng.randint(1, 10**6)} failed: amount {rng.randint(1, 999)} "
                    "exceeds the limit",
                    "module": "shop.errors",
                    "mechanism": {"type": "generic", "handled": True},
                    "stacktrace": {"frames": frames},
                }
            ]
        },
        "request": {
            "method": "POST",
            "url": f"https://shop.example.com/api/orders/{rng.randint(1, 10**6)}/step{fp}",
            "query_string": "expand=items",
            "headers": {
                "User-Agent": "Mozilla/5.0 (X11; Linux x86_64)",
                "Accept": "application/json",
            },
        },
        "tags": {"region": "eu-west-1", "tenant": f"tenant-{rng.randint(1, 50)}"},
        "user": {"id": str(rng.randint(1, 10**5)), "ip_address": "203.0.113.7"},
        "breadcrumbs": {
            "values": [
                {
                    "timestamp": time.time(),
                    "category": "http",
                    "message": "GET /api/cart",
                    "level": "info",
                },
                {
                    "timestamp": time.time(),
                    "category": "query",
                    "message": "SELECT * FROM orders WHERE id = $1",
                },
            ]
        },
        "contexts": {
            "runtime": {"name": "CPython", "version": "3.11.7"},
            "os": {"name": "Linux", "version": "6.1"},
        },
        "sdk": {"name": "sentry.python", "version": "2.75.0"},
    }
    return event


def make_envelope(event: dict[str, Any]) -> bytes:
    payload = orjson.dumps(event)
    header = orjson.dumps(
        {
            "event_id": event["event_id"],
            "sent_at": datetime.now(UTC).isoformat(),
            "sdk": event["sdk"],
        }
    )
    item = orjson.dumps(
        {"type": "event", "content_type": "application/json", "length": len(payload)}
    )
    return header + b"\n" + item + b"\n" + payload + b"\n"


def write_bodies(path: Path, count: int) -> tuple[float, float]:
    rng = random.Random(7)
    raw_total = gz_total = 0
    with path.open("wb") as out:
        for i in range(count):
            raw = make_envelope(make_event(i, rng))
            body = gzip.compress(raw, compresslevel=6)
            raw_total += len(raw)
            gz_total += len(body)
            out.write(f"{len(body)}\n".encode() + body)
    return raw_total / count, gz_total / count


@dataclass
class WrkResult:
    requests: int
    non_2xx: int
    rps: float
    p50_ms: float
    p99_ms: float
    acked: list[str]


def run_wrk(
    url: str,
    path: str,
    auth: str,
    bodies: Path,
    *,
    seconds: int,
    connections: int,
    offset: int = 0,
) -> WrkResult:
    """One wrk run; its first body is the one after the ``offset`` bodies sent before."""
    with tempfile.NamedTemporaryFile(suffix=".acked", delete=False) as acked_file:
        acked_path = acked_file.name
    env = {
        **os.environ,
        "BODIES": str(bodies),
        "TARGET_PATH": path,
        "SENTRY_AUTH": auth,
        "ACKED_OUT": acked_path,
        "OFFSET": str(offset),
    }
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(HERE / "envelope.lua"),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non_2xx_match = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = wrk_latency_ms(out, "50%")
    p99 = wrk_latency_ms(out, "99%")
    acked = []
    for line in Path(acked_path).read_text().splitlines():
        if line.strip():
            acked.append(json.loads(line)["id"])
    os.unlink(acked_path)
    return WrkResult(
        requests, int(non_2xx_match.group(1)) if non_2xx_match else 0, rps, p50, p99, acked
    )


def start_bench_server(database_url: str, writer: str = "real") -> Server:
    env = {
        "DATABASE_URL": database_url,
        "RUN_JOBS_IN_PROCESS": "false",
        "LOG_LEVEL": "WARNING",
        "GATI_BENCH_WRITER": writer,  # bench.errors.server_app: "none" is a ceiling run
    }
    env["GATI_SKIP_MIGRATIONS"] = "1"
    return start_app_factory("bench.errors.server_app:make_app", env)


async def create_project(url: str) -> tuple[int, str]:
    db = Database(url, Settings(database_url=url))
    try:
        async with db.session() as session:
            project, _ = await projects.create_project(
                session, name=f"bench-{uuid.uuid4().hex[:6]}", settings={"error_rate_limit": "off"}
            )
            return project.id, project.public_key
    finally:
        await db.dispose()


async def stored_event_ids(url: str, project_id: int) -> set[str]:
    db = Database(url, Settings(database_url=url))
    try:
        async with db.read_session() as session:
            rows = await session.execute(
                select(ErrorEvent.event_id).where(ErrorEvent.project_id == project_id)
            )
            return {r[0] for r in rows}
    finally:
        await db.dispose()


def throughput(
    url: str,
    bodies: Path,
    *,
    seconds: int,
    connections: int,
    rounds: int,
    first_body: int = 0,
    profile: str | None = None,
    writer: str = "real",
) -> dict[str, Any]:
    """``first_body``: bodies sent to this database by earlier calls (the next run starts
    after them); the result's ``bodies_sent`` is the count after this call."""
    project_id, public_key = asyncio.run(create_project(url))
    auth = f"Sentry sentry_version=7, sentry_client=sentry.python/2.75.0, sentry_key={public_key}"
    server = start_bench_server(url, writer)
    try:
        noop_path = f"/bench/noop/{project_id}/envelope/"
        real_path = f"/api/{project_id}/envelope/"
        run_wrk(server.url, noop_path, auth, bodies, seconds=2, connections=connections)  # warm-up
        # Every envelope run starts after the bodies sent before it (plus those in flight when
        # wrk stopped): a body sent twice is a retry the server drops, which is cheaper than a
        # new event and made later rounds read high until 2026-12-07.
        sent = first_body
        sent += (
            connections
            + run_wrk(
                server.url, real_path, auth, bodies, seconds=2, connections=connections, offset=sent
            ).requests
        )
        noop: list[WrkResult] = []
        real: list[WrkResult] = []
        cpu: dict[str, list[float]] = {"noop": [], "envelope": []}
        loop_busy: dict[str, list[float]] = {"noop": [], "envelope": []}
        for index in range(rounds):
            for kind, path, results in (("noop", noop_path, noop), ("envelope", real_path, real)):
                spy = None
                if profile and kind == "envelope" and index == rounds - 1:
                    spy = start_profile(profile, server.process.pid, seconds)
                before, loop_before = server.cpu_seconds(), server.loop_cpu_seconds()
                started = time.perf_counter()
                result = run_wrk(
                    server.url,
                    path,
                    auth,
                    bodies,
                    seconds=seconds,
                    connections=connections,
                    offset=sent if kind == "envelope" else 0,
                )
                if kind == "envelope":
                    sent += result.requests + connections
                elapsed = time.perf_counter() - started
                cpu[kind].append(1e6 * (server.cpu_seconds() - before) / max(result.requests, 1))
                loop_busy[kind].append(100 * (server.loop_cpu_seconds() - loop_before) / elapsed)
                results.append(result)
                if spy is not None:
                    spy.wait()
        rss = server.rss_mb()
    finally:
        server.stop()
    stored = asyncio.run(stored_event_ids(url, project_id))
    acked = {i for r in real for i in r.acked}
    missing = acked - stored
    # bodies sent more than once (the body file ran out): retries, cheaper than new events
    repeated = sum(len(r.acked) for r in real) - len(acked)
    noop_rps = sum(r.rps for r in noop) / len(noop)
    real_rps = sum(r.rps for r in real) / len(real)
    return {
        "noop_rps": [round(r.rps) for r in noop],
        "envelope_rps": [round(r.rps) for r in real],
        "ratio": real_rps / noop_rps,
        "server_cpu_us_per_request": {k: [round(v) for v in vs] for k, vs in cpu.items()},
        "event_loop_busy_percent": {k: [round(v) for v in vs] for k, vs in loop_busy.items()},
        "envelope_p50_ms": [r.p50_ms for r in real],
        "envelope_p99_ms": [r.p99_ms for r in real],
        "non_2xx": sum(r.non_2xx for r in real),
        "acknowledged": len(acked),
        "stored": len(stored),
        "acknowledged_not_stored": len(missing),
        "acknowledged_more_than_once": repeated,
        "bodies_sent": sent,
        "server_rss_mb": round(rss),
    }


async def grouping(url: str) -> dict[str, Any]:
    db = Database(url, Settings(database_url=url))
    try:
        async with db.session() as session:
            project, _ = await projects.create_project(
                session, name=f"group-{uuid.uuid4().hex[:6]}"
            )
            project_id = project.id
        rng = random.Random(11)
        received = datetime.now(UTC)
        t0 = time.perf_counter()
        events = [
            normalize_sentry_event(make_event(i, rng), received_at=received) for i in range(10_000)
        ]
        normalize_s = time.perf_counter() - t0
        fingerprints = {e.fingerprint for e in events}
        items = [service.ErrorWrite(project_id=project_id, event=e) for e in events]
        counter = IssueStatements()
        t0 = time.perf_counter()
        async with db.connection() as conn, counter.watching(db, conn):
            results = await service.write_error_batch(conn, items)
        write_s = time.perf_counter() - t0
        async with db.read_session() as session:
            from sqlalchemy import func

            from gati.errors.models import Issue

            issues = (
                await session.execute(
                    select(func.count(Issue.id), func.sum(Issue.event_count)).where(
                        Issue.project_id == project_id
                    )
                )
            ).one()
        return {
            "events": len(items),
            "distinct_fingerprints": len(fingerprints),
            "stored": sum(r.stored for r in results),
            "issues": issues[0],
            "issue_event_count_sum": int(issues[1]),
            "issue_write_statements": counter.statements,
            "issue_rows_written": counter.rows,
            "normalize_ms": round(normalize_s * 1000),
            "batch_write_ms": round(write_s * 1000),
            "events_per_s_batch_write": round(len(items) / write_s),
        }
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--connections", default="64,256", help="comma-separated wrk connection counts"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--bodies",
        type=int,
        default=200_000,
        help="distinct envelopes (more than a run sends in all, or bodies repeat as retries)",
    )
    parser.add_argument("--dialects", default="sqlite,postgresql")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="record the server with py-spy during the last envelope run (collapsed stacks)",
    )
    parser.add_argument(
        "--no-grouping", action="store_true", help="skip the 10,000-event grouping measurement"
    )
    parser.add_argument(
        "--writer",
        choices=["real", "none"],
        default="real",
        help="none: a ceiling run, the error events' group writer stores nothing (what the rest "
        "of the endpoint allows; every event then reads as acknowledged but not stored)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="gati-bench-errors-"))
    bodies = work / "bodies.bin"
    raw_size, gz_size = write_bodies(bodies, args.bodies)
    print(f"machine: {machine()}")
    print(f"envelope: {raw_size:.0f} bytes of JSON, {gz_size:.0f} bytes gzip; wrk, 1 thread")
    report: dict[str, Any] = {"raw_bytes": round(raw_size), "gzip_bytes": round(gz_size)}
    for dialect in args.dialects.split(","):
        if dialect == "sqlite":
            url = asyncio.run(fresh_sqlite_database(work / "bench.db"))
        else:
            url = asyncio.run(fresh_pg_database("gati_bench_errors"))
        result: dict[str, Any] = {}
        sent = 0
        ceiling = "" if args.writer == "real" else f" CEILING RUN: --writer {args.writer}"
        print(f"\n[{dialect}]{ceiling}")
        for connections in [int(c) for c in args.connections.split(",")]:
            t = throughput(
                url,
                bodies,
                seconds=args.seconds,
                connections=connections,
                rounds=args.rounds,
                first_body=sent,
                profile=args.profile,
                writer=args.writer,
            )
            sent = t["bodies_sent"]
            result[f"c{connections}"] = t
            print(f"  {connections} connections")
            print(f"    no-op endpoint    : {t['noop_rps']} req/s")
            print(
                f"    envelope endpoint : {t['envelope_rps']} envelopes/s ({t['ratio']:.0%} of no-op)"
            )
            print(f"    server CPU per request (µs): {t['server_cpu_us_per_request']}")
            print(f"    event loop thread busy (%): {t['event_loop_busy_percent']}")
            print(
                f"    envelope latency  : p50 {t['envelope_p50_ms']} ms, p99 {t['envelope_p99_ms']} ms"
            )
            print(
                f"    acknowledged {t['acknowledged']}, stored {t['stored']}, acknowledged but not "
                f"stored {t['acknowledged_not_stored']}, non-2xx {t['non_2xx']}"
            )
            if t["acknowledged_more_than_once"]:
                print(
                    f"    WARNING: {t['acknowledged_more_than_once']} envelopes were sent again "
                    f"(retries, cheaper than new events): raise --bodies above {sent}"
                )
        report[dialect] = result
        if args.no_grouping:
            continue
        result["grouping"] = g = asyncio.run(grouping(url))
        print(
            f"  grouping: {g['events']} events / {g['distinct_fingerprints']} fingerprints -> "
            f"{g['issues']} issues (event counts sum {g['issue_event_count_sum']}); "
            f"{g['issue_write_statements']} statement(s) wrote {g['issue_rows_written']} issue rows; "
            f"batch write {g['batch_write_ms']} ms ({g['events_per_s_batch_write']} events/s), "
            f"normalize {g['normalize_ms']} ms"
        )
    print("\n" + json.dumps(report, indent=1, default=str))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
