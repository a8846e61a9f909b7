"""The statistics API on SQLite and PostgreSQL, with a small known data set."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.web.helpers import CHROME, GOOGLEBOT, IPHONE, send

DAY = "2025-03-10"  # in Europe/Berlin: 2025-03-09T23:00Z .. 2025-03-10T23:00Z


def at(hour: int, minute: int = 0, day: int = 10) -> str:
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC).isoformat()


@pytest.fixture
async def site(client: httpx.AsyncClient, make_project: Callable[..., Any]) -> str:
    project = await make_project()
    slug: str = project["slug"]
    response = await client.patch(
        f"/api/v1/sites/{slug}/settings", json={"timezone": "Europe/Berlin"}
    )
    assert response.status_code == 200
    # Visitor A (desktop Chrome, from Google): one visit of 2 pages and a signup, 6 minutes.
    await send(client, slug, url="https://a.io/", timestamp=at(9), referrer="https://google.com/")
    await send(
        client, slug, url="https://a.io/pricing", timestamp=at(9, 5), referrer="https://a.io/"
    )
    await send(
        client,
        slug,
        eventType="signup",
        url="https://a.io/pricing",
        timestamp=at(9, 6),
        properties={"plan": "pro"},
    )
    # Visitor B (iPhone, newsletter campaign): two one-page visits an hour apart.
    await send(
        client,
        slug,
        ua=IPHONE,
        timestamp=at(10),
        referrer="https://t.co/x",
        url="https://a.io/blog?utm_source=newsletter&utm_campaign=march",
    )
    await send(client, slug, ua=IPHONE, url="https://a.io/blog/2", timestamp=at(11, 1))
    # A bot: stored, never counted.
    await send(client, slug, ua=GOOGLEBOT, url="https://a.io/", timestamp=at(9))
    # The previous day (comparison) and the next local day (23:30Z is 00:30 in Berlin).
    await send(client, slug, ua=CHROME + " Edg/124.0", url="https://a.io/", timestamp=at(12, day=9))
    await send(client, slug, ua=CHROME + " X", url="https://a.io/late", timestamp=at(23, 30))
    return slug


async def get(client: httpx.AsyncClient, site: str, kind: str, **params: Any) -> Any:
    response = await client.get(f"/api/v1/sites/{site}/stats/{kind}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def values(result: dict[str, Any]) -> dict[str, Any]:
    return {name: entry["value"] for name, entry in result["results"].items()}


async def test_aggregate_day_in_site_time_zone_with_comparison(
    client: httpx.AsyncClient, site: str
) -> None:
    result = await get(client, site, "aggregate", period="day", date=DAY, compare="previous_period")
    assert values(result) == {
        "visitors": 2,
        "visits": 3,
        "pageviews": 4,
        "views_per_visit": 1.33,
        "bounce_rate": 67,
        "visit_duration": 120,
        "events": 5,
    }
    assert result["results"]["visitors"]["comparison_value"] == 1
    assert result["results"]["visitors"]["change"] == 100.0
    assert result["results"]["bounce_rate"]["change"] == -33.0
    assert result["period"] == {
        "name": "day",
        "timezone": "Europe/Berlin",
        "interval": "hour",
        "from": DAY,
        "to": DAY,
    }
    assert result["comparison_period"] == {"from": "2025-03-09", "to": "2025-03-09"}


async def test_event_path_agrees_with_rollup_path(client: httpx.AsyncClient, site: str) -> None:
    rollup = values(await get(client, site, "aggregate", period="7d", date=DAY))
    # A filter that matches everything forces the per-event path.
    events = values(
        await get(client, site, "aggregate", period="7d", date=DAY, filters="browser!=Lynx")
    )
    assert rollup == events
    assert rollup["visitors"] == 3 and rollup["pageviews"] == 5


async def test_metrics_selection_and_bad_parameters(client: httpx.AsyncClient, site: str) -> None:
    result = await get(
        client, site, "aggregate", period="day", date=DAY, metrics="visitors,pageviews"
    )
    assert values(result) == {"visitors": 2, "pageviews": 4}
    for params, field in [
        ({"period": "decade"}, "period"),
        ({"metrics": "happiness"}, "metrics"),
        ({"period": "custom", "date": "2025-03-10"}, "date"),
        ({"filters": "colour==red"}, "filters"),
        ({"compare": "last_year"}, "compare"),
    ]:
        response = await client.get(f"/api/v1/sites/{site}/stats/aggregate", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["detail"].startswith(field), response.text


async def test_filters(client: httpx.AsyncClient, site: str) -> None:
    async def agg(filters: str) -> dict[str, Any]:
        return values(await get(client, site, "aggregate", period="day", date=DAY, filters=filters))

    google = await agg("source==Google")
    assert (google["visitors"], google["visits"], google["pageviews"], google["events"]) == (
        1,
        1,
        2,
        3,
    )
    pricing = await agg("page==/pricing")
    assert (pricing["visitors"], pricing["pageviews"]) == (1, 1)
    assert (await agg("property:plan==pro"))["events"] == 1
    assert (await agg("event==signup"))["visitors"] == 1
    not_chrome = await agg("browser!=Chrome")
    assert (not_chrome["visitors"], not_chrome["visits"]) == (1, 2)
    assert (await agg("utm_campaign~MAR"))["visits"] == 1
    assert (await agg("source==Direct / None"))["pageviews"] == 1  # B's second visit
    assert (await agg("device==mobile;entry_page==/blog"))["visits"] == 1
    assert (await agg("page==/nowhere"))["visitors"] == 0


async def test_breakdowns(client: httpx.AsyncClient, site: str) -> None:
    async def rows(prop: str, **extra: Any) -> list[dict[str, Any]]:
        result = await get(
            client, site, "breakdown", period="day", date=DAY, property=prop, **extra
        )
        assert result["property"] == prop
        return result["results"]  # type: ignore[no-any-return]

    sources = await rows("source", metrics="visitors,visits,pageviews")
    assert sources[0] == {"source": "Google", "visitors": 1, "visits": 1, "pageviews": 2}
    assert sorted(s["source"] for s in sources[1:]) == ["Direct / None", "newsletter"]
    pages = {r["page"]: r["pageviews"] for r in await rows("page")}
    assert pages == {"/": 1, "/pricing": 1, "/blog": 1, "/blog/2": 1}
    entry = {r["entry_page"]: r["visits"] for r in await rows("entry_page")}
    assert entry == {"/": 1, "/blog": 1, "/blog/2": 1}
    exits = {r["exit_page"]: r["visits"] for r in await rows("exit_page")}
    assert exits == {"/pricing": 1, "/blog": 1, "/blog/2": 1}
    devices = {r["device"]: r["visitors"] for r in await rows("device")}
    assert devices == {"desktop": 1, "mobile": 1}
    assert {r["browser"] for r in await rows("browser")} == {"Chrome", "Mobile Safari"}
    assert {r["os"] for r in await rows("os")} == {"Windows", "iOS"}
    events = {r["event"]: r["events"] for r in await rows("event")}
    assert events == {"pageview": 4, "signup": 1}
    plans = await rows("property:plan", filters="event==signup")
    assert plans == [
        {
            "property:plan": "pro",
            "visitors": 1,
            "visits": 1,
            "pageviews": 0,
            "views_per_visit": 0.0,
            "bounce_rate": 0,
            "visit_duration": 360,
            "events": 1,
        }
    ]
    utm = {r["utm_source"]: r["visits"] for r in await rows("utm_source")}
    assert utm == {"newsletter": 1, "(none)": 2}
    assert [r["country"] for r in await rows("country")] == ["(none)"]
    limited = await rows("page", limit=2, page=2)
    assert len(limited) == 2
    bad = await client.get(
        f"/api/v1/sites/{site}/stats/breakdown", params={"property": "shoe_size"}
    )
    assert bad.status_code == 422


async def test_timeseries_hours_days_and_comparison(client: httpx.AsyncClient, site: str) -> None:
    hourly = await get(client, site, "timeseries", period="day", date=DAY)
    assert len(hourly["results"]) == 24
    by_hour = {p["date"]: p for p in hourly["results"]}
    assert by_hour["2025-03-10 10:00:00"]["pageviews"] == 2  # 09:00Z and 09:05Z
    assert by_hour["2025-03-10 10:00:00"]["visitors"] == 1
    assert by_hour["2025-03-10 10:00:00"]["events"] == 3
    assert by_hour["2025-03-10 11:00:00"]["visits"] == 1
    assert by_hour["2025-03-10 12:00:00"]["bounce_rate"] == 100
    assert sum(p["pageviews"] for p in hourly["results"]) == 4

    daily = await get(
        client,
        site,
        "timeseries",
        period="7d",
        date="2025-03-11",
        compare="previous_period",
        metrics="visitors,pageviews",
    )
    assert [p["date"] for p in daily["results"]][-3:] == ["2025-03-09", "2025-03-10", "2025-03-11"]
    by_day = {p["date"]: p for p in daily["results"]}
    assert by_day["2025-03-09"] == {"date": "2025-03-09", "visitors": 1, "pageviews": 1}
    assert by_day["2025-03-10"] == {"date": "2025-03-10", "visitors": 2, "pageviews": 4}
    assert by_day["2025-03-11"] == {"date": "2025-03-11", "visitors": 1, "pageviews": 1}
    assert len(daily["comparison"]) == 7
    assert daily["comparison"][0]["date"] == "2025-02-26"

    # The same through the per-event path (a filter) gives the same series.
    filtered = await get(
        client,
        site,
        "timeseries",
        period="7d",
        date="2025-03-11",
        metrics="visitors,pageviews",
        filters="os!=Plan9",
    )
    assert filtered["results"] == daily["results"]

    monthly = await get(client, site, "timeseries", period="12mo", date=DAY, metrics="pageviews")
    assert monthly["results"][-1] == {"date": "2025-03-01", "pageviews": 6}
    custom = await get(
        client, site, "timeseries", period="custom", date="2025-03-09,2025-03-10", metrics="visits"
    )
    assert custom["results"] == [
        {"date": "2025-03-09", "visits": 1},
        {"date": "2025-03-10", "visits": 3},
    ]


async def test_half_hour_time_zone_uses_event_path(client: httpx.AsyncClient, site: str) -> None:
    await client.patch(f"/api/v1/sites/{site}/settings", json={"timezone": "Asia/Kolkata"})
    # Kolkata is UTC+5:30: 2025-03-10 runs from 2025-03-09T18:30Z to 2025-03-10T18:30Z.
    result = values(await get(client, site, "aggregate", period="day", date=DAY))
    assert result["pageviews"] == 4 and result["visitors"] == 2
    hourly = await get(client, site, "timeseries", period="day", date=DAY, metrics="pageviews")
    by_hour = {p["date"]: p["pageviews"] for p in hourly["results"]}
    # 09:00Z and 09:05Z are 14:30 and 14:35 local; 10:00Z is 15:30; 11:01Z is 16:31.
    assert (by_hour["2025-03-10 14:00:00"], by_hour["2025-03-10 15:00:00"]) == (2, 1)
    assert by_hour["2025-03-10 16:00:00"] == 1


async def test_realtime_counts_the_last_five_minutes(
    client: httpx.AsyncClient, make_project: Callable[..., Any]
) -> None:
    project = await make_project()
    slug = project["slug"]
    now = datetime.now(UTC)
    await send(client, slug, url="https://a.io/")
    await send(
        client,
        slug,
        ua=IPHONE,
        url="https://a.io/",
        timestamp=(now - timedelta(minutes=2)).isoformat(),
    )
    await send(
        client,
        slug,
        ua=CHROME + " Y",
        url="https://a.io/",
        timestamp=(now - timedelta(minutes=9)).isoformat(),
    )
    await send(client, slug, ua=GOOGLEBOT, url="https://a.io/")
    result = await get(client, slug, "realtime")
    assert (result["visitors"], result["pageviews"]) == (2, 2)


async def test_stats_are_scoped_to_the_caller(
    make_app: Callable[..., Any],
    make_project: Callable[..., Any],
    production_settings: dict[str, Any],
) -> None:
    mine, theirs = await make_project(), await make_project()
    async with make_app(**production_settings) as client:
        await send(client, theirs["public_key"], url="https://a.io/")
        for kind in ("aggregate", "timeseries", "realtime"):
            response = await client.get(
                f"/api/v1/sites/{theirs['slug']}/stats/{kind}",
                headers={"authorization": f"Bearer {mine['secret_key']}"},
            )
            assert response.status_code == 404, kind
        response = await client.get(
            f"/api/v1/sites/{theirs['slug']}/stats/breakdown?property=page",
            headers={"authorization": f"Bearer {mine['secret_key']}"},
        )
        assert response.status_code == 404
        response = await client.patch(
            f"/api/v1/sites/{theirs['slug']}/settings",
            json={"ip_mode": "full"},
            headers={"authorization": f"Bearer {mine['secret_key']}"},
        )
        assert response.status_code == 404
        assert (
            await client.get(f"/api/v1/sites/{theirs['slug']}/stats/realtime")
        ).status_code == 401
        own = await client.get(
            f"/api/v1/sites/{theirs['slug']}/stats/realtime",
            headers={"authorization": f"Bearer {theirs['secret_key']}"},
        )
        assert own.status_code == 200 and own.json()["visitors"] == 1
