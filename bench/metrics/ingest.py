"""bench/metrics/ingest: single-point POST /api/v1/metrics req/s vs a no-op POST of the same app.

    uv run python -m bench.metrics.ingest [--dialect sqlite|postgresql] [--seconds 15] [--connections 64] [--rounds 2]

One uvicorn process serving the real app plus ``POST /bench/noop`` (reads the body, answers 201;
same middleware stack; matched first in the route table, ``BENCH_NOOP_LAST=1`` appends it).
Load: `wrk` (1 thread, C connections) posting ``{"name":"ingest_bench","value":1.5}``, first to
the no-op endpoint, then to /api/v1/metrics.
Rate limiting stays on (limit raised so that it does not refuse). Every 201 is a committed point
(group commit); the bench checks that the stored count equals the 201 count.

The machine is shared: rounds alternate (no-op, ingest, no-op, ingest, ...) so that both see
the same background load; the best round of each is compared, and the median of the per-round
ratios and the ratio of all requests of all rounds are printed too (the robust figures). Every
round's figures are printed with the load average, and the server process's CPU time per
request (user+system, all threads): it is much less sensitive to other load than requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

from bench.common import PG_BASE, free_port, fresh_pg_database, fresh_sqlite_database, machine

LUA = """
wrk.method = "POST"
wrk.body = '{"name":"ingest_bench","value":1.5}'
wrk.headers["Content-Type"] = "application/json"
local non201 = 0
response = function(status, headers, body)
  if status ~= 201 then non201 = non201 + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("non201 %d\\n", non201))
end
"""


def run_wrk(
    url: str, seconds: int, connections: int, script: Path, server_pid: int | None = None
) -> tuple[float, int, int, str, float]:
    """(req/s, requests, non-201 answers, p99, server CPU microseconds per request)."""
    import psutil

    process = psutil.Process(server_pid) if server_pid else None
    cpu0 = sum(process.cpu_times()[:2]) if process else 0.0
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non201 = int(re.search(r"non201 (\d+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"^\s*99%\s+(\S+)\s*$", out, re.M)
    cpu = (sum(process.cpu_times()[:2]) - cpu0) / max(total, 1) * 1e6 if process else 0.0
    return rps, total, non201, p99.group(1) if p99 else "?", cpu


async def stored_points(url: str, dialect: str, tmp: Path) -> int:
    if dialect == "postgresql":
        conn = await asyncpg.connect(f"{PG_BASE}/gati_bench_metrics_ingest")
        try:
            return int(await conn.fetchval("SELECT count(*) FROM metric_points"))
        finally:
            await conn.close()
    import sqlite3

    with sqlite3.connect(tmp / "gati.db") as conn:
        return int(conn.execute("SELECT count(*) FROM metric_points").fetchone()[0])


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dialect", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    if args.dialect == "sqlite":
        url = await fresh_sqlite_database(tmp / "gati.db")
    else:
        url = await fresh_pg_database("gati_bench_metrics_ingest")
    script = tmp / "post.lua"
    script.write_text(LUA)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "GATI_DATA_DIR": str(tmp),
        "GATI_SKIP_MIGRATIONS": "1",
        "RUN_JOBS_IN_PROCESS": "false",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_INGEST": "1000000/second",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.metrics.noop_app:create",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        run_wrk(base + "/bench/noop", 3, args.connections, script)  # warm-up
        run_wrk(base + "/api/v1/metrics", 3, args.connections, script)
        before = await stored_points(url, args.dialect, tmp)
        noops, ingests = [], []
        stats = httpx.get(base + "/bench/stats", timeout=5).json()
        groups0, items0 = stats["groups"], stats["items"]
        for _ in range(args.rounds):
            noops.append(
                run_wrk(base + "/bench/noop", args.seconds, args.connections, script, server.pid)
            )
            load_noop = os.getloadavg()[0]
            ingests.append(
                run_wrk(
                    base + "/api/v1/metrics", args.seconds, args.connections, script, server.pid
                )
            )
            load_ingest = os.getloadavg()[0]
            stats = httpx.get(base + "/bench/stats", timeout=5).json()
            batch = (stats["items"] - items0) / max(stats["groups"] - groups0, 1)
            groups0, items0 = stats["groups"], stats["items"]
            print(
                f"round: no-op {noops[-1][0]:,.0f} req/s ({noops[-1][4]:.0f} us CPU/req, "
                f"load {load_noop:.1f}); ingest {ingests[-1][0]:,.0f} req/s "
                f"({ingests[-1][4]:.0f} us CPU/req, load {load_ingest:.1f}, {batch:.1f} points per "
                f"commit); "
                f"ratio {ingests[-1][0] / noops[-1][0] * 100:.0f}%",
                flush=True,
            )
        after = await stored_points(url, args.dialect, tmp)
    finally:
        server.terminate()
        server.wait(timeout=20)
    acknowledged = sum(r[1] - r[2] for r in ingests)
    noop, ingest = max(noops), max(ingests)
    print(
        f"machine: {machine()}; {args.dialect}; 1 server process; no-op route "
        f"{'appended' if os.environ.get('BENCH_NOOP_LAST') == '1' else 'matched first'}; "
        f"wrk -t1 -c{args.connections} "
        f"-d{args.seconds}s; {args.rounds} alternating rounds, best of each"
    )
    print(f"no-op POST:            {noop[0]:,.0f} req/s (p99 {noop[3]}, {noop[4]:.0f} us CPU/req)")
    print(
        f"POST /api/v1/metrics:  {ingest[0]:,.0f} req/s (p99 {ingest[3]}, {ingest[4]:.0f} us "
        f"CPU/req), non-201: {sum(r[2] for r in ingests)}"
    )
    print(f"ratio: {ingest[0] / noop[0] * 100:.0f}% of the no-op endpoint (best of each)")
    pairs = sorted(i[0] / n[0] for n, i in zip(noops, ingests, strict=True))
    print(
        f"per-round ratios: median {pairs[len(pairs) // 2] * 100:.0f}%"
        f" (lower median {pairs[(len(pairs) - 1) // 2] * 100:.0f}%), all requests of all rounds "
        f"{sum(i[1] for i in ingests) / sum(n[1] for n in noops) * 100:.0f}%"
    )
    print(f"stored during the run: {after - before:,} points; acknowledged 201s: {acknowledged:,}")


if __name__ == "__main__":
    asyncio.run(main())
