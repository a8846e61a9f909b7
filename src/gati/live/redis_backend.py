"""Redis pub/sub fan-out: a message published by any process reaches subscribers in all.

One Redis channel per topic (``<prefix>live:<topic>``). A process SUBSCRIBEs to a channel while
it has at least one local subscriber of that topic, so Redis only sends a process what it needs.
One listener task per process reads the pub/sub connection and hands messages to the hub; if the
connection drops, redis-py reconnects and re-subscribes, and the listener backs off and retries.
Messages published while a process is disconnected from Redis are not delivered to it (pub/sub
is at-most-once); clients that must not miss points re-read with ``GET /api/v1/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from gati.live.hub import DeliverFn

log = logging.getLogger(__name__)


class RedisBackend:
    name = "redis"

    def __init__(self, client: aioredis.Redis, *, prefix: str = "gati:") -> None:
        self._client = client
        self._channel_prefix = f"{prefix}live:"
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None
        self._deliver: DeliverFn | None = None
        self._lock = asyncio.Lock()
        self._has_subscriptions = asyncio.Event()

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "gati:") -> RedisBackend:
        return cls(aioredis.Redis.from_url(url), prefix=prefix)

    async def start(self, deliver: DeliverFn) -> None:
        self._deliver = deliver
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        self._listener = asyncio.create_task(self._listen(), name="gati-live-redis-listener")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None
        self._deliver = None

    async def publish(self, topic: str, data: bytes) -> None:
        await self._client.publish(self._channel_prefix + topic, data)

    async def topic_added(self, topic: str) -> None:
        assert self._pubsub is not None, "backend not started"
        async with self._lock:
            await self._pubsub.subscribe(self._channel_prefix + topic)
            self._has_subscriptions.set()

    async def topic_removed(self, topic: str) -> None:
        if self._pubsub is None:
            return
        async with self._lock:
            await self._pubsub.unsubscribe(self._channel_prefix + topic)

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(2):
                return bool(await self._client.ping())
        except Exception:
            return False

    async def _listen(self) -> None:
        assert self._pubsub is not None
        prefix_length = len(self._channel_prefix)
        backoff = 0.1
        while True:
            await self._has_subscriptions.wait()
            try:
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=1.0
                )
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost: redis-py reconnects on the next call
                log.warning("live: Redis pub/sub error (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if message is None or message.get("type") != "message":
                if not self._pubsub.subscribed:
                    self._has_subscriptions.clear()
                continue
            channel = message["channel"]
            if isinstance(channel, bytes):
                channel = channel.decode()
            data = message["data"]
            if isinstance(data, str):
                data = data.encode()
            if self._deliver is not None:
                self._deliver(channel[prefix_length:], data)
