"""gati.cache.singleflight: concurrent calls for one key share one run."""

from __future__ import annotations

import asyncio

import pytest

from gati.cache.singleflight import SingleFlight


async def test_concurrent_calls_share_one_run_and_its_result() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    runs = 0
    release = asyncio.Event()

    async def work() -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        return 42

    waiters = [asyncio.create_task(flights.run("k", work)) for _ in range(10)]
    other = asyncio.create_task(flights.run("other", work))
    await asyncio.sleep(0)
    assert "k" in flights and len(flights) == 2
    release.set()
    assert await asyncio.gather(*waiters, other) == [42] * 11
    assert runs == 2  # one per key
    assert len(flights) == 0  # finished runs are forgotten: the next call runs again
    assert await flights.run("k", work) == 42 and runs == 3


async def test_every_waiter_gets_the_exception() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    release = asyncio.Event()

    async def failing() -> int:
        await release.wait()
        raise LookupError("no such key")

    waiters = [asyncio.create_task(flights.run("k", failing)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results)


async def test_a_cancelled_waiter_does_not_cancel_the_run() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    release = asyncio.Event()

    async def work() -> str:
        await release.wait()
        return "done"

    first = asyncio.create_task(flights.run("k", work))
    second = asyncio.create_task(flights.run("k", work))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    release.set()
    assert await second == "done"


async def test_forget_starts_a_new_run_for_later_calls() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    release = asyncio.Event()
    runs = 0

    async def work() -> int:
        nonlocal runs
        runs += 1
        mine = runs
        await release.wait()
        return mine

    early = asyncio.create_task(flights.run("k", work))
    await asyncio.sleep(0)
    flights.forget()
    late = asyncio.create_task(flights.run("k", work))
    await asyncio.sleep(0)
    release.set()
    assert sorted(await asyncio.gather(early, late)) == [1, 2]
