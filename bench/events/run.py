"""PulseBoard single-event ingest benchmark (docs/benchmarks.md, "PulseBoard events (seed 004)").

``POST /api/v1/events`` with one ~230-byte product event per request, driven by ``wrk`` against a
real server process, compared with a no-op endpoint of the SAME app in the same run (it reads
the body and answers a constant JSON of the same shape). Each request carries a distinct
``event_id``; every acknowledged id is looked up in the database afterwards: all must be stored.

Modes: ``key`` (production mode, ``Authorization: Bearer sk_...``: the credential is checked on
every request) and ``local`` (local mode, no credentials: the seeds' curl examples).

    uv run python -m bench.events.run [--seconds 8] [--rounds 2] [--connections 64]
        [--dialects sqlite,postgresql] [--modes key,local]

Needs ``wrk`` on the PATH (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench.common import (
    Server,
    fresh_pg_database,
    fresh_sqlite_database,
    machine,
    start_app_factory,
    wrk_latency_ms,
)
from gati.db.engine import Database
from gati.events.models import Event
from gati.projects import service as projects
from gati.settings import Settings

HERE = Path(__file__).resolve().parent
SECRET = "bench-secret-key-that-is-long-enough-0123456789"


@dataclass
class WrkResult:
    requests: int
    non_2xx: int
    rps: float
    p50_ms: float
    p99_ms: float
    acked: list[str]


def run_wrk(url: str, path: str, auth: str, *, seconds: int, connections: int) -> WrkResult:
    with tempfile.NamedTemporaryFile(suffix=".acked", delete=False) as acked_file:
        acked_path = acked_file.name
    env = {
        **os.environ,
        "TARGET_PATH": path,
        "AUTH": auth,
        "PREFIX": uuid.uuid4().hex[:12],
        "ACKED_OUT": acked_path,
    }
    out: Any = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(HERE / "events.lua"),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
    out = out.stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = wrk_latency_ms(out, "50%")
    p99 = wrk_latency_ms(out, "99%")
    acked = [json.loads(line)["id"] for line in Path(acked_path).read_text().splitlines() if line]
    os.unlink(acked_path)
    return WrkResult(requests, int(non_2xx.group(1)) if non_2xx else 0, rps, p50, p99, acked)


def start_bench_server(database_url: str, *, mode: str) -> Server:
    env = {
        "DATABASE_URL": database_url,
        "RUN_JOBS_IN_PROCESS": "false",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_ENABLED": "false",  # measured: the ingest path, not the limiter's 429s
        "GATI_SKIP_MIGRATIONS": "1",
    }
    if mode == "key":
        env.update(
            ENVIRONMENT="production", SECRET_KEY=SECRET, CORS_ORIGINS="https://app.example.com"
        )
    return start_app_factory("bench.events.server_app:make_app", env)


async def create_project(url: str) -> str:
    db = Database(url, Settings(database_url=url))
    try:
        async with db.session() as session:
            _, key = await projects.create_project(session, name=f"bench-{uuid.uuid4().hex[:6]}")
            assert key is not None
            return key.secret
    finally:
        await db.dispose()


async def stored_ids(url: str, ids: set[str]) -> set[str]:
    db = Database(url, Settings(database_url=url))
    found: set[str] = set()
    try:
        async with db.read_session() as session:
            chunk = sorted(ids)
            for start in range(0, len(chunk), 5000):
                rows = await session.execute(
                    select(Event.id).where(Event.id.in_(chunk[start : start + 5000]))
                )
                found.update(r[0] for r in rows)
    finally:
        await db.dispose()
    return found


def throughput(
    url: str, *, mode: str, seconds: int, connections: int, rounds: int
) -> dict[str, Any]:
    secret = asyncio.run(create_project(url))
    auth = f"Bearer {secret}" if mode == "key" else ""
    server = start_bench_server(url, mode=mode)
    try:
        run_wrk(server.url, "/bench/noop", auth, seconds=2, connections=connections)  # warm-up
        run_wrk(server.url, "/api/v1/events", auth, seconds=2, connections=connections)
        noop: list[WrkResult] = []
        real: list[WrkResult] = []
        for _ in range(rounds):
            noop.append(
                run_wrk(server.url, "/bench/noop", auth, seconds=seconds, connections=connections)
            )
            real.append(
                run_wrk(
                    server.url, "/api/v1/events", auth, seconds=seconds, connections=connections
                )
            )
    finally:
        server.stop()
    acked = {i for r in real for i in r.acked}
    missing = acked - asyncio.run(stored_ids(url, acked))
    noop_rps = max(r.rps for r in noop)
    real_rps = max(r.rps for r in real)
    # Each events round runs right after its no-op round: on a shared machine the pairs see
    # similar load, so the median of the pairs' ratios is the steadiest figure.
    pairs = sorted(r.rps / n.rps for n, r in zip(noop, real, strict=True))
    return {
        "noop_rps": [round(r.rps) for r in noop],
        "events_rps": [round(r.rps) for r in real],
        "ratio_median_of_pairs": round(statistics.median(pairs), 3),
        "ratio_best": round(real_rps / noop_rps, 3),
        "ratio_mean": round(sum(r.rps for r in real) / sum(r.rps for r in noop), 3),
        "events_p50_ms": [r.p50_ms for r in real],
        "events_p99_ms": [r.p99_ms for r in real],
        "non_2xx": sum(r.non_2xx for r in real),
        "acknowledged": len(acked),
        "acknowledged_not_stored": len(missing),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--dialects", default="sqlite,postgresql")
    parser.add_argument("--modes", default="key,local")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    print(f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine()}")
    print(f"# load average before: {os.getloadavg()}")
    for dialect in args.dialects.split(","):
        for mode in args.modes.split(","):
            if dialect == "sqlite":
                tmp = Path(tempfile.mkdtemp(prefix="gati-bench-events-"))
                url = asyncio.run(fresh_sqlite_database(tmp / "bench.db"))
            else:
                url = asyncio.run(fresh_pg_database("gati_bench_events"))
            result = throughput(
                url,
                mode=mode,
                seconds=args.seconds,
                connections=args.connections,
                rounds=args.rounds,
            )
            print(json.dumps({"database": dialect, "mode": mode, **result}))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
