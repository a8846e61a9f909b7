"""A coroutine run every few seconds inside a server process until the process stops."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


class PeriodicTask:
    """Calls :meth:`tick` every ``every`` seconds (after a first wait of ``delay``). A failing tick
    is logged and the next one runs as planned: the database may be away for a while."""

    name = "periodic task"

    def __init__(self, *, every: float, delay: float = 0.0) -> None:
        self.every = every
        self.delay = delay
        self._task: asyncio.Task[None] | None = None

    async def tick(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def _loop(self) -> None:
        await asyncio.sleep(self.delay)
        while True:
            try:
                await self.tick()
            except Exception:
                log.warning("%s failed", self.name, exc_info=True)
            await asyncio.sleep(self.every)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
