from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from gati.exceptions import AppError
from gati.web.dimensions import Operator, Scope, parse_filters
from gati.web.periods import (
    Interval,
    bucket_labels,
    offset_changes,
    resolve_period,
    window,
    zone,
)

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2025, 6, 22, 22, 30, tzinfo=UTC)  # already 2025-06-23 00:30 in Berlin


def test_day_uses_the_site_time_zone() -> None:
    period = resolve_period("day", tz=BERLIN, now=NOW)
    assert period.window.first == date(2025, 6, 23)
    assert period.window.start == datetime(2025, 6, 22, 22, 0, tzinfo=UTC)
    assert period.window.end == datetime(2025, 6, 23, 22, 0, tzinfo=UTC)
    assert period.interval is Interval.HOUR
    assert period.previous.first == date(2025, 6, 22)


def test_30d_and_7d_include_the_anchor_day() -> None:
    period = resolve_period("30d", tz=UTC_ZONE, date_param="2025-06-30", now=NOW)
    assert (period.window.first, period.window.last) == (date(2025, 6, 1), date(2025, 6, 30))
    assert (period.previous.first, period.previous.last) == (date(2025, 5, 2), date(2025, 5, 31))
    week = resolve_period("7d", tz=UTC_ZONE, date_param="2025-06-30")
    assert week.window.first == date(2025, 6, 24)
    assert len(bucket_labels(week.window, week.interval, UTC_ZONE)) == 7


UTC_ZONE = ZoneInfo("UTC")


def test_month_and_12mo() -> None:
    month = resolve_period("month", tz=UTC_ZONE, date_param="2024-03-15")
    assert (month.window.first, month.window.last) == (date(2024, 3, 1), date(2024, 3, 31))
    assert (month.previous.first, month.previous.last) == (date(2024, 2, 1), date(2024, 2, 29))
    year = resolve_period("12mo", tz=UTC_ZONE, date_param="2024-03-15")
    assert (year.window.first, year.window.last) == (date(2023, 4, 1), date(2024, 3, 31))
    assert year.interval is Interval.MONTH
    assert bucket_labels(year.window, year.interval, UTC_ZONE)[:2] == ["2023-04-01", "2023-05-01"]
    assert year.previous.first == date(2022, 4, 1)


def test_custom_range() -> None:
    period = resolve_period("custom", tz=UTC_ZONE, date_param="2025-01-01,2025-01-10")
    assert period.previous.last == date(2024, 12, 31)
    assert period.previous.first == date(2024, 12, 22)
    for bad_value in (None, "2025-01-10", "2025-01-10,2025-01-01", "2025-01-01,nope"):
        with pytest.raises(AppError) as exc:
            resolve_period("custom", tz=UTC_ZONE, date_param=bad_value)
        assert exc.value.status == 422 and exc.value.detail.startswith("date:")


def test_bad_period_interval_and_zone() -> None:
    with pytest.raises(AppError, match="period"):
        resolve_period("year", tz=UTC_ZONE)
    with pytest.raises(AppError, match="interval"):
        resolve_period("day", tz=UTC_ZONE, interval="fortnight")
    with pytest.raises(AppError, match="interval"):
        resolve_period("12mo", tz=UTC_ZONE, interval="minute")
    with pytest.raises(AppError, match="timezone"):
        zone("Mars/Olympus")


def test_dst_days_have_23_and_25_hours_but_labels_stay_unique() -> None:
    spring = window(date(2025, 3, 30), date(2025, 3, 30), BERLIN)
    assert (spring.end - spring.start).total_seconds() == 23 * 3600
    assert len(bucket_labels(spring, Interval.HOUR, BERLIN)) == 23
    autumn = window(date(2025, 10, 26), date(2025, 10, 26), BERLIN)
    assert (autumn.end - autumn.start).total_seconds() == 25 * 3600
    labels = bucket_labels(autumn, Interval.HOUR, BERLIN)
    assert len(labels) == 24 and len(set(labels)) == 24


def test_offset_changes_find_the_transitions() -> None:
    span = window(date(2025, 1, 1), date(2025, 12, 31), BERLIN)
    changes = offset_changes(span.start, span.end, BERLIN)
    assert [(c[0], c[1]) for c in changes] == [
        (datetime(2024, 12, 31, 23, 0, tzinfo=UTC), 3600),
        (datetime(2025, 3, 30, 1, 0, tzinfo=UTC), 7200),
        (datetime(2025, 10, 26, 1, 0, tzinfo=UTC), 3600),
    ]
    kolkata = ZoneInfo("Asia/Kolkata")
    assert len(offset_changes(span.start, span.end, kolkata)) == 1


def test_filters_syntax() -> None:
    filters = parse_filters(r"page==/a|/b\|c;visit:source!=Google;property:plan~pro;event:name==x")
    assert [(f.dimension.name, f.operator, f.values) for f in filters] == [
        ("page", Operator.EQ, ("/a", "/b|c")),
        ("source", Operator.NE, ("Google",)),
        ("property:plan", Operator.CONTAINS, ("pro",)),
        ("event", Operator.EQ, ("x",)),
    ]
    assert filters[0].dimension.scope is Scope.EVENT
    assert filters[1].dimension.scope is Scope.SESSION
    assert filters[2].dimension.column == "plan"
    assert parse_filters(None) == [] and parse_filters("  ") == []


@pytest.mark.parametrize("text", ["page", "colour==red", "page~", "property:==x"])
def test_bad_filters_are_422_on_filters(text: str) -> None:
    with pytest.raises(AppError) as exc:
        parse_filters(text)
    assert exc.value.status == 422 and exc.value.detail.startswith("filters:")
