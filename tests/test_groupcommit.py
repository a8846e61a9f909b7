"""Group commit: concurrent single writes share transactions; a bad item fails alone; overload is 503."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gati.db.bulk import _driver_in_transaction, sqlite_run
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


async def test_items_queued_while_the_writer_gathers_share_its_transaction(db: Database) -> None:
    committer = GroupCommitter(db, gather_yields=4)
    committer.register("t", _writer)
    committer.start()
    try:

        async def submit_after(ticks: int, item: str) -> Any:
            for _ in range(ticks):
                await asyncio.sleep(0)  # scheduling steps, not time
            return await committer.submit("t", item)

        # The first item wakes the writer; the others arrive one scheduling step apart while
        # it yields to the loop, so all four are committed together.
        results = await asyncio.gather(*(submit_after(n, f"g{n}") for n in range(4)))
    finally:
        await committer.stop()
    assert results == [f"ok:g{n}" for n in range(4)]
    assert committer.groups_committed == 1
    assert await _count(db) == 4


async def test_without_gathering_a_lone_item_does_not_wait_for_company(db: Database) -> None:
    committer = GroupCommitter(db, gather_yields=0)
    committer.register("t", _writer)
    committer.start()
    try:
        assert await committer.submit("t", "alone") == "ok:alone"
        assert committer.groups_committed == 1
    finally:
        await committer.stop()


async def test_a_cancelled_request_still_has_its_item_written(db: Database) -> None:
    committer = GroupCommitter(db)
    committer.register("t", _writer)
    committer.start()
    try:
        task = asyncio.create_task(committer.submit("t", "cancelled"))
        await asyncio.sleep(0)  # queued
        task.cancel()
        assert await committer.submit("t", "after") == "ok:after"
    finally:
        await committer.stop()
    assert task.cancelled()
    assert await _count(db) == 2


async def test_a_held_connection_goes_back_to_the_pool_when_the_queue_is_empty(
    db: Database,
) -> None:
    committer = GroupCommitter(db)
    # Held between groups only where other writers have connections left (PostgreSQL's pool);
    # SQLite's single write connection is checked out per group.
    assert committer.hold_connection == (db.dialect == "postgresql")
    committer.register("t", _writer)
    committer.start()
    pool = db.write_engine.pool
    try:
        items = [f"h{n}" for n in range(50)] + ["bad"] + [f"k{n}" for n in range(50)]
        results = await asyncio.gather(
            *(committer.submit("t", i) for i in items), return_exceptions=True
        )
        assert isinstance(results[50], ValueError)
        assert sum(1 for r in results if isinstance(r, str)) == 100
        for _ in range(1000):  # polling with a deadline (10 s): the release is asynchronous
            if pool.checkedout() == 0:
                break
            await asyncio.sleep(0.01)
        assert pool.checkedout() == 0
        assert await committer.submit("t", "later") == "ok:later"
    finally:
        await committer.stop()
    assert await _count(db) == 101


async def test_after_commit_hook_runs_once_per_group_after_commit(db: Database) -> None:
    committer = GroupCommitter(db, max_batch=500)
    calls: list[tuple[list[Any], int]] = []

    async def hook(items: list[Any], results: list[Any]) -> list[Any]:
        # Runs after COMMIT: another connection already sees the group's rows.
        calls.append((items, await _count(db)))
        return [f"{result}+hooked" for result in results]

    committer.register("t", _writer, after_commit=hook)
    committer.register("plain", _writer)
    committer.start()
    try:
        items = [f"i{n}" for n in range(50)]
        results = await asyncio.gather(
            *(committer.submit("t", i) for i in items), committer.submit("plain", "p")
        )
    finally:
        await committer.stop()
    assert results == [f"ok:i{n}+hooked" for n in range(50)] + ["ok:p"]
    hooked = [item for group, _ in calls for item in group]
    assert sorted(hooked) == sorted(items)  # every item once, never the other kind's
    seen = 0
    for group, visible in calls:
        seen += len(group)
        assert visible >= seen
    assert len(calls) < 50  # groups, not requests


async def test_a_failing_after_commit_hook_does_not_fail_committed_items(db: Database) -> None:
    committer = GroupCommitter(db)

    async def hook(items: list[Any], results: list[Any]) -> list[Any]:
        raise RuntimeError("cache down")

    committer.register("t", _writer, after_commit=hook)
    committer.start()
    try:
        assert await committer.submit("t", "x") == "ok:x"
    finally:
        await committer.stop()
    assert await _count(db) == 1


async def test_a_held_connection_serves_consecutive_groups(db: Database) -> None:
    # A generous idle limit: the gaps between waves must not depend on this machine's speed.
    committer = GroupCommitter(db, hold_idle_seconds=5)
    committer.register("t", _writer)
    committer.start()
    try:
        for wave in range(5):  # the queue empties between waves: the connection is kept
            results = await asyncio.gather(
                *(committer.submit("t", f"w{wave}-{n}") for n in range(20))
            )
            assert results == [f"ok:w{wave}-{n}" for n in range(20)]
    finally:
        await committer.stop()
    assert committer.groups_committed >= 5
    if committer.hold_connection:  # PostgreSQL
        assert committer.connections_opened == 1
    else:  # SQLite: its single write connection is checked out per group
        assert committer.connections_opened == 0
    assert await _count(db) == 100


async def _two_statements(conn: AsyncConnection, items: list[Any]) -> list[Any]:
    """Inserts the group's rows, then fails if one of them starts with "fail"."""
    await _writer(conn, items)
    if any(str(item).startswith("fail") for item in items):
        raise ValueError("failed after its first statement")
    return [f"ok:{item}" for item in items]


