"""The Celery path with a real `gati worker` (and `gati beat`) process against real Redis."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gati.db.engine import Database
from gati.jobs.celery_app import make_celery
from gati.metrics import repository
from gati.metrics.models import MetricRollup
from gati.metrics.schemas import MetricPointIn
from gati.metrics.service import write_points
from gati.projects import service as projects
from gati.settings import Settings

pytestmark = pytest.mark.redis


@pytest.fixture
def queue() -> str:
    return f"gati-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def start_process(database_url: str, redis_url: str, queue: str, tmp_path: Path) -> Iterator[Any]:
    processes: list[subprocess.Popen[bytes]] = []

    def start(*args: str, **env: str) -> subprocess.Popen[bytes]:
        log = tmp_path / f"{args[0]}-{len(processes)}.log"
        environ = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "CELERY_QUEUE": queue,
            "GATI_DATA_DIR": str(tmp_path / "data"),
            **env,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "gati.cli", *args],
            env=environ,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def store_points(db: Database, count: int) -> int:
    async with db.session() as session:
        project, _ = await projects.create_project(session, name=f"p-{uuid.uuid4().hex[:6]}")
    base = datetime(2024, 6, 1, tzinfo=UTC)
    points = [
        MetricPointIn(
            name="jobs", value=float(i), ts=base + timedelta(minutes=i), project_id=project.id
        )
        for i in range(count)
    ]
    async with db.connection() as conn:
        results = await write_points(conn, points)
    return max(r.id for r in results)


async def watermark(db: Database) -> int:
    async with db.connection() as conn:
        return await repository.get_watermark(conn)


async def test_worker_runs_the_rollup_window_once(
    db: Database, redis_url: str, queue: str, start_process: Any
) -> None:
    top = await store_points(db, 300)
    start_process("worker", "--", "-Q", queue, "-P", "solo")
    client = make_celery(Settings(redis_url=redis_url))
    window = (datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 1, 0, 1, tzinfo=UTC))
    args = ["metrics.rollup", window[0].isoformat(), window[1].isoformat()]

    def run() -> Any:
        return client.send_task("gati.jobs.run_window", args=args, queue=queue).get(timeout=90)

    assert await asyncio.to_thread(run) is True
    assert await watermark(db) == top
    # The same window again: claimed already, not run twice.
    assert await asyncio.to_thread(run) is False
    async with db.read_session() as session:
        folded = (await session.execute(select(func.sum(MetricRollup.count)))).scalar_one()
    assert folded == 300
    unknown = client.send_task("gati.jobs.run_window", args=["nope", *args[1:]], queue=queue)
    with pytest.raises(Exception, match="unknown job"):
        await asyncio.to_thread(unknown.get, timeout=60)


async def test_beat_and_worker_keep_rollups_up_to_date(
    db: Database, start_process: Any, queue: str
) -> None:
    top = await store_points(db, 120)
    start_process("worker", "--", "-Q", queue, "-P", "solo")
    start_process("beat", JOBS_TICK_SECONDS="1")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if await watermark(db) >= top:
            break
        await asyncio.sleep(0.5)
    else:
        raise AssertionError("the beat/worker pair did not roll the points up")
    top = await store_points(db, 10)  # a later tick folds new points too
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if await watermark(db) >= top:
            return
        await asyncio.sleep(0.5)
    raise AssertionError("later points were not rolled up")
