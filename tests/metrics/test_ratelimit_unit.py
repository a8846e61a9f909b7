"""GCRA rate limits: in-process with a fake clock, and on real Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from gati.ratelimit.limiter import MemoryRateLimiter, RateLimit, RedisRateLimiter

REDIS_URL = "redis://127.0.0.1:6379/0"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_parse_specs() -> None:
    assert RateLimit.parse("100/second") == RateLimit(rate=100, burst=100)
    assert RateLimit.parse("6000/minute") == RateLimit(rate=100, burst=6000)
    assert RateLimit.parse("10/s;burst=50") == RateLimit(rate=10, burst=50)
    with pytest.raises(ValueError, match="fortnight"):
        RateLimit.parse("5/fortnight")
    with pytest.raises(ValueError):
        RateLimit(rate=0, burst=1)


async def test_memory_burst_then_steady_rate_and_retry_after() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    limit = RateLimit(rate=2, burst=3)  # one every 0.5 s, 3 at once
    decisions = [await limiter.hit("user:1", limit) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    assert decisions[3].retry_after == pytest.approx(0.5)
    assert decisions[3].retry_after_header == "1"
    clock.now += 0.49
    assert not (await limiter.hit("user:1", limit)).allowed
    clock.now += 0.02
    assert (await limiter.hit("user:1", limit)).allowed
    # Another key has its own bucket.
    assert (await limiter.hit("user:2", limit)).allowed
    # After idling, the full burst is back.
    clock.now += 10
    assert all([(await limiter.hit("user:1", limit)).allowed for _ in range(3)])


async def test_memory_refused_requests_do_not_consume() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    limit = RateLimit(rate=1, burst=1)
    assert (await limiter.hit("k", limit)).allowed
    for _ in range(50):
        assert not (await limiter.hit("k", limit)).allowed
    clock.now += 1.0
    assert (await limiter.hit("k", limit)).allowed


async def test_memory_refusal_agrees_with_hit() -> None:
    """``refusal`` (the ingest routes' synchronous check) makes the same decisions and leaves
    the same state as ``hit``, refusals included, along an irregular sequence of requests."""
    clock_a, clock_b = FakeClock(), FakeClock()
    by_hit, by_refusal = MemoryRateLimiter(clock=clock_a), MemoryRateLimiter(clock=clock_b)
    limit = RateLimit(rate=4, burst=3)
    steps = [0.0, 0.0, 0.0, 0.0, 0.1, 0.2, 0.05, 0.3, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.26]
    outcomes = []
    for step in steps:
        clock_a.now += step
        clock_b.now += step
        decision = await by_hit.hit("k", limit)
        refused = by_refusal.refusal("k", limit)
        assert (refused is None) == decision.allowed
        if refused is not None:
            assert refused == decision
        assert by_refusal._tat == by_hit._tat
        outcomes.append(decision.allowed)
    assert True in outcomes and False in outcomes


async def test_memory_prunes_full_buckets() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock, max_keys=10)
    limit = RateLimit(rate=100, burst=5)
    for i in range(10):
        await limiter.hit(f"k{i}", limit)
    clock.now += 1
    await limiter.hit("k-new", limit)
    assert len(limiter._tat) == 1


@pytest.mark.redis
async def test_redis_limit_is_shared_between_clients() -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    client_a = aioredis.Redis.from_url(REDIS_URL)
    client_b = aioredis.Redis.from_url(REDIS_URL)
    try:
        a, b = RedisRateLimiter(client_a, prefix=prefix), RedisRateLimiter(client_b, prefix=prefix)
        limit = RateLimit(rate=1, burst=4)
        results = [await (a if i % 2 else b).hit("key:9", limit) for i in range(5)]
        assert [r.allowed for r in results] == [True, True, True, True, False]
        assert 0 < results[4].retry_after <= 1.0
        assert results[4].retry_after_header == "1"
        ttl = await client_a.pttl(f"{prefix}rl:key:9")
        assert 0 < ttl <= 4001
        assert (await a.hit("key:other", limit)).allowed
    finally:
        await client_a.aclose()
        await client_b.aclose()


@pytest.mark.redis
async def test_redis_refill_after_wait() -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        limiter = RedisRateLimiter(client, prefix=prefix)
        limit = RateLimit(rate=20, burst=1)  # one every 50 ms
        assert (await limiter.hit("k", limit)).allowed
        refused = await limiter.hit("k", limit)
        assert not refused.allowed
        await asyncio.sleep(refused.retry_after + 0.01)  # waiting out retry_after is the contract
        assert (await limiter.hit("k", limit)).allowed
    finally:
        await client.aclose()


async def test_redis_unreachable_fails_open() -> None:
    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        decision = await RedisRateLimiter(client).hit("k", RateLimit(rate=1, burst=1))
        assert decision.allowed
    finally:
        await client.aclose()


@pytest.mark.parametrize("spec", ["1/minute", "3/hour", "10/second;burst=1"])
async def test_a_fresh_key_always_gets_its_burst_whatever_the_clock(spec: str) -> None:
    """(now + x) - x can round above now: a full burst must still be allowed at any clock."""
    clock = FakeClock()
    limit = RateLimit.parse(spec)
    refused = []
    for step in range(2000):
        clock.now = 1000.0 + step / 1000
        limiter = MemoryRateLimiter(clock=clock)
        decisions = [await limiter.hit("k", limit) for _ in range(limit.burst)]
        if not all(d.allowed for d in decisions):
            refused.append(clock.now)
    assert refused == []