async def _straight_then_check(conn: AsyncConnection, items: list[Any]) -> list[Any]:
    """Like ``_two_statements``, but the insert goes straight to the driver where the group
    allows it (as gati.db.bulk's inserts do)."""
    driver = await _driver_in_transaction(conn)
    if driver is None:  # a transaction not begun yet, or SQLite: through SQLAlchemy
        await _writer(conn, items)
    else:
        await driver.executemany(
            "INSERT INTO job_runs (job, window_start, window_end, status, started_at) "
            "VALUES ($1, '2026-01-01', '2026-01-01', 'done', '2026-01-01')",
            [(str(item),) for item in items],
        )
    if any(str(item).startswith("fail") for item in items):
        raise ValueError("failed after its first statement")
    return [f"ok:{item}" for item in items]


async def _jobs(db: Database) -> set[str]:
    async with db.read_session() as session:
        return set((await session.execute(text("SELECT job FROM job_runs"))).scalars())


@pytest.mark.parametrize("hold", [None, False], ids=["held", "pooled"])
async def test_autocommit_kinds_skip_the_transaction(db: Database, hold: bool | None) -> None:
    """Held connections (PostgreSQL's default) or a pool checkout per group: the same."""
    committer = GroupCommitter(db, hold_connection=hold)
    committer.register("auto", _straight_then_check, autocommit=True)
    committer.register("auto-sqlalchemy", _two_statements, autocommit=True)
    committer.register("tx", _two_statements)
    committer.start()
    try:
        assert await committer.submit("auto", "a1") == "ok:a1"
        with pytest.raises(ValueError, match="first statement"):
            await committer.submit("auto", "fail-auto")
        with pytest.raises(ValueError, match="first statement"):
            await committer.submit("auto-sqlalchemy", "fail-auto-sqlalchemy")
        assert await committer.submit("auto-sqlalchemy", "s1") == "ok:s1"
        with pytest.raises(ValueError, match="first statement"):
            await committer.submit("tx", "fail-tx")
        # A mixed group runs in one transaction whatever its kinds.
        mixed = await asyncio.gather(committer.submit("auto", "m1"), committer.submit("tx", "m2"))
        assert mixed == ["ok:m1", "ok:m2"]
        assert await committer.submit("tx", "t1") == "ok:t1"
    finally:
        await committer.stop()
    stored = {"a1", "s1", "m1", "m2", "t1"}
    assert committer.autocommit_groups >= 2
    if db.dialect == "postgresql":
        # The autocommit kind's straight statement committed on its own; a statement sent
        # through SQLAlchemy in an autocommit group ran in a transaction (committed only when
        # the writer returned), as every statement of the transactional kind.
        assert await _jobs(db) == stored | {"fail-auto"}
    else:
        # SQLite has no straight statement but sqlite_run (below): the writer's statement went
        # through SQLAlchemy, in a transaction committed only when the writer returned.
        assert await _jobs(db) == stored


_JOB_SQL = (
    "INSERT INTO job_runs (job, window_start, window_end, status, started_at) "
    "VALUES (?, '2026-01-01', '2026-01-01', 'done', '2026-01-01')"
)


def _insert_jobs_then_check(db: sqlite3.Connection, items: list[Any]) -> list[Any]:
    db.executemany(_JOB_SQL, [(str(item),) for item in items])
    if any(str(item).startswith("fail") for item in items):
        raise ValueError("failed after its first statement")
    return [f"ok:{item}" for item in items]


async def _one_hop(conn: AsyncConnection, items: list[Any]) -> list[Any]:
    return await sqlite_run(conn, lambda db: _insert_jobs_then_check(db, items))


