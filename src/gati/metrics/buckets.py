"""Calendar buckets (minute, hour, day, week, month) in an IANA time zone, DST-correct.

All instants are UTC-aware datetimes; a bucket is the half-open interval ``[start, end)`` of
UTC instants whose local wall-clock time (in ``tz``) falls in one calendar unit.

Rules, chosen so that every instant belongs to exactly one bucket and no bucket is empty:

* day / week (ISO, Monday first) / month buckets start at the first instant of the local date.
  A day may last 23 or 25 hours; where midnight itself does not exist (a DST gap at 00:00) the
  day starts at the end of the gap.
* minute / hour buckets follow the wall clock *and* the UTC offset: when clocks fall back, the
  repeated local hour 01:00 is two buckets (01:00-05:00 and 01:00-06:00 in New York) rather than
  one two-hour bucket; when clocks spring forward the skipped hour has no bucket.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

BucketUnit = Literal["minute", "hour", "day", "week", "month"]
BUCKET_UNITS: tuple[str, ...] = get_args(BucketUnit)

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
# The finer rollup step: every UTC offset in use today is a multiple of 15 minutes.
QUARTER = timedelta(minutes=15)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def get_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ``ValueError`` naming the value when it is not one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin"
        ) from exc


def _floor_wall(wall: datetime, unit: BucketUnit) -> datetime:
    """Floor a naive local wall-clock time to the start of its calendar unit."""
    if unit == "minute":
        return wall.replace(second=0, microsecond=0)
    if unit == "hour":
        return wall.replace(minute=0, second=0, microsecond=0)
    day = wall.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    raise AssertionError(unit)


def _next_wall(wall: datetime, unit: BucketUnit) -> datetime:
    """The start of the calendar unit after the one starting at ``wall`` (naive)."""
    if unit == "minute":
        return wall + MINUTE
    if unit == "hour":
        return wall + HOUR
    if unit == "day":
        return wall + timedelta(days=1)
    if unit == "week":
        return wall + timedelta(days=7)
    if unit == "month":
        if wall.month == 12:
            return wall.replace(year=wall.year + 1, month=1)
        return wall.replace(month=wall.month + 1)
    raise AssertionError(unit)


def _instants(wall: datetime, tz: ZoneInfo) -> list[datetime]:
    """The UTC instants whose local time is ``wall`` (two when ambiguous; for a wall time inside a
    gap, the instant at the end of the gap, as ``fold=0`` maps it)."""
    return sorted({wall.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1)})


def bucket_start(instant: datetime, unit: BucketUnit, tz: ZoneInfo) -> datetime:
    """The UTC start of the bucket that contains ``instant``."""
    wall = _floor_wall(instant.astimezone(tz).replace(tzinfo=None), unit)
    candidates = _instants(wall, tz)
    if unit in ("day", "week", "month"):
        return candidates[0]
    earlier = [c for c in candidates if c <= instant]
    # A sub-hour DST shift (Lord Howe, +30 min) can put the floor's instants after ``instant``;
    # the bucket then starts at the transition, which is the earliest candidate.
    return earlier[-1] if earlier else candidates[0]


def bucket_end(start: datetime, unit: BucketUnit, tz: ZoneInfo) -> datetime:
    """The UTC end (exclusive) of the bucket that starts at ``start``."""
    wall = _floor_wall(start.astimezone(tz).replace(tzinfo=None), unit)
    later = [c for c in _instants(_next_wall(wall, unit), tz) if c > start]
    if unit in ("minute", "hour"):
        later += [c for c in _instants(wall, tz) if c > start]
    if later:
        return min(later)
    return start + MINUTE  # unreachable with tzdata; keeps iteration finite whatever happens


def iter_buckets(
    start: datetime, end: datetime, unit: BucketUnit, tz: ZoneInfo
) -> Iterator[tuple[datetime, datetime]]:
    """Every bucket ``(bucket_start, bucket_end)`` that overlaps ``[start, end)``, in order.

    Minute and hour buckets take a fast path: while the UTC offset stays the same, the next
    bucket starts one step later (checked: the local time there is on the step and has the same
    offset); anything else (a DST change, a bucket starting off the step) asks ``bucket_end``.
    """
    step = MINUTE if unit == "minute" else HOUR if unit == "hour" else None
    current = bucket_start(start, unit, tz)
    offset = current.astimezone(tz).utcoffset()
    while current < end:
        nxt = None
        if step is not None:
            candidate = current + step
            local = candidate.astimezone(tz)
            aligned = local.second == 0 and local.microsecond == 0
            if aligned and (step is MINUTE or local.minute == 0) and local.utcoffset() == offset:
                nxt = candidate
        if nxt is None:
            nxt = bucket_end(current, unit, tz)
            offset = nxt.astimezone(tz).utcoffset()
        yield current, nxt
        current = nxt


def local_iso(instant: datetime, tz: ZoneInfo) -> str:
    """ISO 8601 with the zone's offset at that instant, e.g. ``2024-03-10T03:00:00-04:00``."""
    return instant.astimezone(tz).isoformat()


def floor_utc(instant: datetime, step: timedelta) -> datetime:
    """Floor a UTC instant to a multiple of ``step`` since the epoch (minute, hour)."""
    return EPOCH + (instant - EPOCH) // step * step


def ceil_utc(instant: datetime, step: timedelta) -> datetime:
    floored = floor_utc(instant, step)
    return floored if floored == instant else floored + step
