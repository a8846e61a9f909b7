"""bench/metrics/write: CPU per point of the group-commit write alone (no HTTP, no committer).

    uv run python -m bench.metrics.write [--dialect sqlite|postgresql] [--group 64] [--groups 60]

Calls ``gati.metrics.service.write_points`` in a transaction per group of ``--group`` points (the
size a group commit reaches under load), ``--groups`` times per round, 5 rounds, and prints the
process CPU time per point (all threads: on SQLite the aiosqlite driver thread too) and the main
thread's share (the part that holds the GIL and competes with request handling).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import uvloop

from bench.common import fresh_pg_database, fresh_sqlite_database, machine


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dialect", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--group", type=int, default=64)
    parser.add_argument("--groups", type=int, default=60)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    if args.dialect == "sqlite":
        url = await fresh_sqlite_database(tmp / "gati.db")
    else:
        url = await fresh_pg_database("gati_bench_metrics_write")
    os.environ.update(DATABASE_URL=url, GATI_DATA_DIR=str(tmp))
    from gati.app import ensure_default_project
    from gati.db.engine import Database
    from gati.db.types import utcnow
    from gati.metrics import service
    from gati.metrics.schemas import validate_point
    from gati.settings import Settings

    settings = Settings()
    db = Database(settings.resolved_database_url, settings)
    project_id = await ensure_default_project(db)

    async def one_group() -> None:
        now = utcnow()
        points = []
        for i in range(args.group):
            point = validate_point({"name": "write_bench", "value": float(i)}, i, now)
            assert not isinstance(point, list)
            point.project_id = project_id
            points.append(point)
        async with db.connection() as conn:
            results = await service.write_points(conn, points)
        assert len(results) == len(points)

    for _ in range(20):
        await one_group()
    total: list[float] = []
    main_thread: list[float] = []
    n = args.group * args.groups
    for _ in range(5):
        cpu0, thread0 = time.process_time(), time.thread_time()
        for _ in range(args.groups):
            await one_group()
        total.append((time.process_time() - cpu0) / n * 1e6)
        main_thread.append((time.thread_time() - thread0) / n * 1e6)
    await db.dispose()
    print(f"machine: {machine()}; {args.dialect}; {args.group} points per transaction")
    print(
        f"CPU per point: {statistics.median(total):.1f} us (rounds: "
        f"{', '.join(f'{x:.1f}' for x in total)}); main thread "
        f"{statistics.median(main_thread):.1f} us"
    )


if __name__ == "__main__":
    uvloop.run(main())
