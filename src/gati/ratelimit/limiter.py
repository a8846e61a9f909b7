"""Rate limits with GCRA (the generic cell rate algorithm, a token bucket without a refill timer).

A limit is ``rate`` requests per second with a ``burst``: from idle, ``burst`` requests pass at
once, then one every ``1/rate`` seconds. The only state per key is one number, the theoretical
arrival time (TAT), so a check is one atomic read-modify-write:

* :class:`MemoryRateLimiter`: a dict in this process (single-process deployments).
* :class:`RedisRateLimiter`: a Lua script on Redis (atomic, clock from Redis ``TIME`` so that
  server processes with skewed clocks agree); the key expires when the bucket is full again.

A refused request gets ``retry_after`` seconds: the wait after which the same request passes.
If Redis is unreachable the limiter lets requests through (fail open) and logs it: rate limits
protect the service; they must not take ingestion down with Redis.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

_PERIODS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
}
_SPEC = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*/\s*([a-z]+)\s*(?:(?:;|,)\s*burst\s*=\s*(\d+)\s*)?$", re.I
)


@dataclass(frozen=True, slots=True)
class RateLimit:
    rate: float  # requests per second
    burst: int

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")

    @property
    def interval(self) -> float:
        return 1.0 / self.rate

    @classmethod
    def parse(cls, spec: str) -> RateLimit:
        """``"100/second"``, ``"6000/minute"``, ``"10/s;burst=50"`` (burst defaults to the count
        per period, at least 1)."""
        match = _SPEC.match(spec)
        if not match or match.group(2).lower() not in _PERIODS:
            raise ValueError(f"invalid rate limit {spec!r}; use COUNT/second|minute|hour[;burst=N]")
        count = float(match.group(1))
        period = _PERIODS[match.group(2).lower()]
        burst = int(match.group(3)) if match.group(3) else max(int(count), 1)
        return cls(rate=count / period, burst=burst)


class RateDecision(NamedTuple):  # a tuple: built on every request, cheaper than a dataclass
    allowed: bool
    retry_after: float  # seconds until this request would be allowed (0 when allowed)
    remaining: int  # requests that would still pass right now
    limit: int  # the burst

    @property
    def retry_after_header(self) -> str:
        """``Retry-After`` is whole seconds; round up so that a client never retries too early."""
        return str(max(math.ceil(self.retry_after), 1))


class RateLimiter(Protocol):
    backend: str

    async def hit(self, key: str, limit: RateLimit, *, cost: int = 1) -> RateDecision: ...


_EPSILON = 1e-9


def _decide(tat: float, now: float, limit: RateLimit, cost: int) -> tuple[RateDecision, float]:
    tolerance = limit.interval * limit.burst
    tat = max(tat, now)
    new_tat = tat + limit.interval * cost
    allow_at = new_tat - tolerance
    # Compared as a difference from now, with a little slack: (now + x) - x can round to just
    # above now, which would refuse a request that exactly fits the burst (a fresh key's first).
    if (tat - now) + limit.interval * cost > tolerance + _EPSILON:
        remaining = int((tolerance - (tat - now)) / limit.interval + 1e-9)
        return RateDecision(False, allow_at - now, max(remaining, 0), limit.burst), tat
    remaining = int((tolerance - (new_tat - now)) / limit.interval + 1e-9)
    return RateDecision(True, 0.0, max(remaining, 0), limit.burst), new_tat


class MemoryRateLimiter:
    backend = "memory"

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self._clock = clock
        self._tat: dict[str, float] = {}
        self._max_keys = max_keys

    async def hit(self, key: str, limit: RateLimit, *, cost: int = 1) -> RateDecision:
        now = self._clock()
        decision, tat = _decide(self._tat.get(key, now), now, limit, cost)
        self._tat[key] = tat
        if len(self._tat) > self._max_keys:
            self._prune(now)
        return decision

    def refusal(self, key: str, limit: RateLimit) -> RateDecision | None:
        """:meth:`hit` with a cost of 1, answered without awaiting and without building a
        decision when the request is allowed (None): the check every ingest request makes.
        Same GCRA state and arithmetic as :func:`_decide`."""
        now = self._clock()
        tat = self._tat.get(key, now)
        if tat < now:
            tat = now
        if (tat - now) + limit.interval > limit.interval * limit.burst + _EPSILON:
            return _decide(tat, now, limit, 1)[0]
        self._tat[key] = tat + limit.interval
        if len(self._tat) > self._max_keys:
            self._prune(now)
        return None

    def _prune(self, now: float) -> None:
        """Forget keys whose bucket is full again (TAT in the past): same answer as no entry."""
        for key in [key for key, tat in self._tat.items() if tat <= now]:
            del self._tat[key]
        while len(self._tat) > self._max_keys:  # still too many: forget the oldest entries
            self._tat.pop(next(iter(self._tat)))


_GCRA_LUA = """
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - tolerance
if (tat - now) + interval * cost > tolerance + 1e-9 then
  return {0, tostring(allow_at - now), tostring(tolerance - (tat - now))}
end
local ttl_ms = math.ceil((new_tat - now) * 1000) + 1
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', ttl_ms)
return {1, '0', tostring(tolerance - (new_tat - now))}
"""


class RedisRateLimiter:
    backend = "redis"

    def __init__(self, client: aioredis.Redis, *, prefix: str = "gati:") -> None:
        self._client = client
        self._prefix = f"{prefix}rl:"
        self._script = client.register_script(_GCRA_LUA)

    async def hit(self, key: str, limit: RateLimit, *, cost: int = 1) -> RateDecision:
        try:
            allowed, retry_after, slack = await self._script(
                keys=[self._prefix + key],
                args=[repr(limit.interval), repr(limit.interval * limit.burst), cost],
            )
        except Exception as exc:
            log.warning("rate limit: Redis unavailable (%s); allowing the request", exc)
            return RateDecision(True, 0.0, limit.burst, limit.burst)
        remaining = max(int(float(slack) / limit.interval + 1e-9), 0)
        return RateDecision(bool(int(allowed)), float(retry_after), remaining, limit.burst)
