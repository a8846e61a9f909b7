"""Live updates: topics, per-connection bounded outboxes, and a pluggable fan-out backend.

* A **topic** names what a client can subscribe to: :func:`metric_topic` ``(project, metric
  name)`` and :func:`events_topic` ``(project)``. Authorisation (may this user read that
  project?) is checked by the caller before :meth:`LiveHub.subscribe`.
* Each connection has an **outbox**: a bounded queue (``maxsize`` messages). Publishing never
  waits for a subscriber: when the outbox is full the *oldest* message is dropped and counted;
  before the next message the client receives ``{"type": "dropped", "count": N}`` so that it
  knows it missed N messages (and may re-read with ``GET /api/v1/metrics``). Memory per slow
  client is therefore bounded by ``maxsize`` messages.
* The **backend** moves a published message to every process that has subscribers:
  :class:`InProcessBackend` (one process) or :class:`gati.live.redis_backend.RedisBackend`
  (Redis pub/sub, one channel per topic, subscribed while the process has local subscribers).
* Publishing is called by services only **after commit** (through the request's after-commit
  buffer), never before and never on rollback.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable
from typing import Any, Protocol

import orjson

log = logging.getLogger(__name__)

DEFAULT_OUTBOX_SIZE = 1000


def metric_topic(project_id: int, name: str) -> str:
    return f"metric:{project_id}:{name}"


def events_topic(project_id: int) -> str:
    return f"events:{project_id}"


class Outbox:
    """One connection's bounded queue of serialized messages (drop-oldest)."""

    __slots__ = (
        "_closed",
        "_items",
        "_unreported_drops",
        "_waiter",
        "dropped_total",
        "maxsize",
        "topics",
    )

    def __init__(self, maxsize: int = DEFAULT_OUTBOX_SIZE) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self.topics: set[str] = set()
        self.dropped_total = 0
        self._unreported_drops = 0
        self._items: deque[str] = deque()
        # The writer waiting for a message (a bare future: cheaper than an asyncio.Event, and a
        # fan-out wakes one per subscriber).
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def offer(self, message: str) -> None:
        """Enqueue without ever blocking; drops the oldest message when full."""
        if self._closed:
            return
        items = self._items
        if len(items) >= self.maxsize:
            items.popleft()
            self.dropped_total += 1
            self._unreported_drops += 1
        items.append(message)
        if self._waiter is not None:
            self._wake()

    async def get(self) -> str | None:
        """The next message (a ``dropped`` notice first if messages were lost); None when closed."""
        while not self._items and not self._closed:
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None
        if self._closed and not self._items:
            return None
        if self._unreported_drops:
            count, self._unreported_drops = self._unreported_drops, 0
            return orjson.dumps({"type": "dropped", "count": count}).decode()
        return self._items.popleft()

    def close(self) -> None:
        self._closed = True
        self._items.clear()
        self._wake()


class LiveBackend(Protocol):
    async def start(self, deliver: DeliverFn) -> None: ...
    async def stop(self) -> None: ...
    async def publish(self, topic: str, data: bytes) -> None: ...
    async def topic_added(self, topic: str) -> None: ...
    async def topic_removed(self, topic: str) -> None: ...
    async def ping(self) -> bool: ...


class DeliverFn(Protocol):
    def __call__(self, topic: str, data: bytes) -> None: ...


class InProcessBackend:
    """Fan-out inside one process."""

    name = "memory"

    def __init__(self) -> None:
        self._deliver: DeliverFn | None = None

    async def start(self, deliver: DeliverFn) -> None:
        self._deliver = deliver

    async def stop(self) -> None:
        self._deliver = None

    async def publish(self, topic: str, data: bytes) -> None:
        if self._deliver is not None:
            self._deliver(topic, data)

    async def topic_added(self, topic: str) -> None:
        return None

    async def topic_removed(self, topic: str) -> None:
        return None

    async def ping(self) -> bool:
        return True


class LiveHub:
    """Local subscribers by topic, and the backend that brings messages to this process."""

    def __init__(
        self, backend: LiveBackend | None = None, *, outbox_size: int = DEFAULT_OUTBOX_SIZE
    ) -> None:
        self.backend: LiveBackend = backend or InProcessBackend()
        self.outbox_size = outbox_size
        self._subscribers: dict[str, set[Outbox]] = {}
        self._connections: set[Outbox] = set()
        self._started = False

    async def start(self) -> None:
        if not self._started:
            await self.backend.start(self._deliver)
            self._started = True

    async def stop(self) -> None:
        for outbox in list(self._connections):
            outbox.close()
        self._connections.clear()
        self._subscribers.clear()
        if self._started:
            await self.backend.stop()
            self._started = False

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def connect(self, *, outbox_size: int | None = None) -> Outbox:
        outbox = Outbox(outbox_size or self.outbox_size)
        self._connections.add(outbox)
        return outbox

    async def subscribe(self, outbox: Outbox, topics: Iterable[str]) -> None:
        for topic in topics:
            if topic in outbox.topics:
                continue
            outbox.topics.add(topic)
            subscribers = self._subscribers.setdefault(topic, set())
            subscribers.add(outbox)
            if len(subscribers) == 1:
                await self.backend.topic_added(topic)

    async def unsubscribe(self, outbox: Outbox, topics: Iterable[str]) -> None:
        for topic in list(topics):
            if topic not in outbox.topics:
                continue
            outbox.topics.discard(topic)
            subscribers = self._subscribers.get(topic)
            if subscribers is None:
                continue
            subscribers.discard(outbox)
            if not subscribers:
                del self._subscribers[topic]
                await self.backend.topic_removed(topic)

    async def disconnect(self, outbox: Outbox) -> None:
        await self.unsubscribe(outbox, list(outbox.topics))
        self._connections.discard(outbox)
        outbox.close()

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        """Send ``message`` to every subscriber of ``topic`` in every process. Call after commit.

        Serialised once here, whatever the number of subscribers; with the in-process backend
        a topic nobody subscribes to costs nothing (no serialisation)."""
        if type(self.backend) is InProcessBackend and topic not in self._subscribers:
            return
        await self.backend.publish(topic, orjson.dumps(message))

    async def publish_many(self, items: Iterable[tuple[str, dict[str, Any]]]) -> None:
        for topic, message in items:
            await self.publish(topic, message)

    def _deliver(self, topic: str, data: bytes) -> None:
        subscribers = self._subscribers.get(topic)
        if not subscribers:
            return
        text = data.decode()
        for outbox in subscribers:
            outbox.offer(text)

    def subscriber_count(self, topic: str) -> int:
        return len(self._subscribers.get(topic, ()))
