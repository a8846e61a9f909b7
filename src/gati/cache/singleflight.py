"""Single flight: concurrent lookups of one key share one run of the work.

When a cached entry that many requests use expires (an API key, a project's DSN key), every
request in flight misses at once; without this each would run the same database lookup (64 at
a time under a 64-connection benchmark, with a latency spike for all of them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from functools import partial
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._tasks: dict[K, asyncio.Task[V]] = {}

    async def run(self, key: K, work: Callable[[], Awaitable[V]]) -> V:
        """``await work()``, or the result (or exception) of the run already in flight for
        ``key``. The run is a task of its own, shielded from its waiters: a waiter that is
        cancelled (its client left) does not cancel it for the others."""
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(work())
            self._tasks[key] = task
            task.add_done_callback(partial(self._done, key))
        return await asyncio.shield(task)

    def _done(self, key: K, task: asyncio.Task[V]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not task.cancelled():
            task.exception()  # retrieved: the waiters raise it

    def forget(self) -> None:
        """Later calls start new runs (the runs in flight finish for their own waiters)."""
        self._tasks.clear()

    def __contains__(self, key: K) -> bool:
        return key in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)
