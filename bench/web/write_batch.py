"""Client CPU of the /collect group write on PostgreSQL: ``gati.web.repository.write_batch``.

    uv run python -m bench.web.write_batch [--events 19] [--groups 400]

Writes groups of ``--events`` new events (with a new visit each, and one rollup row) into a
fresh database, each group in a transaction, and reports the process CPU time (the client's:
building the statement's parameters and asyncpg encoding them; PostgreSQL is another process)
per ``write_batch`` call. 19 events is the mean group of the /collect benchmark at 64
connections (instrumented, 2026-12-07).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from bench.common import fresh_pg_database, machine
from gati.db.engine import Database
from gati.projects import service as projects
from gati.settings import Settings
from gati.web import repository


def _events(project_id: int, count: int, now: datetime) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        row: dict[str, Any] = dict.fromkeys(repository.EVENT_COLUMNS)
        row.update(
            project_id=project_id,
            id=uuid.uuid4().hex,
            event_type="pageview",
            timestamp=now,
            received_at=now,
            session_id=f"s_{uuid.uuid4().hex}",
            visitor_id=f"v{uuid.uuid4().hex}",
            visitor_key=random.getrandbits(62),
            url=f"https://bench.io/p{i}",
            path=f"/p{i}",
            hostname="bench.io",
            referrer="https://www.google.com/",
            title="Bench",
            source="Google",
            utm_source="bench",
            browser="Chrome",
            browser_version="124.0",
            os="Windows",
            os_version="10",
            device="desktop",
            is_bot=False,
            properties={"plan": "pro"},
            raw={"eventType": "pageview", "url": f"https://bench.io/p{i}"},
        )
        rows.append(row)
    return rows


def _visits(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    visits = []
    for event in events:
        row: dict[str, Any] = dict.fromkeys(repository.SESSION_FIELDS)
        row.update({k: event[k] for k in repository.SESSION_FIELDS if k in event})
        row.update(
            id=event["session_id"],
            started_at=event["timestamp"],
            last_seen_at=event["timestamp"],
            duration=0,
            pageviews=1,
            events=1,
            entry_page=event["path"],
            exit_page=event["path"],
        )
        visits.append(row)
    return visits


async def run(events_per_group: int, groups: int) -> None:
    url = await fresh_pg_database("gati_bench_web_write")
    db = Database(url, Settings(database_url=url))
    try:
        async with db.session() as session:
            project, _ = await projects.create_project(session, name="write-batch")
        now = datetime.now(UTC).replace(microsecond=0)
        rollups = [
            {
                "project_id": project.id,
                "hour": now.replace(minute=0, second=0),
                **dict.fromkeys(repository.ROLLUP_COUNTERS, events_per_group),
            }
        ]
        cpu: list[float] = []
        for _ in range(groups):
            events = _events(project.id, events_per_group, now)
            visits = _visits(events)
            async with db.connection() as conn:
                await conn.exec_driver_sql("SELECT 1")  # the transaction is begun
                before = time.process_time()
                await repository.write_batch(conn, events=events, visits=visits, rollups=rollups)
                cpu.append(time.process_time() - before)
        kept = sorted(cpu[groups // 8 :])  # after the warm-up
        print(machine())
        print(
            f"{events_per_group}-event groups, {len(kept)} measured: client CPU per write_batch "
            f"median {1e6 * statistics.median(kept):.0f} µs, "
            f"p25 {1e6 * kept[len(kept) // 4]:.0f} µs, p75 {1e6 * kept[3 * len(kept) // 4]:.0f} µs"
        )
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=19)
    parser.add_argument("--groups", type=int, default=400)
    args = parser.parse_args()
    asyncio.run(run(args.events, args.groups))


if __name__ == "__main__":
    main()
