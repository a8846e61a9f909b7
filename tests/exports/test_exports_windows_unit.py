"""Closed windows, alignment and the next run time."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from gati.exports.windows import Schedule, Window, closed_windows, floor_to, next_run_at

T0 = datetime(2025, 6, 22, 11, 0, tzinfo=UTC)
SETTLE = timedelta(minutes=2)


def test_hourly_windows_up_to_the_last_closed_one() -> None:
    now = datetime(2025, 6, 22, 14, 1, 59, tzinfo=UTC)  # 14:00 window not settled yet
    windows = list(closed_windows(Schedule.HOURLY, watermark=T0, now=now, settle=SETTLE))
    assert windows == [
        Window(T0, T0 + timedelta(hours=1)),
        Window(T0 + timedelta(hours=1), T0 + timedelta(hours=2)),
    ]
    now = now + timedelta(seconds=1)
    assert len(list(closed_windows(Schedule.HOURLY, watermark=T0, now=now, settle=SETTLE))) == 3


def test_windows_are_contiguous_and_limited() -> None:
    now = T0 + timedelta(days=3)
    windows = list(closed_windows(Schedule.HOURLY, watermark=T0, now=now, settle=SETTLE, limit=10))
    assert len(windows) == 10
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))


def test_daily_windows() -> None:
    day = datetime(2025, 6, 20, tzinfo=UTC)
    now = datetime(2025, 6, 22, 0, 5, tzinfo=UTC)
    windows = list(closed_windows(Schedule.DAILY, watermark=day, now=now, settle=SETTLE))
    assert [w.start.day for w in windows] == [20, 21]


def test_unaligned_watermark_finishes_its_window_first() -> None:
    watermark = T0 + timedelta(minutes=20)
    now = T0 + timedelta(hours=2, minutes=5)
    windows = list(closed_windows(Schedule.HOURLY, watermark=watermark, now=now, settle=SETTLE))
    assert windows[0] == Window(watermark, T0 + timedelta(hours=1))
    assert windows[1].start == T0 + timedelta(hours=1)


def test_floor_and_next_run() -> None:
    moment = datetime(2025, 6, 22, 11, 42, 7, 5, tzinfo=UTC)
    assert floor_to(Schedule.HOURLY, moment) == T0
    assert floor_to(Schedule.DAILY, moment) == datetime(2025, 6, 22, tzinfo=UTC)
    assert next_run_at(Schedule.HOURLY, now=moment, settle=SETTLE) == T0 + timedelta(
        hours=1, minutes=2
    )
    # just after 12:00 but before the settle delay: the 11:00 window is next
    early = datetime(2025, 6, 22, 12, 1, tzinfo=UTC)
    assert next_run_at(Schedule.HOURLY, now=early, settle=SETTLE) == T0 + timedelta(
        hours=1, minutes=2
    )
    assert next_run_at(Schedule.OFF, now=moment, settle=SETTLE) is None
    with pytest.raises(ValueError):
        list(closed_windows(Schedule.OFF, watermark=T0, now=moment, settle=SETTLE))