async def test_sqlite_autocommit_group_is_one_thread_hop(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: an autocommit group whose writer uses ``sqlite_run`` costs ONE call on
    aiosqlite's thread, BEGIN and COMMIT included (and no rollback when the connection goes back
    to the pool); a failure inside it rolls back everything it wrote."""
    import aiosqlite

    db = sqlite_db

    calls: list[str] = []
    execute = aiosqlite.Connection._execute

    async def counting(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await execute(self, fn, *args, **kwargs)

    committer = GroupCommitter(db)
    committer.register("hop", _one_hop, autocommit=True)
    committer.start()
    try:
        assert await committer.submit("hop", "h0") == "ok:h0"  # a first connection opens
        calls.clear()
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
        assert await asyncio.gather(*(committer.submit("hop", f"h{n}") for n in (1, 2, 3))) == [
            "ok:h1",
            "ok:h2",
            "ok:h3",
        ]
        groups = committer.groups_committed
        assert len(calls) == groups - 1  # one thread call per group, nothing else
        with pytest.raises(ValueError, match="first statement"):
            await committer.submit("hop", "fail-hop")
    finally:
        await committer.stop()
    assert await _jobs(db) == {"h0", "h1", "h2", "h3"}


async def test_sqlite_run_needs_a_transaction(sqlite_db: Database) -> None:
    """Outside a transaction and outside an autocommit group, sqlite_run refuses (sqlite3 would
    begin a transaction SQLAlchemy knows nothing of); inside one it joins it, so a rollback
    takes its statements back."""
    db = sqlite_db
    async with db.write_engine.connect() as conn:
        with pytest.raises(RuntimeError, match="outside a transaction"):
            await sqlite_run(conn, lambda c: _insert_jobs_then_check(c, ["x"]))
        await conn.begin()
        assert await sqlite_run(conn, lambda c: _insert_jobs_then_check(c, ["r1"])) == ["ok:r1"]
        await conn.rollback()
    async with db.connection() as conn:
        assert await sqlite_run(conn, lambda c: _insert_jobs_then_check(c, ["c1"])) == ["ok:c1"]
    assert await _jobs(db) == {"c1"}


async def test_a_kind_with_writers_of_its_own_has_its_own_lane(db: Database) -> None:
    """``register(..., writers=1, max_batch=4)``: the kind's items are written by its own writer,
    in groups of that kind only, of at most 4 items; on PostgreSQL they go on while the shared lane's writer is stuck (SQLite
    has one writer connection, which the stuck writer holds)."""
    committer = GroupCommitter(db, concurrency=2)
    gate = asyncio.Event()
    stuck = asyncio.Event()
    groups: list[tuple[str, list[Any]]] = []

    async def shared(conn: AsyncConnection, items: list[Any]) -> list[Any]:
        groups.append(("shared", list(items)))
        if "a0" in items:
            stuck.set()
            await gate.wait()
        return await _writer(conn, items)

    async def own(conn: AsyncConnection, items: list[Any]) -> list[Any]:
        groups.append(("own", list(items)))
        return await _writer(conn, items)

    committer.register("a", shared)
    committer.register("b", shared)
    with pytest.raises(ValueError):
        committer.register("lane", own, max_batch=4)  # a lane's cap needs a lane
    committer.register("lane", own, writers=1, max_batch=4)
    committer.start()
    try:
        assert sorted(t.get_name() for t in committer._tasks) == [
            "group-commit-lane-0",
            "group-commit-shared-0",
            "group-commit-shared-1",
        ]
        with pytest.raises(RuntimeError):
            committer.register("late", own, writers=1)
        if db.dialect == "sqlite":
            gate.set()
        blocked = [asyncio.create_task(committer.submit("a", "a0"))]
        await stuck.wait()
        blocked.append(asyncio.create_task(committer.submit("b", "b0")))
        lane = await asyncio.gather(*(committer.submit("lane", f"l{i}") for i in range(20)))
        assert lane == [f"ok:l{i}" for i in range(20)]
        if db.dialect == "postgresql":
            assert not blocked[0].done()  # the lane went on while the shared writer waited
        assert all(kind == "own" for kind, items in groups if any(i[0] == "l" for i in items))
        own_sizes = [len(items) for kind, items in groups if kind == "own"]
        assert sum(own_sizes) == 20 and max(own_sizes) == 4  # 20 queued at once, cut in fours
        gate.set()
        assert await asyncio.gather(*blocked) == ["ok:a0", "ok:b0"]
        assert committer.backlog == 0
        assert await _count(db) == 22
    finally:
        gate.set()
        await committer.stop()


async def test_app_writers_follow_settings(make_app: Any, db: Database) -> None:
    """GROUP_COMMIT_WRITERS sets the shared lane's writer tasks (default: 1 on SQLite, 2 on
    PostgreSQL); error events keep their own lane of one writer."""
    default = 1 if db.dialect == "sqlite" else 2
    for setting, shared in ((None, default), (3, 3)):
        async with make_app(group_commit_writers=setting) as client:
            names = sorted(t.get_name() for t in client.app.state.committer._tasks)
        assert names.count("group-commit-errors-0") == 1
        assert len([n for n in names if n.startswith("group-commit-shared-")]) == shared


async def test_sqlite_connection_returned_in_a_transaction_is_rolled_back(
    sqlite_db: Database,
) -> None:
    """SQLite's pool skips the rollback-on-return of a connection with no transaction open (a
    thread hop each time), but one given back inside a transaction SQLAlchemy did not begin
    (a statement sent straight to the driver) is still rolled back."""
    db = sqlite_db
    async with db.write_engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        await driver.execute(_JOB_SQL, ("straight",))
        assert driver.in_transaction
    async with db.write_engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        assert not driver.in_transaction
    assert await _jobs(db) == set()
