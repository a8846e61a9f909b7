"""Shared real-time services of one server process: Redis client, live hub, latest-value cache
and rate limiter. Built by a start-up hook; in-process equivalents when REDIS_URL is unset."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI, Request

from gati.cache.latest import LatestCache, MemoryLatestCache, RedisLatestCache
from gati.live.hub import InProcessBackend, LiveHub
from gati.live.redis_backend import RedisBackend
from gati.ratelimit.limiter import MemoryRateLimiter, RateLimit, RateLimiter, RedisRateLimiter
from gati.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Realtime:
    hub: LiveHub
    latest: LatestCache
    limiter: RateLimiter
    ingest_limit: RateLimit
    read_limit: RateLimit
    rate_limits_enabled: bool
    redis: aioredis.Redis | None = None


def build_realtime(settings: Settings) -> Realtime:
    ingest_limit = RateLimit.parse(settings.rate_limit_ingest)
    read_limit = RateLimit.parse(settings.rate_limit_read)
    if settings.redis_url:
        client = aioredis.Redis.from_url(
            settings.redis_url, socket_connect_timeout=3, health_check_interval=30
        )
        prefix = settings.redis_prefix
        return Realtime(
            hub=LiveHub(RedisBackend(client, prefix=prefix), outbox_size=settings.live_queue_size),
            latest=RedisLatestCache(client, prefix=prefix),
            limiter=RedisRateLimiter(client, prefix=prefix),
            ingest_limit=ingest_limit,
            read_limit=read_limit,
            rate_limits_enabled=settings.rate_limit_enabled,
            redis=client,
        )
    return Realtime(
        hub=LiveHub(InProcessBackend(), outbox_size=settings.live_queue_size),
        latest=MemoryLatestCache(),
        limiter=MemoryRateLimiter(),
        ingest_limit=ingest_limit,
        read_limit=read_limit,
        rate_limits_enabled=settings.rate_limit_enabled,
    )


async def _redis_ok(app: Any) -> bool:
    realtime: Realtime = app.state.realtime
    return await realtime.hub.backend.ping()


async def startup(app: FastAPI) -> None:
    realtime = build_realtime(app.state.settings)
    app.state.realtime = realtime
    await realtime.hub.start()
    if realtime.redis is not None:
        app.state.health_checks["redis"] = _redis_ok


async def shutdown(app: FastAPI) -> None:
    realtime: Realtime | None = getattr(app.state, "realtime", None)
    if realtime is None:
        return
    await realtime.hub.stop()
    if realtime.redis is not None:
        with contextlib.suppress(Exception):
            await realtime.redis.aclose()


def get_realtime(request: Request) -> Realtime:
    realtime: Realtime = request.app.state.realtime
    return realtime
