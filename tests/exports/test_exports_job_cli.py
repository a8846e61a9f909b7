"""The scheduled job through the jobs registry, and `gati export run|status` as a real process."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy import func, select

from gati.db.engine import Database
from gati.db.types import utcnow
from gati.exports import jobs
from gati.exports.models import ExportRun
from gati.jobs import registry
from tests.exports.factories import T0, assert_rows_equal, insert_web_events
from tests.exports.test_exports_service import configure, make_context


async def _count_runs(db: Database) -> int:
    async with db.read_session() as session:
        return int((await session.execute(select(func.count()).select_from(ExportRun))).scalar())


async def test_the_registered_job_exports_closed_windows_once(
    db: Database, make_project: Any, tmp_path: Path
) -> None:
    spec = registry.REGISTRY["exports.scheduled"]
    project = await make_project()
    ctx = dataclasses.replace(make_context(tmp_path), settle=timedelta(0))
    hour = utcnow().replace(minute=0, second=0, microsecond=0)
    first = hour - timedelta(hours=2)
    await insert_web_events(db, project["id"], start=first, count=20, spacing=timedelta(minutes=6))
    await configure(
        db,
        ctx,
        project["id"],
        {"format": "csv", "schedule": "hourly", "primary": {"type": "local", "start_from": first}},
    )
    jobs.configure(ctx)
    try:
        tick_end = registry.window_floor(utcnow(), spec.every)
        tick = (tick_end - spec.every, tick_end)
        assert await registry.run_window(db, spec, *tick) is True
        assert await _count_runs(db) == 2  # the two closed hours
        # The same tick again is refused by the registry; the job itself is idempotent too.
        assert await registry.run_window(db, spec, *tick) is False
        await spec.fn(db, *tick)
        assert await _count_runs(db) == 2
    finally:
        jobs._context = None
    files = sorted((ctx.local_root / project["slug"]).rglob("*.csv"))
    assert len(files) == 2


async def _gati(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gati.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_cli_backfill_to_a_folder_and_scheduled_catch_up(
    db: Database, database_url: str, make_project: Any, tmp_path: Path
) -> None:
    project = await make_project("Cli")
    stored = await insert_web_events(
        db, project["id"], start=T0, count=120, spacing=timedelta(minutes=1)
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "GATI_DATA_DIR": str(tmp_path / "data"),
        "EXPORT_LOCAL_ROOT": str(tmp_path / "exports"),
        "EXPORT_CHUNK_ROWS": "25",
        "EXPORT_MAX_WINDOWS_PER_RUN": "4",
        "LOG_LEVEL": "WARNING",
        "COLUMNS": "120",
    }
    folder = tmp_path / "adhoc"
    code, out, err = await _gati(
        env,
        "export", "run", "--project", project["slug"], "--since", "2025-06-22T09:00:00Z",
        "--until", "2025-06-22T10:00:00Z", "--format", "parquet", "--to", str(folder),
    )  # fmt: skip
    assert code == 0, err
    assert "succeeded" in out and "60 events" in out
    assert "60/60" in err  # the progress bar reached the window's count
    (path,) = folder.rglob("*.parquet")
    assert path.name == "20250622T090000Z-20250622T100000Z.parquet"
    rows = pq.read_table(io.BytesIO(path.read_bytes())).to_pylist()
    assert_rows_equal(rows, stored[:60], site=project["slug"])

    # Scheduled catch-up from the command line, for a configured destination.
    ctx = make_context(tmp_path)
    ctx = dataclasses.replace(ctx, local_root=(tmp_path / "exports").resolve())
    await configure(
        db,
        ctx,
        project["id"],
        {"format": "json", "schedule": "hourly", "primary": {"type": "local", "start_from": T0}},
    )
    code, out, err = await _gati(env, "export", "run", "--project", project["slug"], "--json")
    assert code == 0, err
    runs = json.loads(out)
    assert [r["rows"] for r in runs] == [60, 60, 0, 0]  # at most 4 windows per run
    code, out, _ = await _gati(env, "export", "status", "--project", project["slug"], "--json")
    assert code == 0
    status = json.loads(out)
    assert status["destinations"][0]["watermark"].startswith(
        (T0 + timedelta(hours=len(runs))).strftime("%Y-%m-%dT%H")
    )

    code, _, err = await _gati(env, "export", "run", "--project", "nope")
    assert code != 0 and "not found" in err
