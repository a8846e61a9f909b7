"""Live hub: bounded drop-oldest outboxes, topic fan-out in one process and through real Redis."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest
import redis.asyncio as aioredis

from gati.live.hub import LiveHub, Outbox, events_topic, metric_topic
from gati.live.redis_backend import RedisBackend

REDIS_URL = "redis://127.0.0.1:6379/0"


async def next_message(outbox: Outbox) -> dict[str, object]:
    async with asyncio.timeout(5.0):
        text = await outbox.get()
    assert text is not None
    return orjson.loads(text)  # type: ignore[no-any-return]


async def test_outbox_drops_oldest_and_reports_the_count() -> None:
    outbox = Outbox(maxsize=3)
    for i in range(5):
        outbox.offer(orjson.dumps({"i": i}).decode())
    assert len(outbox) == 3
    assert outbox.dropped_total == 2
    assert await next_message(outbox) == {"type": "dropped", "count": 2}
    assert [(await next_message(outbox))["i"] for _ in range(3)] == [2, 3, 4]
    outbox.offer('{"i": 9}')
    assert await next_message(outbox) == {"i": 9}  # no second notice


async def test_outbox_close_wakes_a_waiting_reader() -> None:
    outbox = Outbox(maxsize=2)
    reader = asyncio.create_task(outbox.get())
    await asyncio.sleep(0)
    outbox.close()
    assert await asyncio.wait_for(reader, 2) is None
    outbox.offer("ignored")
    assert len(outbox) == 0


async def test_outbox_wakes_a_waiting_writer_once_per_offer_burst() -> None:
    outbox = Outbox(maxsize=5)
    reader = asyncio.create_task(outbox.get())
    await asyncio.sleep(0)  # the reader is waiting now
    assert not reader.done()
    outbox.offer('{"i": 1}')
    outbox.offer('{"i": 2}')
    assert await asyncio.wait_for(reader, 2) == '{"i": 1}'
    assert await next_message(outbox) == {"i": 2}
    # A cancelled waiter leaves the outbox usable.
    waiting = asyncio.create_task(outbox.get())
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    outbox.offer('{"i": 3}')
    assert await next_message(outbox) == {"i": 3}


async def test_in_process_hub_delivers_only_to_subscribed_topics() -> None:
    hub = LiveHub()
    await hub.start()
    cpu, mem, events = hub.connect(), hub.connect(), hub.connect()
    await hub.subscribe(cpu, [metric_topic(1, "cpu")])
    await hub.subscribe(mem, [metric_topic(1, "mem"), metric_topic(2, "cpu")])
    await hub.subscribe(events, [events_topic(1)])
    await hub.publish(metric_topic(1, "cpu"), {"value": 1})
    await hub.publish(events_topic(1), {"event": "signup"})
    assert await next_message(cpu) == {"value": 1}
    assert await next_message(events) == {"event": "signup"}
    assert len(mem) == 0
    await hub.unsubscribe(cpu, [metric_topic(1, "cpu")])
    await hub.publish(metric_topic(1, "cpu"), {"value": 2})
    assert len(cpu) == 0
    assert hub.subscriber_count(metric_topic(1, "cpu")) == 0
    await hub.disconnect(mem)
    assert mem.closed and hub.connection_count == 2
    await hub.stop()


async def test_slow_subscriber_does_not_hold_back_fast_one() -> None:
    hub = LiveHub(outbox_size=10)
    await hub.start()
    slow, fast = hub.connect(), hub.connect()
    topic = metric_topic(1, "cpu")
    await hub.subscribe(slow, [topic])
    await hub.subscribe(fast, [topic])
    received: list[int] = []
    for i in range(100):
        await hub.publish(topic, {"i": i})
        received.append(int((await next_message(fast))["i"]))  # type: ignore[call-overload]
    assert received == list(range(100))
    assert len(slow) == 10 and slow.dropped_total == 90
    await hub.stop()


@pytest.mark.redis
async def test_redis_backend_fans_out_between_hubs_with_separate_connections() -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    publisher_hub = LiveHub(RedisBackend.from_url(REDIS_URL, prefix=prefix))
    subscriber_hub = LiveHub(RedisBackend.from_url(REDIS_URL, prefix=prefix))
    other_tenant_hub = LiveHub(RedisBackend.from_url(REDIS_URL, prefix=prefix))
    for hub in (publisher_hub, subscriber_hub, other_tenant_hub):
        await hub.start()
    try:
        outbox = subscriber_hub.connect()
        other = other_tenant_hub.connect()
        await subscriber_hub.subscribe(outbox, [metric_topic(7, "cpu")])
        await other_tenant_hub.subscribe(other, [metric_topic(8, "cpu")])
        await publisher_hub.publish(metric_topic(7, "cpu"), {"value": 42.5})
        assert await next_message(outbox) == {"value": 42.5}
        await publisher_hub.publish(metric_topic(8, "cpu"), {"value": 1})
        assert await next_message(other) == {"value": 1}
        assert len(outbox) == 0
        # After the last local subscriber leaves, the process unsubscribes from the channel.
        await subscriber_hub.unsubscribe(outbox, [metric_topic(7, "cpu")])
        client = aioredis.Redis.from_url(REDIS_URL)
        numsub = dict(await client.pubsub_numsub(f"{prefix}live:{metric_topic(7, 'cpu')}"))
        await client.aclose()
        assert list(numsub.values()) == [0]
    finally:
        for hub in (publisher_hub, subscriber_hub, other_tenant_hub):
            await hub.stop()


@pytest.mark.redis
async def test_redis_backend_ping() -> None:
    backend = RedisBackend.from_url(REDIS_URL, prefix=f"test:{uuid.uuid4().hex}:")
    assert await backend.ping()
    dead = RedisBackend.from_url("redis://127.0.0.1:1/0")
    assert not await dead.ping()
