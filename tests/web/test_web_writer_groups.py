"""The /collect batch writer in the group committer: alone in a group it runs as an autocommit
kind (on PostgreSQL its own transaction straight on asyncpg), and a bad item still fails alone
with nothing of it stored."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from gati.db.engine import Database
from gati.ingest.groupcommit import GroupCommitter
from gati.projects import service as projects
from gati.web import repository, service


def _row(project_id: int, n: int) -> service.EventRow:
    values: dict[str, Any] = dict.fromkeys(repository.EVENT_COLUMNS)
    values.update(
        project_id=project_id,
        id=f"event-{n}",
        event_type="pageview",
        timestamp=datetime(2026, 12, 7, 6, n, tzinfo=UTC),
        received_at=datetime(2026, 12, 7, 6, n, tzinfo=UTC),
        visitor_id=f"visitor-{n}",
        visitor_key=n,
        url="https://example.com/",
        path="/",
        hostname="example.com",
        is_bot=False,
        properties={"n": n},
    )
    return service.EventRow(values=values, client_session=None, previous_visitor_id=None)


async def _count(db: Database, table: str) -> int:
    async with db.read_session() as session:
        return int((await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def test_web_group_alone_is_autocommit_and_a_bad_item_fails_alone(db: Database) -> None:
    async with db.session() as session:
        project, _ = await projects.create_project(session, name="writer-groups")
    committer = GroupCommitter(db)
    committer.register(service.WRITER_KIND, service.write_events, autocommit=True)
    committer.start()
    try:
        results = await asyncio.gather(
            *(committer.submit(service.WRITER_KIND, _row(project.id, n)) for n in range(4)),
            committer.submit(service.WRITER_KIND, _row(987654, 9)),  # no such project
            return_exceptions=True,
        )
    finally:
        await committer.stop()
    assert results[:4] == [f"event-{n}" for n in range(4)]
    # SQLAlchemy's on SQLite; asyncpg's own on PostgreSQL, where the write goes straight to it
    assert isinstance(results[4], (IntegrityError, asyncpg.IntegrityConstraintViolationError))
    assert committer.autocommit_groups >= 2  # the group, then its halves
    assert await _count(db, "web_events") == 4
    assert await _count(db, "web_sessions") == 4  # nothing of the failed item's visit
    async with db.read_session() as session:
        pageviews = (
            await session.execute(text("SELECT sum(pageviews), sum(visits) FROM web_rollup_hourly"))
        ).one()
    assert tuple(pageviews) == (4, 4)


async def test_web_writer_in_a_mixed_group_shares_its_transaction(db: Database) -> None:
    """With another kind in the group, the committer's transaction holds both (no autocommit)."""
    n = 3
    async with db.session() as session:
        project, _ = await projects.create_project(session, name="writer-mixed")

    async def other(conn: Any, items: list[Any]) -> list[Any]:
        await conn.execute(
            text(
                "INSERT INTO job_runs (job, window_start, window_end, status, started_at) "
                "VALUES (:j, '2026-01-01', '2026-01-01', 'done', '2026-01-01')"
            ),
            [{"j": str(item)} for item in items],
        )
        return list(items)

    committer = GroupCommitter(db, gather_yields=8)
    committer.register(service.WRITER_KIND, service.write_events, autocommit=True)
    committer.register("other", other)
    committer.start()
    try:
        results = await asyncio.gather(
            *(committer.submit(service.WRITER_KIND, _row(project.id, i)) for i in range(n)),
            committer.submit("other", "job-1"),
        )
    finally:
        await committer.stop()
    assert results == [*(f"event-{i}" for i in range(n)), "job-1"]
    assert await _count(db, "web_events") == n
    assert await _count(db, "job_runs") == 1
