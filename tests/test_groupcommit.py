"""Group commit: concurrent single writes share transactions; a bad item fails alone; overload is 503."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gati.db.engine import Database
from gati.exceptions import AppError
from gati.ingest.groupcommit import GroupCommitter


async def _writer(conn: AsyncConnection, items: list[Any]) -> list[Any]:
    for item in items:
        if item == "bad":
            raise ValueError("bad item")
    await conn.execute(
        text(
            "INSERT INTO job_runs (job, window_start, window_end, status, started_at) VALUES (:j, '2026-01-01', '2026-01-01', 'done', '2026-01-01')"
        ),
        [{"j": str(item)} for item in items],
    )
    return [f"ok:{item}" for item in items]


async def _count(db: Database) -> int:
    async with db.read_session() as session:
        return int((await session.execute(text("SELECT count(*) FROM job_runs"))).scalar_one())


async def test_shared_commits_and_isolation_of_failures(db: Database) -> None:
    committer = GroupCommitter(db, max_batch=500)
    committer.register("t", _writer)
    committer.start()
    try:
        items = [f"i{n}" for n in range(300)] + ["bad"]
        results = await asyncio.gather(
            *(committer.submit("t", i) for i in items), return_exceptions=True
        )
    finally:
        await committer.stop()
    assert results[:300] == [f"ok:i{n}" for n in range(300)]
    assert isinstance(results[300], ValueError)
    assert await _count(db) == 300
    assert committer.items_committed >= 300 - 1
    # far fewer transactions than requests: commits were shared
    assert committer.groups_committed < 100


async def test_full_queue_answers_503(db: Database) -> None:
    committer = GroupCommitter(db, queue_limit=5)
    gate = asyncio.Event()
    entered = asyncio.Event()

    async def slow(conn: AsyncConnection, items: list[Any]) -> list[Any]:
        entered.set()
        await gate.wait()
        return await _writer(conn, items)

    committer.register("t", slow)
    committer.start()
    try:
        # The writer takes the first group and blocks on the gate; the queue then fills up.
        first = asyncio.create_task(committer.submit("t", "first"))
        await entered.wait()
        tasks = [asyncio.create_task(committer.submit("t", f"x{i}")) for i in range(8)]
        await asyncio.sleep(0)  # one scheduling step: each submit runs up to its first await
        refused = [t for t in tasks if t.done() and isinstance(t.exception(), AppError)]
        assert len(refused) == 3
        error = refused[0].exception()
        assert isinstance(error, AppError)
        assert error.status == 503 and error.headers["Retry-After"]
        gate.set()
        accepted = await asyncio.gather(first, *(t for t in tasks if t not in refused))
        assert all(r.startswith("ok:") for r in accepted) and len(accepted) == 6
        assert await _count(db) == 6
    finally:
        gate.set()
        await committer.stop()
