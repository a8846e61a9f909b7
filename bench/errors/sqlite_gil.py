"""Wall time of one SQLite group write of error events, with the rest of the process idle and
with another thread running Python (what the event loop does under load).

    uv run python -m bench.errors.sqlite_gil [--group 32] [--groups 100] [--switch-interval 0.0005]

Each group goes through ``service.write_error_batch`` as the group committer runs it on SQLite
(one hop to aiosqlite's thread: BEGIN, the events, the issue upsert, the issues' environments,
COMMIT). Every call into SQLite gives the GIL up and must take it back; while another thread
runs Python, each take waits up to the switch interval (0.5 ms in ``gati serve`` on SQLite), so
the number of such calls per group, not SQLite's own work, sets the group's wall time under
load, and with it how long the server's requests wait.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import fresh_sqlite_database, machine
from bench.errors.run import make_event
from gati.db.bulk import AUTOCOMMIT_DRIVER, raw_driver
from gati.db.engine import Database
from gati.errors import service
from gati.errors.normalize import normalize_sentry_event
from gati.projects import service as projects
from gati.settings import Settings


class Spinner:
    """A thread that runs Python until stopped (the busy event loop's stand-in)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)

    def _spin(self) -> None:
        total = 0
        while not self._stop.is_set():
            total += sum(range(200))

    def __enter__(self) -> Spinner:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def run(group: int, groups: int) -> None:
    url = await fresh_sqlite_database(Path(tempfile.mkdtemp()) / "bench.db")
    db = Database(url, Settings(database_url=url))
    try:
        async with db.session() as session:
            project, _ = await projects.create_project(session, name="bench")
            await session.commit()
        rng = random.Random(7)
        now = datetime.now(UTC)
        for label, busy in (("idle", False), ("busy", True), ("idle", False), ("busy", True)):
            writes = [
                service.ErrorWrite(
                    project_id=project.id,
                    event=normalize_sentry_event(
                        make_event(rng.randrange(10**9), rng), received_at=now
                    ),
                )
                for _ in range(group * groups)
            ]
            times: list[float] = []
            spinner = Spinner() if busy else None
            if spinner is not None:
                spinner.__enter__()
            try:
                for start in range(0, len(writes), group):
                    async with db.write_engine.connect() as conn:
                        # as the group committer runs an autocommit kind's group: one hop does
                        # BEGIN, the group write and COMMIT
                        conn.info[AUTOCOMMIT_DRIVER] = await raw_driver(conn)
                        began = time.perf_counter()
                        await service.write_error_batch(conn, writes[start : start + group])
                        times.append(time.perf_counter() - began)
                        del conn.info[AUTOCOMMIT_DRIVER]
            finally:
                if spinner is not None:
                    spinner.__exit__()
            print(
                f"  other thread {label}: {1e3 * statistics.median(times):.2f} ms per group of "
                f"{group} (median; mean {1e3 * statistics.fmean(times):.2f} ms)"
            )
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--group", type=int, default=32)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--switch-interval", type=float, default=0.0005)
    args = parser.parse_args()
    sys.setswitchinterval(args.switch_interval)
    print(machine())
    print(f"switch interval {args.switch_interval * 1e3:g} ms")
    asyncio.run(run(args.group, args.groups))


if __name__ == "__main__":
    main()
