"""Statistics periods in a site's time zone: the UTC window, the bucket interval and the
previous period to compare with.

Periods (``period=``): ``day`` (one local day, hourly), ``7d`` and ``30d`` (the N local days
ending with ``date``, daily), ``month`` (the calendar month of ``date``, daily), ``12mo`` (the 12
calendar months ending with the month of ``date``, monthly) and ``custom``
(``date=YYYY-MM-DD,YYYY-MM-DD``, both days included, daily). ``date`` defaults to today in the
site's time zone.

Every ``date`` lies in ``[MIN_DATE, MAX_DATE]``: no event is older than 1970 (see
``gati.web.payload.MIN_TIMESTAMP``), and the longest look-back from a date (a 12-month period's
comparison: 23 months; a custom period's: 6 years) and the day after the last one stay far
inside what ``datetime`` can represent in any time zone. The windows may start before 1970;
they are empty there.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gati.exceptions import AppError

MAX_CUSTOM_DAYS = 3 * 366
MIN_DATE = date(1970, 1, 1)
MAX_DATE = date(9998, 12, 31)
MAX_BUCKETS = 2000


class Interval(enum.StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


PERIODS = ("day", "7d", "30d", "month", "12mo", "custom")


@dataclass(frozen=True, slots=True)
class Window:
    """Local days ``[first, last]`` and the UTC instants ``[start, end)`` they cover."""

    first: date
    last: date
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Period:
    name: str
    tz: ZoneInfo
    window: Window
    interval: Interval
    previous: Window


def bad(field: str, message: str) -> AppError:
    return AppError(
        422,
        "validation_error",
        f"{field}: {message}",
        extra={"errors": [{"field": field, "message": message}]},
    )


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise bad("timezone", f"{name!r} is not an IANA time zone such as Europe/Berlin") from None


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which ``day`` starts in ``tz``."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def window(first: date, last: date, tz: ZoneInfo) -> Window:
    return Window(first, last, local_midnight(first, tz), local_midnight(last + timedelta(1), tz))


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _parse_date(field: str, text: str) -> date:
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise bad(field, f"{text!r} is not a date in YYYY-MM-DD form") from None
    if not MIN_DATE <= day <= MAX_DATE:
        raise bad(
            field,
            f"{text.strip()} is outside the supported range {MIN_DATE.isoformat()} to "
            f"{MAX_DATE.isoformat()}",
        )
    return day


def resolve_period(
    period: str,
    *,
    tz: ZoneInfo,
    date_param: str | None = None,
    interval: str | None = None,
    now: datetime | None = None,
) -> Period:
    current = (now or datetime.now(UTC)).astimezone(tz)
    today = current.date()
    if period not in PERIODS:
        raise bad("period", f"{period!r} is not one of {', '.join(PERIODS)}")

    if period == "custom":
        if not date_param or "," not in date_param:
            raise bad("date", "a custom period needs date=YYYY-MM-DD,YYYY-MM-DD")
        first_text, last_text = date_param.split(",", 1)
        first, last = _parse_date("date", first_text), _parse_date("date", last_text)
        if last < first:
            raise bad("date", "the end date is before the start date")
        if (last - first).days + 1 > MAX_CUSTOM_DAYS:
            raise bad("date", f"a custom period is at most {MAX_CUSTOM_DAYS} days")
        length = (last - first).days + 1
        current_window = window(first, last, tz)
        previous = window(first - timedelta(length), first - timedelta(1), tz)
        default_interval = Interval.DAY if length > 1 else Interval.HOUR
    else:
        anchor = _parse_date("date", date_param) if date_param else today
        if period == "day":
            current_window = window(anchor, anchor, tz)
            previous = window(anchor - timedelta(1), anchor - timedelta(1), tz)
            default_interval = Interval.HOUR
        elif period in ("7d", "30d"):
            days = int(period[:-1])
            first = anchor - timedelta(days - 1)
            current_window = window(first, anchor, tz)
            previous = window(first - timedelta(days), first - timedelta(1), tz)
            default_interval = Interval.DAY
        elif period == "month":
            first = anchor.replace(day=1)
            last = _add_months(first, 1) - timedelta(1)
            current_window = window(first, last, tz)
            prev_first = _add_months(first, -1)
            previous = window(prev_first, first - timedelta(1), tz)
            default_interval = Interval.DAY
        else:  # 12mo
            month_start = anchor.replace(day=1)
            first = _add_months(month_start, -11)
            last = _add_months(month_start, 1) - timedelta(1)
            current_window = window(first, last, tz)
            previous = window(_add_months(first, -12), first - timedelta(1), tz)
            default_interval = Interval.MONTH

    chosen = default_interval
    if interval:
        try:
            chosen = Interval(interval)
        except ValueError:
            raise bad(
                "interval", f"{interval!r} is not one of {', '.join(i.value for i in Interval)}"
            ) from None
    result = Period(period, tz, current_window, chosen, previous)
    if len(bucket_starts(result.window, chosen, tz)) > MAX_BUCKETS:
        raise bad("interval", f"{chosen.value} buckets over this period exceed {MAX_BUCKETS}")
    return result


def bucket_start(moment: datetime, interval: Interval, tz: ZoneInfo) -> datetime:
    """The local start (aware, in ``tz``) of the bucket that contains ``moment``."""
    local = moment.astimezone(tz)
    if interval is Interval.MINUTE:
        return local.replace(second=0, microsecond=0)
    if interval is Interval.HOUR:
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.date()
    if interval is Interval.WEEK:
        day -= timedelta(day.weekday())
    elif interval is Interval.MONTH:
        day = day.replace(day=1)
    return datetime.combine(day, time(0), tzinfo=tz)


def bucket_starts(span: Window, interval: Interval, tz: ZoneInfo) -> list[datetime]:
    """Every bucket start (local, aware) from the window's first day to its end.

    Hours are walked in UTC, so a DST change yields 23 or 25 hourly instants; the repeated
    local hour of an autumn change is one bucket (its label, see :func:`bucket_label`, is the
    same), which :func:`bucket_labels` removes.
    """
    starts: list[datetime] = []
    if interval in (Interval.MINUTE, Interval.HOUR):
        step = timedelta(minutes=1) if interval is Interval.MINUTE else timedelta(hours=1)
        cursor = bucket_start(span.start, interval, tz).astimezone(UTC)
        while cursor < span.end:
            starts.append(cursor.astimezone(tz))
            cursor += step
            if len(starts) > MAX_BUCKETS:
                break
        return starts
    day = bucket_start(span.start, interval, tz).date()
    while local_midnight(day, tz) < span.end:
        starts.append(datetime.combine(day, time(0), tzinfo=tz))
        if interval is Interval.DAY:
            day += timedelta(1)
        elif interval is Interval.WEEK:
            day += timedelta(7)
        else:
            day = _add_months(day, 1)
        if len(starts) > MAX_BUCKETS:
            break
    return starts


def bucket_label(start: datetime, interval: Interval) -> str:
    """The local wall-clock label of a bucket: ``2025-06-22 14:00:00`` or ``2025-06-22``."""
    if interval in (Interval.MINUTE, Interval.HOUR):
        return start.strftime("%Y-%m-%d %H:%M:00")
    return start.date().isoformat()


def bucket_labels(span: Window, interval: Interval, tz: ZoneInfo) -> list[str]:
    labels: list[str] = []
    for start in bucket_starts(span, interval, tz):
        label = bucket_label(start, interval)
        if not labels or labels[-1] != label:
            labels.append(label)
    return labels


def bucket_ranges(
    span: Window, interval: Interval, tz: ZoneInfo
) -> list[tuple[str, datetime, datetime]]:
    """``(label, from_utc, to_utc)`` of every bucket of :func:`bucket_labels`, clipped to the
    window. The repeated local hour of an autumn DST change is one range of two UTC hours."""
    starts: list[tuple[str, datetime]] = []
    for start in bucket_starts(span, interval, tz):
        label = bucket_label(start, interval)
        if not starts or starts[-1][0] != label:
            starts.append((label, max(start.astimezone(UTC), span.start)))
    ends = [moment for _, moment in starts[1:]] + [span.end]
    return [(label, lo, hi) for (label, lo), hi in zip(starts, ends, strict=True)]


def offset_changes(start: datetime, end: datetime, tz: ZoneInfo) -> list[tuple[datetime, int]]:
    """``[(from_utc, offset_seconds), ...]``: the UTC offset of ``tz`` from each instant on,
    covering ``[start, end)``. The first entry starts at ``start``."""

    def offset(moment: datetime) -> int:
        delta = moment.astimezone(tz).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    cursor = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    changes = [(start.astimezone(UTC), offset(start))]
    current = changes[0][1]
    step = timedelta(hours=1)
    while cursor < end:
        nxt = cursor + step
        value = offset(nxt)
        if value != current:
            moment = cursor
            while offset(moment) == current:  # find the minute of the change
                moment += timedelta(minutes=1)
            changes.append((moment, value))
            current = value
        cursor = nxt
    return changes
