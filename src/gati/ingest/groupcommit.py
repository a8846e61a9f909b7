"""Group commit: many single-event requests share one transaction.

A request calls ``await committer.submit(kind, item)``; a writer task takes everything queued,
hands each kind's items to its registered batch writer inside ONE transaction, commits, and only
then resolves the requests' futures. So an acknowledged item is committed, and the per-request
cost of a commit (an fsync on SQLite, a round trip + WAL flush on PostgreSQL) is shared.

If a group's transaction fails, it is retried in halves until the bad item is alone, so one bad
item cannot fail its neighbours. A full queue answers 503 with Retry-After at once.

Held connections (PostgreSQL, where the pool has connections for everyone else): a checkout
costs SQLAlchemy's pre-ping (BEGIN, a ping, ROLLBACK: three round trips), so a writer task keeps
its connection between groups and gives it back to the pool only after ``hold_idle_seconds``
(50 ms) without work, after a failed transaction, or when it is ``hold_seconds`` old. Under load
the gaps between groups are far shorter than 50 ms. A held connection the driver already knows
to be closed (the server ended it) is replaced before use; after a quiet moment a checkout's
pre-ping finds a live connection again.

Autocommit kinds (PostgreSQL): a writer whose statements are each safe to commit on their own
(typically ONE ``INSERT ... ON CONFLICT DO NOTHING RETURNING``, or idempotent upserts followed by
one insert) is registered ``autocommit=True``. A group made only of that kind then runs without
BEGIN and COMMIT: the writer's bulk statements go straight to asyncpg on the held connection,
outside any transaction (``gati.db.bulk.AUTOCOMMIT_DRIVER`` in the connection's ``info`` says
so), one round trip each, and without SQLAlchemy's isolation-level switching and commit
bookkeeping around them (~200 µs of client CPU per group). A statement the writer sends through
SQLAlchemy instead (a new series, a lookup of client ids) begins a transaction as usual, which
is committed after the writer returns. A statement is atomic by itself, so a failing group
still stored nothing of the failing statement, and the retry in halves is unchanged; the
futures are still resolved only after the statements returned, i.e. after their commit. On
SQLite the same flag lets ``gati.db.bulk.sqlite_run`` put BEGIN, the writer's statements and
COMMIT in ONE call on aiosqlite's thread: each call on that thread is a hop that, under load,
waits for a turn of the busy event loop, and a group of error events went from four hops
(insert, upsert, commit, the pool's rollback) to one. Groups that mix kinds run in one
transaction as before.

After-commit hooks: a kind may register ``after_commit(items, results)``, run once per committed
group (after COMMIT, before any of the group's requests is answered) for the side effects of the
whole group at once: a latest-value cache update, a live publish. One call per group instead of
one per request; the requests still answer only after their effects are applied. A hook's
failure is logged, never raised (the items are committed). It may return new results, which the
requests then receive instead of the writer's.

Batching: a writer takes the first queued item, then yields to the event loop while the queue
keeps growing (at most ``gather_yields`` times; requests already received get parsed and
queued meanwhile) before it writes: under load that makes groups several times larger for a
few microseconds of waiting, and an idle server still commits a lone item at once (no timer).

Lanes: kinds share one queue and ``concurrency`` writer tasks, unless a kind is registered with
``writers=N``: it then has a queue and N writer tasks of its own (and may cap its groups with
its own ``max_batch``). Two writers suit cheap statements (a round trip overlaps the other
group's); a heavy statement wants one writer, instead of a second writer taking the one or two
items just queued, and moderate groups: under load, while one group is in the database the
answers of the previous one go out and the next requests are parsed (a pipeline), where one
group of everything in flight left the event loop idle until the database was done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from gati.db.bulk import AUTOCOMMIT_DRIVER, raw_driver
from gati.db.engine import Database
from gati.exceptions import AppError

log = logging.getLogger(__name__)

BatchWriter = Callable[[AsyncConnection, list[Any]], Awaitable[list[Any]]]
"""Writes a list of items in the given transaction; returns one result per item, in order."""

AfterCommitHook = Callable[[list[Any], list[Any]], Awaitable[list[Any] | None]]
"""Runs after the group's commit with its items and results of one kind (see the docstring)."""


