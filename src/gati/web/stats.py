"""Rules of the statistics API: metrics, periods in the site's time zone, comparison with the
previous period, filters and breakdowns, realtime."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from gati.db.engine import Dialect
from gati.web import stats_repository as repo
from gati.web import visitors
from gati.web.dimensions import Dimension, Filter, dimension, parse_filters
from gati.web.periods import (
    Interval,
    Period,
    Window,
    bad,
    bucket_label,
    bucket_labels,
    bucket_ranges,
    bucket_start,
    offset_changes,
    resolve_period,
    zone,
)
from gati.web.stats_repository import Bucketing, Totals

METRICS = (
    "visitors",
    "visits",
    "pageviews",
    "views_per_visit",
    "bounce_rate",
    "visit_duration",
    "events",
)
REALTIME_WINDOW = timedelta(minutes=5)
MAX_BREAKDOWN_LIMIT = 1000
# Deeper than this a client narrows the period or the filters; the offset ((page - 1) * limit,
# at most about 10**9) fits every database's integer parameters.
MAX_BREAKDOWN_PAGE = 1_000_000


def parse_metrics(text: str | None) -> list[str]:
    if not text:
        return list(METRICS)
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise bad(
            "metrics",
            f"unknown metric {unknown[0] if unknown else text!r}; use " + ", ".join(METRICS),
        )
    return list(dict.fromkeys(names))


def metric_values(totals: Totals) -> dict[str, float | int]:
    visits = totals.visits
    return {
        "visitors": totals.visitors,
        "visits": visits,
        "pageviews": totals.pageviews,
        "views_per_visit": round(totals.pageviews / visits, 2) if visits else 0.0,
        "bounce_rate": round(100 * totals.bounces / visits) if visits else 0,
        "visit_duration": round(totals.duration / visits) if visits else 0,
        "events": totals.events,
    }


def change(metric: str, current: float, previous: float) -> float | None:
    """Percent change; for bounce rate, the difference in percentage points."""
    if metric == "bounce_rate":
        return round(current - previous, 1)
    if previous == 0:
        return None if current == 0 else 100.0
    return round(100 * (current - previous) / previous, 1)


@dataclass(frozen=True, slots=True)
class Query:
    project_id: int
    period: Period
    filters: list[Filter]
    metrics: list[str]


def build_query(
    *,
    project_id: int,
    timezone: str,
    period: str,
    date: str | None,
    interval: str | None,
    filters: str | None,
    metrics: str | None,
    now: datetime | None = None,
) -> Query:
    tz = zone(timezone)
    return Query(
        project_id=project_id,
        period=resolve_period(period, tz=tz, date_param=date, interval=interval, now=now),
        filters=parse_filters(filters),
        metrics=parse_metrics(metrics),
    )


async def prepare(session: AsyncSession, dialect: Dialect) -> None:
    await repo.prepare_session(session, dialect)


def _whole_hours(tz: ZoneInfo, window: Window) -> bool:
    """True when every UTC offset of ``tz`` in the window is a whole number of hours, so that
    hourly rollups fall entirely inside one local bucket."""
    return all(offset % 3600 == 0 for _, offset in offset_changes(window.start, window.end, tz))


def _bucketing(period: Period, window: Window) -> Bucketing:
    return Bucketing(
        unit=period.interval.value,
        tz=period.tz.key,
        offsets=offset_changes(window.start, window.end, period.tz),
    )


async def rollup_totals(session: AsyncSession, project_id: int, window: Window) -> Totals:
    hours = await repo.rollup_hours(
        session, project_id=project_id, start=window.start, end=window.end
    )
    unique = await visitors.load(
        session, project_id=project_id, hours=hours, ranges=[(window.start, window.end)]
    )
    return Totals(
        visitors=unique.count(window.start, window.end),
        visits=sum(h.visits for h in hours),
        pageviews=sum(h.pageviews for h in hours),
        events=sum(h.events for h in hours),
        bounces=sum(h.bounces for h in hours),
        duration=sum(h.duration for h in hours),
    )


async def totals(session: AsyncSession, dialect: Dialect, query: Query, window: Window) -> Totals:
    if not query.filters and _whole_hours(query.period.tz, window):
        return await rollup_totals(session, query.project_id, window)
    return await repo.event_totals(
        session,
        dialect,
        project_id=query.project_id,
        start=window.start,
        end=window.end,
        filters=query.filters,
    )


async def aggregate(
    session: AsyncSession, dialect: Dialect, query: Query, *, compare: bool
) -> dict[str, Any]:
    await prepare(session, dialect)
    current = metric_values(await totals(session, dialect, query, query.period.window))
    previous = (
        metric_values(await totals(session, dialect, query, query.period.previous))
        if compare
        else None
    )
    results: dict[str, Any] = {}
    for name in query.metrics:
        entry: dict[str, Any] = {"value": current[name]}
        if previous is not None:
            entry["comparison_value"] = previous[name]
            entry["change"] = change(name, current[name], previous[name])
        results[name] = entry
    return {"results": results, **describe(query, compare=compare)}


async def series(
    session: AsyncSession, dialect: Dialect, query: Query, window: Window
) -> list[dict[str, Any]]:
    period = query.period
    bucketing = _bucketing(period, window)
    labels = bucket_labels(window, period.interval, period.tz)
    rollup = (
        not query.filters
        and period.interval is not Interval.MINUTE
        and _whole_hours(period.tz, window)
    )
    by_label: dict[str, Totals]
    if rollup:
        hours = await repo.rollup_hours(
            session, project_id=query.project_id, start=window.start, end=window.end
        )
        ranges = bucket_ranges(window, period.interval, period.tz)
        unique = await visitors.load(
            session,
            project_id=query.project_id,
            hours=hours,
            ranges=[(lo, hi) for _, lo, hi in ranges],
        )
        sums: dict[str, list[int]] = {}
        for h in hours:
            label = bucket_label(bucket_start(h.hour, period.interval, period.tz), period.interval)
            slot = sums.setdefault(label, [0, 0, 0, 0, 0])
            slot[0] += h.pageviews
            slot[1] += h.events
            slot[2] += h.visits
            slot[3] += h.bounces
            slot[4] += h.duration
        by_label = {}
        for label, lo, hi in ranges:
            pageviews, events, visits, bounces, duration = sums.get(label, (0, 0, 0, 0, 0))
            by_label[label] = Totals(
                visitors=unique.count(lo, hi),
                visits=visits,
                pageviews=pageviews,
                events=events,
                bounces=bounces,
                duration=duration,
            )
    else:
        raw = await repo.event_series(
            session,
            dialect,
            project_id=query.project_id,
            start=window.start,
            end=window.end,
            filters=query.filters,
            bucketing=bucketing,
        )
        by_label = {_sql_label(k, period.interval): v for k, v in raw.items()}
    points = []
    for label in labels:
        values = metric_values(by_label.get(label, Totals()))
        points.append({"date": label, **{name: values[name] for name in query.metrics}})
    return points


def _sql_label(text: str, interval: Interval) -> str:
    """``YYYY-MM-DD HH:MM:SS`` from SQL -> the label of :func:`bucket_label`."""
    if interval in (Interval.MINUTE, Interval.HOUR):
        return text[:16] + ":00"
    return text[:10]


async def timeseries(
    session: AsyncSession, dialect: Dialect, query: Query, *, compare: bool
) -> dict[str, Any]:
    await prepare(session, dialect)
    result: dict[str, Any] = {
        "results": await series(session, dialect, query, query.period.window),
        **describe(query, compare=compare),
    }
    if compare:
        result["comparison"] = await series(session, dialect, query, query.period.previous)
    return result


async def breakdown(
    session: AsyncSession,
    dialect: Dialect,
    query: Query,
    *,
    property_name: str,
    limit: int,
    page: int,
) -> dict[str, Any]:
    dim: Dimension = dimension(property_name)
    if not 1 <= limit <= MAX_BREAKDOWN_LIMIT:
        raise bad("limit", f"must be between 1 and {MAX_BREAKDOWN_LIMIT}")
    if not 1 <= page <= MAX_BREAKDOWN_PAGE:
        raise bad("page", f"must be between 1 and {MAX_BREAKDOWN_PAGE}")
    await prepare(session, dialect)
    rows = await repo.breakdown(
        session,
        dialect,
        project_id=query.project_id,
        start=query.period.window.start,
        end=query.period.window.end,
        filters=query.filters,
        dimension=dim,
        limit=limit,
        offset=(page - 1) * limit,
    )
    results = []
    for value, found in rows:
        values = metric_values(found)
        results.append({dim.name: value, **{name: values[name] for name in query.metrics}})
    return {"results": results, "property": dim.name, **describe(query, compare=False)}


async def realtime(
    session: AsyncSession, *, project_id: int, now: datetime | None = None
) -> dict[str, Any]:
    current = now or datetime.now(UTC)
    since = current - REALTIME_WINDOW
    visitors, pageviews = await repo.realtime(session, project_id=project_id, since=since)
    return {"visitors": visitors, "pageviews": pageviews, "since": since, "until": current}


def describe(query: Query, *, compare: bool) -> dict[str, Any]:
    period = query.period
    info: dict[str, Any] = {
        "period": {
            "name": period.name,
            "timezone": period.tz.key,
            "interval": period.interval.value,
            "from": period.window.first.isoformat(),
            "to": period.window.last.isoformat(),
        },
        "filters": [
            {"dimension": f.dimension.name, "operator": f.operator.value, "values": list(f.values)}
            for f in query.filters
        ],
    }
    if compare:
        info["comparison_period"] = {
            "from": period.previous.first.isoformat(),
            "to": period.previous.last.isoformat(),
        }
    return info
