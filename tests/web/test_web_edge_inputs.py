"""Edge inputs found by fuzzing web analytics, on SQLite and PostgreSQL: each is a clear 4xx that
names the problem (never a 500, an unhandled exception or the generic out-of-range net), nothing
is stored for a refused event, and both databases give the same answer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gati.db.engine import Database
from gati.projects.models import Project
from tests.web.helpers import CHROME, event_count, send, stored_events, stored_sessions

STATS = ("aggregate", "timeseries", "breakdown")


def refused(response: httpx.Response, status: int, code: str, field: str | None = None) -> str:
    """Assert the error shape; returns the message of ``field``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    if field is None:
        return str(body["detail"])
    assert [e["field"] for e in body["errors"]] == [field], body
    assert body["detail"].startswith(field + ": "), body
    return str(body["errors"][0]["message"])


async def project_count(db: Database) -> int:
    async with db.read_session() as session:
        return int((await session.execute(select(func.count()).select_from(Project))).scalar_one())


async def stats(client: httpx.AsyncClient, site: str, kind: str, **params: Any) -> httpx.Response:
    if kind == "breakdown":
        params.setdefault("property", "page")
    return await client.get(f"/api/v1/sites/{site}/stats/{kind}", params=params)


# --- 1. event timestamps: 1970-01-01T00:00:00Z .. one hour after the server's clock ----------


@pytest.mark.parametrize(
    "timestamp",
    [
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC (astimezone overflowed)
        "0001-01-01T00:00:00Z",  # the visit lookup's "30 minutes earlier" overflowed
        "0001-01-01T00:00:00",
        "9999-12-31T23:59:59-12:00",  # after year 9999 in UTC
        "9999-12-31T23:59:59Z",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:59:59+01:00",
        -1,
    ],
)
async def test_collect_timestamp_outside_the_accepted_range_is_422(
    client: httpx.AsyncClient, db: Database, timestamp: str | int
) -> None:
    body = {"siteId": "default", "url": "https://ex.com/a", "timestamp": timestamp}
    message = refused(
        await client.post("/collect", json=body), 422, "validation_error", "timestamp"
    )
    assert "1970-01-01T00:00:00Z" in message or "1 hour in the future" in message
    pixel = await client.get("/collect", params=body)
    refused(pixel, 422, "validation_error", "timestamp")
    assert pixel.headers["access-control-allow-origin"] == "*"
    assert await event_count(db) == 0


async def test_collect_timestamps_at_the_edges_of_the_range_are_stored(
    client: httpx.AsyncClient, make_project: Callable[..., Any], db: Database
) -> None:
    project = await make_project()
    slug = project["slug"]
    await send(client, slug, url="https://ex.com/epoch", timestamp="1969-12-31T23:00:00-01:00")
    await send(client, slug, url="https://ex.com/zero", timestamp=0, visitorId="v2")
    soon = datetime.now(UTC) + timedelta(minutes=50)
    await send(client, slug, url="https://ex.com/soon", timestamp=soon.isoformat())
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    events = await stored_events(db, project["id"])
    assert sorted((e.path, e.timestamp) for e in events[:2]) == [
        ("/epoch", epoch),
        ("/zero", epoch),
    ]
    assert events[2].path == "/soon"
    assert abs(events[2].timestamp - soon) < timedelta(seconds=1)
    visits = await stored_sessions(db, project["id"])
    assert sorted((v.entry_page, v.started_at) for v in visits[:2]) == [
        ("/epoch", epoch),
        ("/zero", epoch),
    ]
    # The first accepted instant is on the first day the statistics API accepts.
    response = await stats(client, slug, "aggregate", period="day", date="1970-01-01")
    assert response.status_code == 200, response.text
    assert response.json()["results"]["pageviews"] == {"value": 2}
    response = await stats(client, slug, "breakdown", period="day", date="1970-01-01")
    assert sorted(row["page"] for row in response.json()["results"]) == ["/epoch", "/zero"]


# --- 2. statistics dates: 1970-01-01 .. 9998-12-31 --------------------------------------------

