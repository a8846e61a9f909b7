"""bench/metrics/committer: CPU and latency of one group commit of metric points, by mode.

    uv run python -m bench.metrics.committer [--dialect postgresql|sqlite] [--group 32]
        [--groups 200] [--rounds 5]

Drives the real ``GroupCommitter`` with the real metrics writer (no HTTP): ``--group`` points
submitted at once, awaited, ``--groups`` times per round; rounds alternate between the modes so
that all of them see the same machine:

* ``checkout``: the connection goes back to the pool after every group (what happened under
  load before held connections: a pool checkout and SQLAlchemy's pre-ping per group);
* ``held``: the writer keeps its connection, one transaction (BEGIN, insert, COMMIT) per group;
* ``autocommit``: held, and the group runs without BEGIN/COMMIT (metrics are an autocommit kind).

Prints process CPU time per group and per point, and the p50 wall time of a group.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import uvloop

from bench.common import fresh_pg_database, fresh_sqlite_database, machine

MODES = ("checkout", "held", "autocommit")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dialect", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--group", type=int, default=32)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    if args.dialect == "sqlite":
        url = await fresh_sqlite_database(tmp / "gati.db")
    else:
        url = await fresh_pg_database("gati_bench_committer")
    os.environ.update(DATABASE_URL=url, GATI_DATA_DIR=str(tmp))

    from gati.app import ensure_default_project
    from gati.db.engine import Database
    from gati.db.types import utcnow
    from gati.ingest.groupcommit import GroupCommitter
    from gati.metrics import service
    from gati.metrics.schemas import validate_point
    from gati.settings import Settings

    db = Database(url, Settings())
    project_id = await ensure_default_project(db)
    committer = GroupCommitter(db, concurrency=1)

    async def write(conn, items):  # type: ignore[no-untyped-def]
        return await service.write_points(conn, items)

    committer.register("m", write, autocommit=True)
    committer.start()

    def point(n: int):  # type: ignore[no-untyped-def]
        checked = validate_point({"name": "committer_bench", "value": n}, 0, utcnow())
        assert not isinstance(checked, list)
        checked.project_id = project_id
        return checked

    async def one_round(mode: str) -> tuple[float, float]:
        committer.hold_connection = mode != "checkout"
        committer._autocommit_kinds = {"m"} if mode == "autocommit" else set()
        walls: list[float] = []
        cpu0 = time.process_time()
        for g in range(args.groups):
            items = [point(g * args.group + i) for i in range(args.group)]
            start = time.perf_counter()
            await asyncio.gather(*(committer.submit("m", item) for item in items))
            walls.append(time.perf_counter() - start)
        return (time.process_time() - cpu0) / args.groups * 1e6, statistics.median(walls) * 1e3

    try:
        # hold_connection is read when a writer task starts: restart per mode.
        results: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
        for round_index in range(args.rounds + 1):
            for mode in MODES:
                await committer.stop()
                committer.hold_connection = mode != "checkout"
                committer.start()
                figures = await one_round(mode)
                if round_index:  # the first round warms up
                    results[mode].append(figures)
    finally:
        await committer.stop()
        await db.dispose()
    print(f"machine: {machine()}; {args.dialect}; groups of {args.group} metric points")
    for mode in MODES:
        cpus = sorted(r[0] for r in results[mode])
        walls = sorted(r[1] for r in results[mode])
        cpu = cpus[len(cpus) // 2]
        print(
            f"{mode:10s}: {cpu:7.0f} us CPU per group ({cpu / args.group:5.1f} per point), "
            f"p50 group {walls[len(walls) // 2]:.2f} ms  (rounds: {', '.join(f'{c:.0f}' for c in cpus)})"
        )


if __name__ == "__main__":
    uvloop.run(main())
