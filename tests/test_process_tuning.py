"""gati.process_tuning.quick_gil_handoffs: the short switch interval holds exactly while at least
one section is open, overlapping sections included, and the interval before is restored."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator

import pytest

from gati.process_tuning import QUICK_SWITCH_INTERVAL, SWITCH_INTERVAL, quick_gil_handoffs


@pytest.fixture
def server_interval() -> Iterator[float]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)  # as gati serve sets it on SQLite
    try:
        yield SWITCH_INTERVAL
    finally:
        sys.setswitchinterval(before)


def test_a_section_shortens_the_interval_and_restores_it(server_interval: float) -> None:
    with quick_gil_handoffs():
        assert sys.getswitchinterval() == pytest.approx(QUICK_SWITCH_INTERVAL)
    assert sys.getswitchinterval() == pytest.approx(server_interval)


def test_a_failing_section_restores_it(server_interval: float) -> None:
    with pytest.raises(RuntimeError), quick_gil_handoffs():
        raise RuntimeError("the write failed")
    assert sys.getswitchinterval() == pytest.approx(server_interval)


async def test_overlapping_sections_restore_it_when_the_last_one_ends(
    server_interval: float,
) -> None:
    first_open, second_done = asyncio.Event(), asyncio.Event()
    seen: list[float] = []

    async def first() -> None:
        with quick_gil_handoffs():
            first_open.set()
            await second_done.wait()
            seen.append(sys.getswitchinterval())  # still short: this section is open
        seen.append(sys.getswitchinterval())

    async def second() -> None:
        await first_open.wait()
        with quick_gil_handoffs():
            seen.append(sys.getswitchinterval())
        seen.append(sys.getswitchinterval())  # the first section is still open
        second_done.set()

    await asyncio.gather(first(), second())
    assert seen == pytest.approx(
        [QUICK_SWITCH_INTERVAL, QUICK_SWITCH_INTERVAL, QUICK_SWITCH_INTERVAL, server_interval]
    )