OUT_OF_RANGE_PERIODS = [
    {"period": "month", "date": "0001-01-01"},
    {"period": "12mo", "date": "0001-01-01"},
    {"period": "month", "date": "9999-12-31"},
    {"period": "custom", "date": "9999-12-01,9999-12-31", "interval": "month"},
    {"period": "day", "date": "9999-12-31"},
    {"period": "7d", "date": "9999-12-31"},
    {"period": "custom", "date": "9999-12-31,9999-12-31"},
    {"period": "day", "date": "0001-01-01"},
    {"period": "7d", "date": "0001-01-01"},
    {"period": "30d", "date": "0001-01-20"},
    {"period": "custom", "date": "0001-01-01,0001-01-01"},
    {"period": "day", "date": "1969-12-31", "compare": "previous_period"},
    {"period": "custom", "date": "1969-12-31,1970-01-05"},
    {"period": "custom", "date": "9998-12-30,9999-01-01"},
]


async def test_stats_dates_outside_the_accepted_range_are_422(
    client: httpx.AsyncClient, make_project: Callable[..., Any]
) -> None:
    slug = (await make_project())["slug"]
    for params in OUT_OF_RANGE_PERIODS:
        for kind in STATS:
            query = {k: v for k, v in params.items() if kind == "timeseries" or k != "interval"}
            message = refused(
                await stats(client, slug, kind, **query), 422, "validation_error", "date"
            )
            assert "1970-01-01 to 9998-12-31" in message, (kind, params, message)


@pytest.mark.parametrize("timezone", ["Pacific/Kiritimati", "Etc/GMT+12"])
async def test_stats_dates_at_the_edges_of_the_range_are_answered(
    client: httpx.AsyncClient, make_project: Callable[..., Any], timezone: str
) -> None:
    slug = (await make_project())["slug"]
    response = await client.patch(f"/api/v1/sites/{slug}/settings", json={"timezone": timezone})
    assert response.status_code == 200, response.text
    cases: list[dict[str, str]] = [
        {"period": period, "date": day}
        for period in ("day", "7d", "30d", "month", "12mo")
        for day in ("1970-01-01", "9998-12-31")
    ]
    cases += [
        {"period": "custom", "date": "1970-01-01,1970-01-01"},
        {"period": "custom", "date": "9998-12-31,9998-12-31"},
        {"period": "custom", "date": "9998-12-01,9998-12-31", "interval": "month"},
        {"period": "custom", "date": "9998-10-01,9998-12-31", "interval": "week"},
        {"period": "day", "date": "9998-12-31", "interval": "minute"},
    ]
    for params in cases:
        for kind in STATS:
            query = {k: v for k, v in params.items() if kind == "timeseries" or k != "interval"}
            if kind != "breakdown":
                query["compare"] = "previous_period"
            response = await stats(client, slug, kind, **query)
            assert response.status_code == 200, (kind, params, response.text)
            body = response.json()
            assert "1969-01-01" <= body["period"]["from"] <= body["period"]["to"] <= "9998-12-31"
            if kind == "timeseries":
                assert body["results"] and all(p["pageviews"] == 0 for p in body["results"])
                assert len(body["comparison"]) > 0


# --- 3. breakdown limit and page --------------------------------------------------------------