@dataclass
class _Lease:
    """A writer task's held connection (see the module docstring)."""

    conn: AsyncConnection | None = None
    since: float = 0.0
    driver: Any = None  # the driver's own connection under ``conn`` (asyncpg), once looked up

    async def release(self) -> None:
        conn, self.conn, self.driver = self.conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


async def _closed(conn: AsyncConnection) -> bool:
    """Whether the driver already knows the held connection is closed (asyncpg's ``is_closed``,
    a client-side flag; no round trip). Other drivers: never known, False."""
    raw = await conn.get_raw_connection()
    is_closed = getattr(raw.driver_connection, "is_closed", None)
    return bool(is_closed()) if callable(is_closed) else False


@dataclass
class _Lane:
    """A queue and the writer tasks that take groups of at most ``max_batch`` from it."""

    writers: int
    max_batch: int
    queue: asyncio.Queue[_Pending] = field(default_factory=asyncio.Queue)


@dataclass
class _Pending:
    kind: str
    item: Any
    future: asyncio.Future[Any] = field(repr=False)


class GroupCommitter:
    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 2000,
        queue_limit: int = 20000,
        concurrency: int = 1,
        gather_yields: int = 4,
        hold_connection: bool | None = None,
        hold_seconds: float = 10.0,
        hold_idle_seconds: float = 0.05,
    ) -> None:
        self.db = db
        self.max_batch = max_batch
        self.gather_yields = gather_yields
        if hold_connection is None:  # only when other writers have connections left
            pool_size = getattr(db.write_engine.pool, "size", lambda: 1)()
            hold_connection = pool_size > 1
        self.hold_connection = hold_connection
        self.hold_seconds = hold_seconds
        self.hold_idle_seconds = hold_idle_seconds
        self.connections_opened = 0  # lease checkouts (each one a pool checkout + pre-ping)
        self.queue_limit = queue_limit
        self.concurrency = concurrency
        self._writers: dict[str, BatchWriter] = {}
        self._hooks: dict[str, AfterCommitHook] = {}
        self._autocommit_kinds: set[str] = set()
        self.autocommit_groups = 0
        # The shared lane, and the lanes of kinds registered with ``writers=`` (see register).
        self._shared = _Lane(concurrency, max_batch)
        self._lanes: dict[str, _Lane] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.groups_committed = 0
        self.items_committed = 0

    def register(
        self,
        kind: str,
        writer: BatchWriter,
        *,
        after_commit: AfterCommitHook | None = None,
        autocommit: bool = False,
        writers: int | None = None,
        max_batch: int | None = None,
    ) -> None:
        """``autocommit``: every statement the writer runs may commit on its own (see the
        module docstring); only then may its groups skip BEGIN/COMMIT on PostgreSQL.

        ``writers``: the kind gets a lane of its own, a queue and that many writer tasks, so its
        groups never mix with other kinds and its group sizes follow its own statement's cost.
        For a kind whose group statement is heavy (error events: kilobytes of payload and an
        issue upsert per fingerprint), one writer makes fewer, larger groups; a second writer
        of the shared lane kept taking groups of one or two items, each paying for a whole
        statement (docs/benchmarks.md). ``max_batch`` (with ``writers``): the lane's largest
        group. A smaller one pipelines under load: while a group is in the database, the
        answers of the one before go out and their clients' next requests are parsed, where one
        big group kept the event loop waiting for the database with nothing to do. Register
        before ``start``."""
        if self._tasks:
            raise RuntimeError("register writers before GroupCommitter.start()")
        self._writers[kind] = writer
        if writers is not None:
            self._lanes[kind] = _Lane(writers, max_batch or self.max_batch)
        elif max_batch is not None:
            raise ValueError("max_batch is a lane's: give writers too")
        if after_commit is not None:
            self._hooks[kind] = after_commit
        if autocommit:
            self._autocommit_kinds.add(kind)

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(lane), name=f"group-commit-{name}-{i}")
                for name, lane in (("shared", self._shared), *self._lanes.items())
                for i in range(lane.writers)
            ]

    async def stop(self) -> None:
        # Let queued work finish, then stop the writer tasks.
        if self._tasks:
            for lane in (self._shared, *self._lanes.values()):
                await lane.queue.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    @property
    def backlog(self) -> int:
        return sum(lane.queue.qsize() for lane in (self._shared, *self._lanes.values()))

    async def submit(self, kind: str, item: Any) -> Any:
        if kind not in self._writers:
            raise KeyError(f"no batch writer registered for {kind!r}")
        if not self._tasks:
            raise RuntimeError("GroupCommitter.start() was not called")
        queue = self._lanes.get(kind, self._shared).queue
        if queue.qsize() >= self.queue_limit:  # per lane
            raise AppError(
                503,
                "overloaded",
                "The ingestion queue is full; retry after the delay in Retry-After",
                headers={"Retry-After": "1"},
            )
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        queue.put_nowait(_Pending(kind, item, future))
        # Not shielded: if the request is cancelled (client gone), the future is cancelled but
        # the item stays queued and is still written; resolving skips done futures.
        return await future

    async def _run(self, lane: _Lane) -> None:
        queue, max_batch = lane.queue, lane.max_batch
        lease = _Lease() if self.hold_connection else None
        try:
            while True:
                if lease is not None and lease.conn is not None and queue.empty():
                    # Idle with a held connection: keep it for the next group unless nothing
                    # comes for hold_idle_seconds (then it goes back to the pool).
                    try:
                        async with asyncio.timeout(self.hold_idle_seconds):
                            first = await queue.get()
                    except TimeoutError:
                        await lease.release()
                        first = await queue.get()
                else:
                    first = await queue.get()
                batch = [first]
                for _ in range(self.gather_yields):
                    if len(batch) + queue.qsize() >= max_batch:
                        break
                    seen = queue.qsize()
                    await asyncio.sleep(0)  # let requests that are ready queue their items
                    if queue.qsize() == seen:
                        break
                while len(batch) < max_batch and not queue.empty():
                    batch.append(queue.get_nowait())
                try:
                    await self._write(batch, lease)
                finally:
                    for _ in batch:
                        queue.task_done()
                if (
                    lease is not None
                    and lease.conn is not None
                    and time.monotonic() - lease.since > self.hold_seconds
                ):
                    await lease.release()  # a fresh one now and then (pool recycling, health)
        finally:
            if lease is not None:
                await lease.release()

    async def _write(self, batch: list[_Pending], lease: _Lease | None = None) -> None:
        """Commit the group; if it fails, split it in halves and retry each (a bad item ends up
        alone and fails alone, in O(log n) extra transactions)."""
        try:
            results = await self._transaction(batch, lease)
        except Exception as exc:
            if len(batch) == 1:
                self._fail(batch[0], exc)
                return
            log.warning("group commit of %d items failed (%s); retrying in halves", len(batch), exc)
            middle = len(batch) // 2
            await self._write(batch[:middle], lease)
            await self._write(batch[middle:], lease)
            return
        self.groups_committed += 1
        self.items_committed += len(batch)
        if self._hooks:
            results = await self._after_commit(batch, results)
        for pending, result in zip(batch, results, strict=True):
            self._resolve(pending, result)

    def _autocommit(self, batch: list[_Pending]) -> bool:
        """One kind, registered ``autocommit=True`` (see the module docstring)."""
        if not self._autocommit_kinds:
            return False
        kind = batch[0].kind
        return kind in self._autocommit_kinds and all(p.kind == kind for p in batch)

    async def _transaction(self, batch: list[_Pending], lease: _Lease | None = None) -> list[Any]:
        autocommit = self._autocommit(batch)
        if lease is None:
            if autocommit:
                async with self.db.write_engine.connect() as conn:
                    return await self._autocommit_group(conn, await raw_driver(conn), batch)
            async with self.db.connection() as conn:
                return await self._write_kinds(conn, batch)
        if lease.conn is not None and (
            lease.driver.is_closed() if lease.driver is not None else await _closed(lease.conn)
        ):
            # The server ended it while it was held (restart, pg_terminate_backend): the driver
            # knows without a round trip. A fresh one instead of failing this group.
            await lease.release()
        if lease.conn is None:
            lease.conn = await self.db.write_engine.connect()
            lease.since = time.monotonic()
            self.connections_opened += 1
        conn = lease.conn
        try:
            if autocommit:
                # The writer's statements go straight to asyncpg, outside any transaction, so
                # each commits on its own (bulk._driver_in_transaction reads the flag below).
                # One the writer sends through SQLAlchemy instead (a rare series upsert) begins
                # a transaction, committed here. No isolation-level switching: SQLAlchemy's
                # execution_options and commit calls cost more client CPU than the insert.
                if lease.driver is None:
                    lease.driver = await raw_driver(conn)
                return await self._autocommit_group(conn, lease.driver, batch)
            async with conn.begin():
                return await self._write_kinds(conn, batch)
        except BaseException:
            await lease.release()  # rolled back; a fresh connection from the pool next time
            raise

    async def _autocommit_group(
        self, conn: AsyncConnection, driver: Any, batch: list[_Pending]
    ) -> list[Any]:
        """The writer's statements go straight to the driver outside any transaction (the flag
        below says so to gati.db.bulk): on PostgreSQL each commits on its own; on SQLite each
        ``sqlite_run`` is one thread hop from BEGIN to COMMIT. One the writer sends through
        SQLAlchemy instead (a rare series upsert, a lookup) begins a transaction, committed
        here."""
        conn.info[AUTOCOMMIT_DRIVER] = driver
        try:
            results = await self._write_kinds(conn, batch)
        finally:
            del conn.info[AUTOCOMMIT_DRIVER]
        if conn.in_transaction():
            await conn.commit()
        self.autocommit_groups += 1
        return results

    async def _after_commit(self, batch: list[_Pending], results: list[Any]) -> list[Any]:
        by_kind: dict[str, list[int]] = {}
        for index, pending in enumerate(batch):
            if pending.kind in self._hooks:
                by_kind.setdefault(pending.kind, []).append(index)
        for kind, indexes in by_kind.items():
            try:
                replaced = await self._hooks[kind](
                    [batch[i].item for i in indexes], [results[i] for i in indexes]
                )
            except Exception:
                log.exception("after-commit hook of %r failed (the items are committed)", kind)
                continue
            if replaced is not None:
                if len(replaced) != len(indexes):
                    log.error("after-commit hook of %r returned the wrong number of results", kind)
                    continue
                for i, result in zip(indexes, replaced, strict=True):
                    results[i] = result
        return results

    async def _write_kinds(self, conn: AsyncConnection, batch: list[_Pending]) -> list[Any]:
        by_kind: dict[str, list[int]] = {}
        for index, pending in enumerate(batch):
            by_kind.setdefault(pending.kind, []).append(index)
        results: list[Any] = [None] * len(batch)
        for kind, indexes in by_kind.items():
            out = await self._writers[kind](conn, [batch[i].item for i in indexes])
            if len(out) != len(indexes):
                raise RuntimeError(
                    f"batch writer {kind!r} returned {len(out)} results for {len(indexes)} items"
                )
            for i, result in zip(indexes, out, strict=True):
                results[i] = result
        return results

    @staticmethod
    def _resolve(pending: _Pending, result: Any) -> None:
        if not pending.future.done():
            pending.future.set_result(result)

    @staticmethod
    def _fail(pending: _Pending, exc: BaseException) -> None:
        if not pending.future.done():
            pending.future.set_exception(exc)
