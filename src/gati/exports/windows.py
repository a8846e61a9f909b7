"""Export windows: closed, aligned time ranges ``[start, end)`` in UTC.

A window is *closed* once ``end + settle`` has passed, so that events acknowledged just before
the window's end (and committed a moment later) are inside it when it is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class Schedule(StrEnum):
    HOURLY = "hourly"
    DAILY = "daily"
    OFF = "off"


STEPS = {Schedule.HOURLY: timedelta(hours=1), Schedule.DAILY: timedelta(days=1)}


@dataclass(frozen=True, slots=True, order=True)
class Window:
    start: datetime
    end: datetime


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def step_of(schedule: Schedule) -> timedelta:
    if schedule is Schedule.OFF:
        raise ValueError("schedule 'off' has no windows")
    return STEPS[schedule]


def floor_to(schedule: Schedule, moment: datetime) -> datetime:
    """The start of the window that holds ``moment``."""
    moment = _utc(moment)
    if schedule is Schedule.HOURLY:
        return moment.replace(minute=0, second=0, microsecond=0)
    if schedule is Schedule.DAILY:
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    raise ValueError("schedule 'off' has no windows")


def is_aligned(schedule: Schedule, moment: datetime) -> bool:
    return floor_to(schedule, moment) == _utc(moment)


def closed_windows(
    schedule: Schedule,
    *,
    watermark: datetime,
    now: datetime,
    settle: timedelta,
    limit: int | None = None,
) -> Iterator[Window]:
    """Windows from ``watermark`` (a window start) whose end + settle is at or before ``now``."""
    step = step_of(schedule)
    start = floor_to(schedule, watermark)
    if start != _utc(watermark):
        # A watermark inside a window (set by hand): finish that window first, up to its end.
        end = start + step
        start = _utc(watermark)
    else:
        end = start + step
    cutoff = _utc(now) - settle
    produced = 0
    while end <= cutoff and (limit is None or produced < limit):
        yield Window(start, end)
        produced += 1
        start, end = end, end + step


def next_run_at(schedule: Schedule, *, now: datetime, settle: timedelta) -> datetime | None:
    """When the next window closes (its end + settle)."""
    if schedule is Schedule.OFF:
        return None
    step = step_of(schedule)
    end = floor_to(schedule, _utc(now) - settle) + step
    return end + settle
