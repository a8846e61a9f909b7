"""Shared helpers for benchmarks: databases, a real server process, event generation, machine info."""

from __future__ import annotations

import asyncio
import os
import platform
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from gati.db import migrate

PG_ADMIN = os.environ.get("GATI_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
PG_BASE = PG_ADMIN.rsplit("/", 1)[0]
AGENTS = [f"agent-{i}" for i in range(10)]
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "gemini-1.5-pro"]


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Python {platform.python_version()}"


async def fresh_pg_database(name: str, *, migrated: bool = True) -> str:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = f"{PG_BASE}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)
    if migrated:
        await migrate.upgrade(url)
    return url


async def fresh_sqlite_database(path: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    url = f"sqlite+aiosqlite:///{path}"
    await migrate.upgrade(url)
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str

    def pids(self) -> list[int]:
        import psutil

        parent = psutil.Process(self.process.pid)
        return [parent.pid] + [c.pid for c in parent.children(recursive=True)]

    def cpu_seconds(self) -> float:
        """User + system CPU of the server's processes so far."""
        return process_cpu_seconds(self.pids())

    def loop_cpu_seconds(self) -> float:
        """User + system CPU so far of the main thread (the event loop's) of each server
        process. Divided by a run's seconds: how busy the loop was; below ~95 % it waited for
        something (the database, a writer thread) rather than for the CPU."""
        return loop_cpu_seconds(self.pids())

    def rss_mb(self) -> float:
        import psutil

        total = 0
        for pid in self.pids():
            try:
                total += psutil.Process(pid).memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total / 2**20

    def worker_rss_mb(self) -> list[float]:
        import psutil

        parent = psutil.Process(self.process.pid)
        return [c.memory_info().rss / 2**20 for c in parent.children(recursive=True)]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def loop_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU so far of the main thread (the event loop's) of each process."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            for thread in psutil.Process(pid).threads():
                if thread.id == pid:
                    total += thread.user_time + thread.system_time
        except psutil.NoSuchProcess:
            pass
    return total


def process_cpu_seconds(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def start_profile(path: str, pid: int, seconds: int) -> subprocess.Popen[bytes]:
    """py-spy (``pip install py-spy``) sampling the server for one run, as collapsed stacks.
    With ``GATI_BENCH_PROFILE_GIL=1`` only the thread holding the GIL is sampled: where a
    GIL-bound server's time goes."""
    spy = shutil.which("py-spy") or str(Path(sys.prefix).parent / ".tools/bin/py-spy")
    command = [spy, "record", "-p", str(pid), "-d", str(seconds), "-r", "200"]
    if os.environ.get("GATI_BENCH_PROFILE_GIL") == "1":
        command.append("--gil")
    if os.environ.get("GATI_BENCH_PROFILE_THREADS") == "1":
        command.append("--threads")
    return subprocess.Popen(
        [*command, "-f", "raw", "-o", path, "--nonblocking"], stdout=subprocess.DEVNULL
    )


def postgres_cpu_seconds() -> float:
    """CPU used so far by every PostgreSQL server process on this machine (backends included)."""
    import psutil

    return process_cpu_seconds(
        [
            p.pid
            for p in psutil.process_iter(["name"])
            if p.info["name"] in ("postgres", "postmaster")
        ]
    )


def start_server(database_url: str, *, workers: int = 1, **env: str) -> Server:
    port = free_port()
    environ = {
        **os.environ,
        "DATABASE_URL": database_url,
        "RUN_JOBS_IN_PROCESS": "false",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gati.cli", "serve", "--port", str(port), "--workers", str(workers)],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return wait_until_healthy(Server(process, f"http://127.0.0.1:{port}"), timeout=180)


def wait_until_healthy(server: Server, *, timeout: float) -> Server:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(server.url + "/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError("server did not start")


def start_app_factory(factory: str, env: dict[str, str]) -> Server:
    """A uvicorn process serving ``factory`` (``module:function``), one worker, no access log."""
    port = free_port()
    code = (
        f"import uvicorn; uvicorn.run({factory!r}, factory=True, "
        f"host='127.0.0.1', port={port}, log_config=None, access_log=False, proxy_headers=False, "
        "server_header=False)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return wait_until_healthy(Server(process, f"http://127.0.0.1:{port}"), timeout=120)


def make_events(
    count: int, *, runs_every: int = 100, seed: int = 1, start: datetime | None = None
) -> list[dict[str, Any]]:
    """~550-byte trace events: runs of ``runs_every`` events with parent links."""
    rng = random.Random(seed)
    start = start or datetime(2026, 11, 1, tzinfo=UTC)
    events: list[dict[str, Any]] = []
    run_id = ""
    root = ""
    for i in range(count):
        if i % runs_every == 0:
            run_id = str(uuid.UUID(int=rng.getrandbits(128)))
            root = ""
        event_id = str(uuid.UUID(int=rng.getrandbits(128)))
        ts = start + timedelta(milliseconds=i * 37)
        data: dict[str, Any] = {
            "model": rng.choice(MODELS),
            "tokens_in": rng.randint(10, 4000),
            "tokens_out": rng.randint(5, 800),
            "cost": round(rng.random() / 100, 6),
            "latency_ms": rng.randint(50, 3000),
            "status": "completed",
            "prompt": "x" * 150,
        }
        if root:
            data["parent_run_id"] = root
        else:
            root = event_id
        events.append(
            {
                "event_id": event_id,
                "event_type": "agent_start"
                if not data.get("parent_run_id")
                else rng.choice(["llm_call", "tool_call"]),
                "run_id": run_id,
                "agent_name": rng.choice(AGENTS),
                "timestamp": ts.isoformat().replace("+00:00", "Z"),
                "data": data,
            }
        )
    return events


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def match_first(app: Any, path: str) -> None:
    """Move the route at ``path`` (a bench's no-op) to the front of the app's route list.

    Routes are tried in order, so the no-op baseline then pays the least routing possible: the
    strictest comparison for the ingest endpoints, which the app itself matches right after.
    """
    routes = app.router.routes
    position = next(i for i, r in enumerate(routes) if getattr(r, "path", "") == path)
    routes.insert(0, routes.pop(position))


def wrk_latency_ms(out: str, percentile: str) -> float:
    """A latency percentile (``"50%"``, ``"99%"``) of wrk's ``--latency`` report, in ms. Only
    the distribution's own lines count: the Thread Stats line ends in a percentage too."""
    m = re.search(rf"^\s*{re.escape(percentile)}\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[m.group(2)]
