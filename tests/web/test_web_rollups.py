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
from sqlalchemy import select

from gati.db.engine import Database
from gati.web.models import WebRollupHourly
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
        stored = {
            hour_of(r.hour): [r.pageviews, r.events, r.visits, r.bounces, r.duration]
            for r in rows
            if any((r.pageviews, r.events, r.visits, r.bounces, r.duration))
        }
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