async def test_breakdown_limit_and_page_are_bounded(
    client: httpx.AsyncClient, make_project: Callable[..., Any]
) -> None:
    slug = (await make_project())["slug"]
    await send(client, slug, url="https://ex.com/a")
    for params, field in [
        ({"page": 9223372036854775807}, "page"),
        ({"page": 10**30}, "page"),
        ({"page": 1_000_001}, "page"),
        ({"page": 0}, "page"),
        ({"page": -1}, "page"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": 10**30}, "limit"),
    ]:
        message = refused(
            await stats(client, slug, "breakdown", **params), 422, "validation_error", field
        )
        assert "between 1 and" in message
    deepest = await stats(client, slug, "breakdown", page=1_000_000, limit=1000)
    assert deepest.status_code == 200, deepest.text
    assert deepest.json()["results"] == []
    first = await stats(client, slug, "breakdown", page=1, limit=1)
    assert [row["page"] for row in first.json()["results"]] == ["/a"]


# --- 4. an unparsable Origin header counts as no Origin -------------------------------------

BAD_ORIGINS = ["http://[::1", "https://[not-an-ip]", "http://a]b"]


@pytest.mark.parametrize("origin", BAD_ORIGINS)
async def test_unparsable_origin_is_treated_as_absent(
    client: httpx.AsyncClient, make_project: Callable[..., Any], db: Database, origin: str
) -> None:
    open_site, closed = await make_project(), await make_project()
    response = await client.patch(
        f"/api/v1/sites/{closed['slug']}/settings", json={"hostnames": ["ex.com"]}
    )
    assert response.status_code == 200
    headers = {"origin": origin, "user-agent": CHROME}

    posted = await client.post(
        "/collect", json={"siteId": open_site["slug"], "url": "https://ex.com/a"}, headers=headers
    )
    assert posted.status_code == 200, posted.text
    assert posted.headers["access-control-allow-origin"] == "*"
    pixel = await client.get(
        "/collect", params={"siteId": open_site["slug"], "url": "https://ex.com/b"}, headers=headers
    )
    assert pixel.status_code == 200
    assert [e.path for e in await stored_events(db, open_site["id"])] == ["/a", "/b"]

    # A site with hostnames checks the page's host; without a page URL, the unknown origin is
    # not one of its hostnames.
    ok = await client.post(
        "/collect", json={"siteId": closed["slug"], "url": "https://ex.com/c"}, headers=headers
    )
    assert ok.status_code == 200, ok.text
    assert ok.headers["access-control-allow-origin"] == "*"  # the bad origin is not echoed
    no_url = await client.post("/collect", json={"siteId": closed["slug"]}, headers=headers)
    refused(no_url, 403, "hostname_not_allowed")
    assert [e.path for e in await stored_events(db, closed["id"])] == ["/c"]

    preflight = {**headers, "access-control-request-method": "POST"}
    allowed = await client.options(f"/collect?siteId={open_site['slug']}", headers=preflight)
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "*"
    denied = await client.options(f"/collect?siteId={closed['slug']}", headers=preflight)
    assert denied.status_code == 403
    assert "access-control-allow-origin" not in denied.headers


async def test_unparsable_urls_in_events_and_settings(
    client: httpx.AsyncClient, make_project: Callable[..., Any], db: Database
) -> None:
    project = await make_project()
    slug = project["slug"]
    for url in ("http://[::1/x", "https://[not-an-ip]/"):
        response = await client.post("/collect", json={"siteId": slug, "url": url})
        assert refused(response, 422, "validation_error", "url") == "is not a valid URL"
    assert await event_count(db) == 0
    # An unparsable referrer is no source: the visit is direct.
    await send(client, slug, url="https://ex.com/a", referrer="http://[::1/")
    [event] = await stored_events(db, project["id"])
    assert (event.referrer, event.source) == ("http://[::1/", None)
    for hostname in ("http://[::1", "https://[zz]/", "a b.com", "ex\u0000.com"):
        response = await client.patch(
            f"/api/v1/sites/{slug}/settings", json={"hostnames": ["ex.com", hostname]}
        )
        assert "is not a hostname" in refused(response, 422, "validation_error", "hostnames")
    settings = await client.get(f"/api/v1/sites/{slug}/settings")
    assert settings.json()["hostnames"] == []


# --- 5. site references -----------------------------------------------------------------------

OUT_OF_RANGE_IDS = ["2147483648", "9223372036854775807", "9223372036854775808", "9" * 30]


async def _assert_no_such_site(client: httpx.AsyncClient, ref: str, **headers: str) -> None:
    refused(await client.post("/collect", json={"siteId": ref}), 404, "site_not_found")
    refused(await client.get("/collect", params={"siteId": ref}), 404, "site_not_found")
    preflight = await client.options(
        "/collect", params={"siteId": ref}, headers={"origin": "https://ex.com"}
    )
    refused(preflight, 404, "site_not_found")
    for kind in (*STATS, "realtime"):
        response = await client.get(
            f"/api/v1/sites/{ref}/stats/{kind}",
            params={"property": "page"} if kind == "breakdown" else {},
            headers=headers,
        )
        refused(response, 404, "site_not_found")
    refused(
        await client.get(f"/api/v1/sites/{ref}/settings", headers=headers), 404, "site_not_found"
    )
    patched = await client.patch(
        f"/api/v1/sites/{ref}/settings", json={"ip_mode": "full"}, headers=headers
    )
    refused(patched, 404, "site_not_found")


async def test_numeric_site_beyond_the_id_column_is_not_found(
    make_app: Callable[..., Any],
    make_project: Callable[..., Any],
    db: Database,
    production_settings: dict[str, Any],
) -> None:
    project = await make_project()
    async with make_app() as client:  # local mode: unknown slugs are created, numbers are not
        before = await project_count(db)  # with the "default" project local mode starts with
        for ref in OUT_OF_RANGE_IDS:
            await _assert_no_such_site(client, ref)
        # A number within the column's range that is no project's id is not created either.
        await _assert_no_such_site(client, "424242")
        # The project's id still names it.
        await send(client, str(project["id"]), url="https://ex.com/by-id")
        settings = await client.get(f"/api/v1/sites/{project['id']}/settings")
        assert settings.json()["site_id"] == project["slug"]
    auth = {"authorization": f"Bearer {project['secret_key']}"}
    async with make_app(**production_settings) as client:
        for ref in OUT_OF_RANGE_IDS:
            await _assert_no_such_site(client, ref, **auth)
    assert await project_count(db) == before
    assert [e.path for e in await stored_events(db, project["id"])] == ["/by-id"]
    assert await event_count(db) == 1


async def test_local_mode_creates_sites_only_for_slugs(
    make_app: Callable[..., Any], db: Database
) -> None:
    async with make_app():
        before = await project_count(db)  # with the "default" project local mode starts with
    for ref in ("My Site", "Example.com", "abc-", "\u00b2", "\u0663", "a" * 101):
        # Two app instances: the second one does not remember the first one's answer.
        for _ in range(2):
            async with make_app() as client:
                response = await client.post("/collect", json={"siteId": ref})
                message = refused(response, 404, "site_not_found")
                assert "created automatically" in message, message
    assert await project_count(db) == before
    for _ in range(2):
        async with make_app() as client:
            await send(client, "example.com", url="https://example.com/")
    assert await project_count(db) == before + 1
    assert await event_count(db) == 2


# --- 6. custom property names in statistics ----------------------------------------------------

BAD_PROPERTY_NAMES = ['a"b', 'a"', "a\\b", "a\u0001b", "a\nb"]


async def test_stats_property_names_that_cannot_be_addressed_are_422(
    client: httpx.AsyncClient, make_project: Callable[..., Any]
) -> None:
    slug = (await make_project())["slug"]
    # A stored property "a" is what made SQLite's JSON path parser fail on 'a"b'.
    await send(client, slug, url="https://ex.com/", properties={"a": "x", "plan": "pro"})
    for name in BAD_PROPERTY_NAMES:
        for kind in STATS:
            for spelling in (f"property:{name}", f"event:props:{name}"):
                response = await stats(client, slug, kind, filters=f"{spelling}==1")
                message = refused(response, 422, "validation_error", "filters")
                assert "quotes, backslashes or control characters" in message
        response = await stats(client, slug, "breakdown", property=f"property:{name}")
        message = refused(response, 422, "validation_error", "property")
        assert "quotes, backslashes or control characters" in message


async def test_stats_property_names_with_other_characters_agree_on_both_databases(
    client: httpx.AsyncClient, make_project: Callable[..., Any]
) -> None:
    slug = (await make_project())["slug"]
    names = ["a.b", "a b", "x[0]", "$", "*", "it's", "über", "a]", "a\u2028b", "\x7f"]
    await send(client, slug, url="https://ex.com/", properties={name: name for name in names})
    await send(client, slug, url="https://ex.com/other", properties={"a": 1})
    for name in names:
        response = await stats(client, slug, "breakdown", property=f"property:{name}")
        assert response.status_code == 200, (name, response.text)
        rows = {row[f"property:{name}"]: row["pageviews"] for row in response.json()["results"]}
        assert rows == {name: 1, "(none)": 1}, (name, rows)
        filtered = await stats(
            client, slug, "aggregate", filters=f"property:{name}=={name}", metrics="pageviews"
        )
        assert filtered.json()["results"] == {"pageviews": {"value": 1}}, (name, filtered.text)
