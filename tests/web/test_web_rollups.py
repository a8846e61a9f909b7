"""The hourly rollups the writer keeps (page views, events, visits, bounces, duration) always
equal a recomputation from the stored events and visits: with visits growing across batches,
out-of-order events moving a visit's start into an earlier hour, client event ids repeated,
bots, and concurrent requests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gati.db.engine import Database
from gati.jobs.registry import REGISTRY
from gati.web import visitors
from gati.web.models import WebRollupHourly, WebVisitorHour
from tests.web.helpers import CHROME, GOOGLEBOT, IPHONE, send, stored_events, stored_sessions


def at(hour: int, minute: int = 0) -> str:
    return datetime(2025, 3, 10, hour, minute, tzinfo=UTC).isoformat()


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


async def assert_rollups_exact(db: Database, project_id: int) -> dict[datetime, list[int]]:
    expected: dict[datetime, list[int]] = {}
    for event in await stored_events(db, project_id):
        if event.is_bot:
            continue
        slot = expected.setdefault(hour_of(event.timestamp), [0, 0, 0, 0, 0])
        slot[0] += event.event_type == "pageview"
        slot[1] += 1
    for visit in await stored_sessions(db, project_id):
        if visit.is_bot:
            continue
        slot = expected.setdefault(hour_of(visit.started_at), [0, 0, 0, 0, 0])
        slot[2] += 1
        slot[3] += visit.pageviews <= 1
        slot[4] += visit.duration
        assert visit.duration == int((visit.last_seen_at - visit.started_at).total_seconds())
    async with db.read_session() as session:
        rows = (
            await session.execute(
                select(WebRollupHourly).where(WebRollupHourly.project_id == project_id)
            )
        ).scalars()
        stored: dict[datetime, list[int]] = {}
        for r in rows:  # summed over the shards of each hour
            slot = stored.setdefault(hour_of(r.hour), [0, 0, 0, 0, 0])
            for n, value in enumerate((r.pageviews, r.events, r.visits, r.bounces, r.duration)):
                slot[n] += value
        stored = {hour: slot for hour, slot in stored.items() if any(slot)}
    assert stored == expected
    return stored


async def test_rollups_follow_visits_exactly(
    client: httpx.AsyncClient, db: Database, make_project: Callable[..., Any]
) -> None:
    project = await make_project()
    slug = project["slug"]
    # A one-page visit (a bounce) at 10:10 ...
    await send(client, slug, url="https://a.io/", timestamp=at(10, 10))
    first = await assert_rollups_exact(db, project["id"])
    assert first[datetime(2025, 3, 10, 10, tzinfo=UTC)][2:] == [1, 1, 0]
    # ... grows to two pages at 10:25 (no longer a bounce, 15 minutes long) ...
    await send(client, slug, url="https://a.io/b", timestamp=at(10, 25))
    second = await assert_rollups_exact(db, project["id"])
    assert second[datetime(2025, 3, 10, 10, tzinfo=UTC)][2:] == [1, 0, 900]
    # ... and an older event arrives late: the visit now starts at 09:50, in another hour.
    await send(client, slug, url="https://a.io/c", timestamp=at(9, 50))
    third = await assert_rollups_exact(db, project["id"])
    assert third[datetime(2025, 3, 10, 9, tzinfo=UTC)][2:] == [1, 0, 2100]
    assert third[datetime(2025, 3, 10, 10, tzinfo=UTC)] == [2, 2, 0, 0, 0]
    # A client session with a custom event only (0 page views: a bounce), a bot, and a
    # retried client event id (stored and counted once).
    for _ in range(2):
        await send(
            client,
            slug,
            ua=IPHONE,
            eventType="signup",
            sessionId="sess-1",
            eventId="evt-1",
            timestamp=at(12, 1),
        )
    await send(client, slug, ua=GOOGLEBOT, url="https://a.io/", timestamp=at(12, 2))
    fourth = await assert_rollups_exact(db, project["id"])
    assert fourth[datetime(2025, 3, 10, 12, tzinfo=UTC)] == [0, 1, 1, 1, 0]


async def test_rollups_exact_under_concurrent_requests(
    client: httpx.AsyncClient, db: Database, make_project: Callable[..., Any]
) -> None:
    project = await make_project()
    slug = project["slug"]

    async def visitor(n: int) -> None:
        for minute in (30, 10, 50, 5):  # out of order, within one visit
            await send(
                client,
                slug,
                ua=f"{CHROME} v{n % 7}",
                url=f"https://a.io/{minute}",
                timestamp=at(8 + n % 3, minute),
                eventId=f"e-{n}-{minute}",
            )

    await asyncio.gather(*(visitor(n) for n in range(21)))
    stored = await assert_rollups_exact(db, project["id"])
    assert sum(slot[0] for slot in stored.values()) == 84


async def visitor_hour_rows(db: Database, project_id: int) -> dict[datetime, tuple[int, int]]:
    """hour -> (version, number of keys) of the stored visitor key sets."""
    async with db.read_session() as session:
        rows = (
            await session.execute(
                select(WebVisitorHour).where(WebVisitorHour.project_id == project_id)
            )
        ).scalars()
        return {hour_of(r.hour): (r.version, len(r.keys) // 8) for r in rows}


async def visitors_of(client: httpx.AsyncClient, slug: str) -> tuple[int, list[int]]:
    params = {"period": "day", "date": "2025-03-10", "metrics": "visitors"}
    aggregate = await client.get(f"/api/v1/sites/{slug}/stats/aggregate", params=params)
    series = await client.get(f"/api/v1/sites/{slug}/stats/timeseries", params=params)
    assert aggregate.status_code == 200 and series.status_code == 200
    return (
        aggregate.json()["results"]["visitors"]["value"],
        [point["visitors"] for point in series.json()["results"]],
    )


@pytest.mark.parametrize("mode", ["exact", "sketches"])
async def test_visitor_key_sets_are_used_only_while_current(
    client: httpx.AsyncClient,
    db: Database,
    make_project: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    """Both ways of counting (exact key sets; HyperLogLog sketches, forced here by an exact
    limit of 0 visits, which for a handful of visitors are exact too) give the same answers,
    from stored rows, stale rows and missing rows alike."""
    if mode == "sketches":
        monkeypatch.setattr(visitors, "EXACT_VISITS", 0)
    assert "web.visitor_hours" in REGISTRY
    project = await make_project()
    slug, pid = project["slug"], project["id"]
    # Visitor A in hours 9 and 11 (two visits), B in hour 9, C in hour 11; a bot in hour 9.
    await send(client, slug, ua=CHROME, url="https://a.io/", timestamp=at(9, 5))
    await send(client, slug, ua=IPHONE, url="https://a.io/", timestamp=at(9, 10))
    await send(client, slug, ua=GOOGLEBOT, url="https://a.io/", timestamp=at(9, 15))
    await send(client, slug, ua=CHROME, url="https://a.io/x", timestamp=at(11, 0))
    await send(client, slug, ua=CHROME + " C", url="https://a.io/", timestamp=at(11, 20))
    expected_series = [0] * 24
    expected_series[9], expected_series[11] = 2, 2
    # Nothing stored yet: counted from the visits.
    assert await visitor_hour_rows(db, pid) == {}
    assert await visitors_of(client, slug) == (3, expected_series)

    assert await visitors.refresh(db) == 2
    nine, eleven = datetime(2025, 3, 10, 9, tzinfo=UTC), datetime(2025, 3, 10, 11, tzinfo=UTC)
    assert await visitor_hour_rows(db, pid) == {nine: (2, 2), eleven: (2, 2)}
    assert await visitors_of(client, slug) == (3, expected_series)
    assert await visitors.refresh(db) == 0  # all current

    # A late visit in hour 9 (visitor D): the stored set of hour 9 is stale, so hour 9 is read
    # from the visits until the next refresh; the answer is exact either way.
    await send(client, slug, ua=CHROME + " D", url="https://a.io/", timestamp=at(9, 50))
    expected_series[9] = 3
    assert (await visitor_hour_rows(db, pid))[nine] == (2, 2)
    assert await visitors_of(client, slug) == (4, expected_series)
    assert await visitors.refresh(db) == 1
    assert await visitor_hour_rows(db, pid) == {nine: (3, 3), eleven: (2, 2)}
    assert await visitors_of(client, slug) == (4, expected_series)

    # A visit whose start moves from hour 11 into hour 10 (C's earlier event arrives late).
    await send(client, slug, ua=CHROME + " C", url="https://a.io/early", timestamp=at(10, 55))
    expected_series[10], expected_series[11] = 1, 1
    assert await visitors_of(client, slug) == (4, expected_series)
    await assert_rollups_exact(db, pid)
    assert await visitors.refresh(db) == 2
    assert await visitors_of(client, slug) == (4, expected_series)


def test_sketch_error_is_small_for_many_visitors() -> None:
    """The HyperLogLog estimate over 300,000 keys is within 3.3 % (two standard errors)."""
    keys = [((n * 0x9E3779B97F4A7C15) & (2**63 - 1)) - 2**62 for n in range(300_000)]
    estimate = visitors.sketch_of(keys).get_estimate()
    assert abs(estimate - 300_000) / 300_000 < 0.033
