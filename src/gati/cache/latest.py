"""Latest-value cache: the newest metric point per (project, metric name).

Updated by the metrics service *after commit*; read by ``GET /api/v1/metrics/latest/{name}``.
"Newest" is by point timestamp, not by arrival: a late point with an older timestamp does not
replace a newer one (ties: the later write wins). The cache is an accelerator only: a miss
(evicted, Redis restarted, Redis down) falls back to the database, which then refills it.

* :class:`MemoryLatestCache`: an LRU dict in this process (bounded by ``max_entries``).
* :class:`RedisLatestCache`: one Redis hash per project (``<prefix>latest:<project>`` holds the
  point JSON, ``<prefix>latest_ts:<project>`` its timestamp), compare-and-set in a Lua script so
  that concurrent writers from several processes cannot put an older point back.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis

log = logging.getLogger(__name__)

CachedPoint = dict[str, Any]


class LatestCache(Protocol):
    backend: str

    async def get(self, project_id: int, name: str) -> CachedPoint | None: ...

    async def update_many(self, items: Iterable[tuple[int, str, float, CachedPoint]]) -> None:
        """``(project_id, name, timestamp_seconds, point)``; keeps the newest per name."""
        ...


def newest_per_name(
    items: Iterable[tuple[int, str, float, CachedPoint]],
) -> dict[tuple[int, str], tuple[float, CachedPoint]]:
    best: dict[tuple[int, str], tuple[float, CachedPoint]] = {}
    for project_id, name, ts, point in items:
        key = (project_id, name)
        current = best.get(key)
        if current is None or ts >= current[0]:
            best[key] = (ts, point)
    return best


class MemoryLatestCache:
    backend = "memory"

    def __init__(self, *, max_entries: int = 100_000) -> None:
        self._entries: OrderedDict[tuple[int, str], tuple[float, CachedPoint]] = OrderedDict()
        self._max_entries = max_entries

    async def get(self, project_id: int, name: str) -> CachedPoint | None:
        entry = self._entries.get((project_id, name))
        if entry is None:
            return None
        self._entries.move_to_end((project_id, name))
        return entry[1]

    async def update_many(self, items: Iterable[tuple[int, str, float, CachedPoint]]) -> None:
        for key, (ts, point) in newest_per_name(items).items():
            current = self._entries.get(key)
            if current is None or ts >= current[0]:
                self._entries[key] = (ts, point)
            self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    async def forget_project(self, project_id: int) -> None:
        for key in [key for key in self._entries if key[0] == project_id]:
            del self._entries[key]


_SET_IF_NEWER = """
local current = redis.call('HGET', KEYS[2], ARGV[1])
if current and tonumber(current) > tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""


class RedisLatestCache:
    backend = "redis"

    def __init__(self, client: aioredis.Redis, *, prefix: str = "gati:") -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_SET_IF_NEWER)

    def _keys(self, project_id: int) -> list[str]:
        return [f"{self._prefix}latest:{project_id}", f"{self._prefix}latest_ts:{project_id}"]

    async def get(self, project_id: int, name: str) -> CachedPoint | None:
        try:
            raw = await self._client.hget(self._keys(project_id)[0], name)
        except Exception as exc:
            log.warning("latest cache: Redis unavailable (%s); reading the database", exc)
            return None
        return None if raw is None else orjson.loads(raw)

    async def update_many(self, items: Iterable[tuple[int, str, float, CachedPoint]]) -> None:
        newest = newest_per_name(items)
        if not newest:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for (project_id, name), (ts, point) in newest.items():
                    await self._script(
                        keys=self._keys(project_id),
                        args=[name, repr(ts), orjson.dumps(point)],
                        client=pipe,
                    )
                await pipe.execute()
        except Exception as exc:
            log.warning(
                "latest cache: Redis update failed (%s); reads fall back to the database", exc
            )

    async def forget_project(self, project_id: int) -> None:
        try:
            await self._client.delete(*self._keys(project_id))
        except Exception as exc:
            log.warning("latest cache: Redis delete failed (%s)", exc)
