"""bench/web/visits_lookup: the /collect writer's visit lookup on SQLite as web_sessions grows.

    uv run python -m bench.web.visits_lookup [--visits 200000] [--batch 64] [--form keys_in|row_values]

Fills ``web_sessions`` with ``--visits`` visits (one project), then times
``sqlite_load_visits`` for a group commit's ``--batch`` visitors (half of them known), the
lookup every /collect group commit makes. ``--form row_values`` times the previous query form,
``(project_id, visitor_id) IN (VALUES ...)``, which SQLite answered with a scan of the table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import select, tuple_

from bench.common import fresh_sqlite_database, machine
from gati.db.bulk import sqlite_run
from gati.db.engine import Database
from gati.db.types import sqlite_timestamp
from gati.settings import Settings
from gati.web import repository
from gati.web.repository import SESSION_FIELDS, SESSIONS


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--visits", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--form", choices=["keys_in", "row_values"], default="keys_in")
    args = parser.parse_args()
    path = Path(tempfile.mkdtemp()) / "gati.db"
    url = await fresh_sqlite_database(path)
    db = Database(url, Settings(database_url=url))
    now = datetime.now(UTC)
    async with db.connection() as conn:
        await conn.exec_driver_sql(
            "INSERT INTO projects (slug, name, public_key, settings, created_at, updated_at) "
            "VALUES ('bench', 'bench', 'pk_bench', '{}', ?, ?)",
            (sqlite_timestamp(now), sqlite_timestamp(now)),
        )
        project_id = (await conn.exec_driver_sql("SELECT id FROM projects")).scalar_one()
        names = list(SESSION_FIELDS)
        marks = ", ".join("?" for _ in names)
        rows = []
        for i in range(args.visits):
            seen = sqlite_timestamp(now - timedelta(seconds=i % 1800))
            values = {
                "project_id": project_id,
                "id": f"s{i}",
                "visitor_id": f"v{i}",
                "started_at": seen,
                "last_seen_at": seen,
            }
            rows.append(tuple(values.get(name, _default(name)) for name in names))
        await conn.exec_driver_sql(
            f"INSERT INTO web_sessions ({', '.join(names)}) VALUES ({marks})", rows
        )
    visitors = [(project_id, f"v{i * 997 % args.visits}") for i in range(args.batch // 2)]
    visitors += [(project_id, f"new{i}") for i in range(args.batch - len(visitors))]
    since = now - timedelta(minutes=30)
    timings: list[float] = []
    found = 0
    for _ in range(30):
        async with db.connection() as conn:
            start = time.perf_counter()
            if args.form == "keys_in":
                rows_out = await sqlite_run(
                    conn,
                    partial(
                        repository.sqlite_load_visits, visitors=visitors, sessions=[], since=since
                    ),
                )
            else:
                columns = [SESSIONS.c[name] for name in SESSION_FIELDS]
                stmt = select(*columns).where(
                    tuple_(SESSIONS.c.project_id, SESSIONS.c.visitor_id).in_(visitors),
                    SESSIONS.c.last_seen_at >= since,
                )
                rows_out = list(await conn.execute(stmt))
            timings.append((time.perf_counter() - start) * 1000)
            found = len(rows_out)
    await db.dispose()
    print(f"machine: {machine()}; SQLite; {args.visits:,} visits; form {args.form}")
    print(
        f"lookup of {args.batch} visitors ({found} found): p50 {statistics.median(timings):.2f} ms"
    )


_DEFAULTS = {"visitor_key": 7, "duration": 0, "pageviews": 1, "events": 1, "is_bot": 0}


def _default(name: str) -> object:
    return _DEFAULTS.get(name)


if __name__ == "__main__":
    asyncio.run(main())
