"""Calendar buckets in IANA zones, across DST changes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from gati.metrics.buckets import (
    HOUR,
    bucket_end,
    bucket_start,
    ceil_utc,
    floor_utc,
    get_zone,
    iter_buckets,
    local_iso,
)

NY = get_zone("America/New_York")
KOLKATA = get_zone("Asia/Kolkata")
BERLIN = get_zone("Europe/Berlin")
LORD_HOWE = get_zone("Australia/Lord_Howe")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_unknown_zone_names_the_value() -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        get_zone("Mars/Olympus")


def test_day_bucket_is_23_hours_on_spring_forward_and_25_on_fall_back() -> None:
    spring = bucket_start(utc(2024, 3, 10, 12), "day", NY)
    assert spring == utc(2024, 3, 10, 5)  # local midnight EST
    assert bucket_end(spring, "day", NY) - spring == timedelta(hours=23)
    fall = bucket_start(utc(2024, 11, 3, 12), "day", NY)
    assert fall == utc(2024, 11, 3, 4)  # local midnight EDT
    assert bucket_end(fall, "day", NY) - fall == timedelta(hours=25)


def test_repeated_hour_on_fall_back_is_two_buckets() -> None:
    first = bucket_start(utc(2024, 11, 3, 5, 30), "hour", NY)  # 01:30 EDT
    second = bucket_start(utc(2024, 11, 3, 6, 30), "hour", NY)  # 01:30 EST
    assert first == utc(2024, 11, 3, 5)
    assert second == utc(2024, 11, 3, 6)
    assert local_iso(first, NY) == "2024-11-03T01:00:00-04:00"
    assert local_iso(second, NY) == "2024-11-03T01:00:00-05:00"
    assert bucket_end(first, "hour", NY) == second
    assert bucket_end(second, "hour", NY) == utc(2024, 11, 3, 7)


def test_skipped_hour_has_no_bucket() -> None:
    hours = list(iter_buckets(utc(2024, 3, 10, 5), utc(2024, 3, 10, 9), "hour", NY))
    labels = [local_iso(start, NY)[11:16] for start, _ in hours]
    assert labels == ["00:00", "01:00", "03:00", "04:00"]
    assert all(end - start == timedelta(hours=1) for start, end in hours)


def test_half_hour_offset_zone_hour_and_day_boundaries() -> None:
    start = bucket_start(utc(2024, 1, 1, 0, 10), "hour", KOLKATA)  # 05:40 IST
    assert start == utc(2023, 12, 31, 23, 30)
    day = bucket_start(utc(2024, 1, 1, 0, 10), "day", KOLKATA)
    assert day == utc(2023, 12, 31, 18, 30)


def test_week_starts_monday_and_month_has_its_length() -> None:
    week = bucket_start(utc(2024, 3, 28, 12), "week", BERLIN)  # a Thursday
    assert local_iso(week, BERLIN) == "2024-03-25T00:00:00+01:00"
    # The week containing the spring change (Sunday 31 March) lasts 7 days minus one hour.
    assert bucket_end(week, "week", BERLIN) - week == timedelta(days=7, hours=-1)
    month = bucket_start(utc(2024, 2, 15), "month", BERLIN)
    assert local_iso(month, BERLIN) == "2024-02-01T00:00:00+01:00"
    assert local_iso(bucket_end(month, "month", BERLIN), BERLIN) == "2024-03-01T00:00:00+01:00"
    december = bucket_start(utc(2024, 12, 20), "month", BERLIN)
    assert local_iso(bucket_end(december, "month", BERLIN), BERLIN) == "2025-01-01T00:00:00+01:00"


def test_lord_howe_half_hour_dst_shift_keeps_buckets_contiguous() -> None:
    start, end = utc(2024, 4, 6, 13), utc(2024, 4, 6, 18)  # around the 02:00 -> 01:30 change
    buckets = list(iter_buckets(start, end, "hour", LORD_HOWE))
    for (_, end_a), (start_b, _) in itertools.pairwise(buckets):
        assert end_a == start_b
    instant = start
    while instant < end:
        bucket = bucket_start(instant, "hour", LORD_HOWE)
        assert bucket <= instant < bucket_end(bucket, "hour", LORD_HOWE)
        instant += timedelta(minutes=7)


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"])
@pytest.mark.parametrize("unit", ["minute", "hour", "day", "week", "month"])
def test_every_instant_is_in_exactly_its_bucket(zone: str, unit: str) -> None:
    tz = get_zone(zone)
    instant = utc(2024, 3, 1)
    while instant < utc(2024, 12, 1):
        start = bucket_start(instant, unit, tz)  # type: ignore[arg-type]
        assert start <= instant < bucket_end(start, unit, tz)  # type: ignore[arg-type]
        assert bucket_start(start, unit, tz) == start  # type: ignore[arg-type]
        instant += timedelta(hours=5, minutes=17)


@pytest.mark.parametrize(
    "zone,start,end",
    [
        ("America/New_York", utc(2024, 1, 1), utc(2025, 1, 1)),
        ("Australia/Lord_Howe", utc(2024, 1, 1), utc(2025, 1, 1)),
        ("Asia/Kathmandu", utc(1985, 6, 1), utc(1986, 6, 1)),  # +05:30 -> +05:45 in 1986
        ("America/St_Johns", utc(2024, 1, 1), utc(2025, 1, 1)),
        ("Asia/Kolkata", utc(1941, 6, 1), utc(1946, 1, 1)),  # war time +06:30 and back
        ("Europe/Amsterdam", utc(1937, 6, 1), utc(1937, 8, 1)),  # +00:19:32 -> +00:20
    ],
)
@pytest.mark.parametrize("unit", ["minute", "hour"])
def test_fast_path_buckets_equal_the_calendar_rule(
    zone: str, start: datetime, end: datetime, unit: str
) -> None:
    """iter_buckets' one-step fast path gives exactly the buckets that bucket_end chains give."""
    tz = get_zone(zone)
    if unit == "minute":  # a week around each offset change only: minutes are many
        changes = [
            instant
            for instant in (start + timedelta(hours=h) for h in range(int((end - start) / HOUR)))
            if instant.astimezone(tz).utcoffset() != (instant + HOUR).astimezone(tz).utcoffset()
        ]
        assert changes
        ranges = [(c - timedelta(days=1), c + timedelta(days=1)) for c in changes[:4]]
    else:
        ranges = [(start, end)]
    for low, high in ranges:
        expected = []
        current = bucket_start(low, unit, tz)  # type: ignore[arg-type]
        while current < high:
            following = bucket_end(current, unit, tz)  # type: ignore[arg-type]
            expected.append((current, following))
            current = following
        assert list(iter_buckets(low, high, unit, tz)) == expected  # type: ignore[arg-type]


def test_floor_and_ceil_utc() -> None:
    hour = timedelta(hours=1)
    assert floor_utc(utc(2024, 1, 1, 5, 59, 59), hour) == utc(2024, 1, 1, 5)
    assert ceil_utc(utc(2024, 1, 1, 5, 0, 1), hour) == utc(2024, 1, 1, 6)
    assert ceil_utc(utc(2024, 1, 1, 5), hour) == utc(2024, 1, 1, 5)
