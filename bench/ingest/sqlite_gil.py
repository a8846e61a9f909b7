"""bench/ingest/sqlite_gil: rows/s into SQLite's trace_events by ``executemany`` and by multi-row
statements (gati.db.sqlite_rows), with the other thread idle and with it busy running Python.

    uv run python -m bench.ingest.sqlite_gil [--events 100000] [--switch-interval 0.0005]

(``gati serve`` on SQLite sets the switch interval to 0.5 ms: gati.process_tuning.)

Why it matters: aiosqlite runs SQLite on its own thread while the event loop runs Python on the
main one. sqlite3 releases the GIL around each row's step, and every re-acquire waits for the
busy thread to let go of it.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.common import fresh_sqlite_database, machine, make_events
from bench.ingest.run import BATCH, rows_for
from gati.db import sqlite_rows
from gati.tracing.repository import EVENT_COLUMNS

SQL = (
    f"INSERT INTO trace_events ({', '.join(EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(EVENT_COLUMNS))}) ON CONFLICT (project_id, event_id) DO NOTHING"
)


def _database() -> sqlite3.Connection:
    path = Path(tempfile.mkdtemp()) / "gil.db"
    asyncio.run(fresh_sqlite_database(path))
    db = sqlite3.connect(path, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "INSERT INTO projects (slug, name, public_key, settings, created_at, updated_at) "
        "VALUES ('p', 'p', 'pk_x', '{}', '2026-01-01', '2026-01-01')"
    )
    db.commit()
    return db


def _executemany(db: sqlite3.Connection, batch: Sequence[tuple[Any, ...]]) -> None:
    db.executemany(SQL, batch)


def _multirow(db: sqlite3.Connection, batch: Sequence[tuple[Any, ...]]) -> None:
    sqlite_rows.execute_rows(db.execute, SQL, batch)


def _rate(
    insert: Callable[[sqlite3.Connection, Sequence[tuple[Any, ...]]], None],
    rows: list[tuple[Any, ...]],
    busy: bool,
) -> float:
    db = _database()
    stop = threading.Event()

    def spin() -> None:
        n = 0
        while not stop.is_set():
            n += 1

    other = threading.Thread(target=spin) if busy else None
    if other:
        other.start()
    try:
        start = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            insert(db, rows[i : i + BATCH])
            db.commit()
        return len(rows) / (time.perf_counter() - start)
    finally:
        stop.set()
        if other:
            other.join()
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--switch-interval", type=float, default=None, help="seconds")
    args = parser.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    rows = rows_for(make_events(args.events, seed=3), sqlite=True)
    print(f"machine: {machine()}")
    print(
        f"{len(rows):,} trace events in batches of {BATCH:,}; "
        f"switch interval {sys.getswitchinterval() * 1000:g} ms"
    )
    for name, insert in (("executemany", _executemany), ("multi-row", _multirow)):
        for busy in (False, True):
            other = "busy" if busy else "idle"
            print(f"{name:12s} other thread {other}: {_rate(insert, rows, busy):>9,.0f} rows/s")


if __name__ == "__main__":
    main()
