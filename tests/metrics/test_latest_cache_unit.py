"""Latest-value cache: newest by timestamp, in-process and on real Redis."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis

from gati.cache.latest import LatestCache, MemoryLatestCache, RedisLatestCache

REDIS_URL = "redis://127.0.0.1:6379/0"


async def check_newest_wins(cache: LatestCache) -> None:
    assert await cache.get(1, "cpu") is None
    await cache.update_many([(1, "cpu", 100.0, {"id": 1, "value": 1.0})])
    await cache.update_many(
        [
            (1, "cpu", 90.0, {"id": 2, "value": 2.0}),  # older timestamp: ignored
            (1, "mem", 95.0, {"id": 3, "value": 3.0}),
            (2, "cpu", 50.0, {"id": 4, "value": 4.0}),
        ]
    )
    assert await cache.get(1, "cpu") == {"id": 1, "value": 1.0}
    assert await cache.get(1, "mem") == {"id": 3, "value": 3.0}
    assert await cache.get(2, "cpu") == {"id": 4, "value": 4.0}
    # Within one batch the newest per name is kept; equal timestamps: the later write wins.
    await cache.update_many(
        [(1, "cpu", 120.0, {"id": 6, "value": 6.0}), (1, "cpu", 110.0, {"id": 5, "value": 5.0})]
    )
    assert await cache.get(1, "cpu") == {"id": 6, "value": 6.0}
    await cache.update_many([(1, "cpu", 120.0, {"id": 7, "value": 7.0})])
    assert await cache.get(1, "cpu") == {"id": 7, "value": 7.0}


async def test_memory_cache_newest_wins() -> None:
    await check_newest_wins(MemoryLatestCache())


async def test_memory_cache_is_bounded_lru() -> None:
    cache = MemoryLatestCache(max_entries=2)
    await cache.update_many([(1, "a", 1.0, {"v": 1}), (1, "b", 1.0, {"v": 2})])
    assert await cache.get(1, "a") == {"v": 1}  # touch a: b is now least recent
    await cache.update_many([(1, "c", 1.0, {"v": 3})])
    assert await cache.get(1, "b") is None
    assert await cache.get(1, "a") == {"v": 1}


@pytest.mark.redis
async def test_redis_cache_newest_wins_and_is_shared() -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    client = aioredis.Redis.from_url(REDIS_URL)
    other = aioredis.Redis.from_url(REDIS_URL)
    try:
        await check_newest_wins(RedisLatestCache(client, prefix=prefix))
        assert await RedisLatestCache(other, prefix=prefix).get(1, "cpu") == {"id": 7, "value": 7.0}
        await RedisLatestCache(other, prefix=prefix).forget_project(1)
        assert await RedisLatestCache(client, prefix=prefix).get(1, "cpu") is None
    finally:
        await client.delete(f"{prefix}latest:2", f"{prefix}latest_ts:2")
        await client.aclose()
        await other.aclose()


async def test_redis_cache_unreachable_is_a_miss() -> None:
    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        cache = RedisLatestCache(client)
        await cache.update_many([(1, "cpu", 1.0, {"v": 1})])  # logged, not raised
        assert await cache.get(1, "cpu") is None
    finally:
        await client.aclose()
