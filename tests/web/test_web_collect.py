"""POST/GET/OPTIONS /collect, /js/gati.js and /events/recent on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gati.db.engine import Database
from tests.web.helpers import CHROME, GOOGLEBOT, IPHONE, event_count, send, stored_events
from tests.web.helpers import stored_sessions as sessions_of

SEED_EVENT = {
    "eventType": "pageview",
    "sessionId": "sess_abc123",
    "visitorId": "vis_xyz789",
    "timestamp": "2025-06-22T12:00:00Z",
    "url": "https://example.com/page",
    "path": "/page",
    "attribution": {"utmParams": {"utm_source": "google", "utm_medium": "cpc"}},
}


async def test_seed_event_is_stored_with_every_field(
    client: httpx.AsyncClient, make_project: Callable[..., Any], db: Database
) -> None:
    project = await make_project("example-com")
    body = await send(
        client,
        project["slug"],
        **SEED_EVENT,
        referrer="https://www.bing.com/search?q=gati",
        title="Page",
        properties={"plan": "pro", "seats": 3},
    )
    assert body["status"] == "success"
    assert body["message"] == "Event received and stored"
    assert len(body["event_id"]) == 36
    assert body["timestamp"].endswith("Z")

    [event] = await stored_events(db, project["id"])
    assert event.id == body["event_id"]
    assert event.event_type == "pageview"
    assert (event.session_id, event.visitor_id) == ("sess_abc123", "vis_xyz789")
    assert event.timestamp == datetime(2025, 6, 22, 12, 0, tzinfo=UTC)
    assert (event.url, event.path, event.hostname) == (
        "https://example.com/page",
        "/page",
        "example.com",
    )
    assert (event.utm_source, event.utm_medium) == ("google", "cpc")
    assert event.source == "Google"  # utm_source names a known source
    assert (event.browser, event.os, event.device, event.is_bot) == (
        "Chrome",
        "Windows",
        "desktop",
        False,
    )
    assert event.properties == {"plan": "pro", "seats": 3}
    assert event.raw is not None and event.raw["attribution"] == SEED_EVENT["attribution"]
    assert event.ip == "127.0.0.0"  # truncated by default

    [visit] = await sessions_of(db, project["id"])
    assert (visit.id, visit.pageviews, visit.entry_page, visit.source) == (
        "sess_abc123",
        1,
        "/page",
        "Google",
    )


async def test_seed_curl_example_auto_creates_the_site_in_local_mode(
    client: httpx.AsyncClient, db: Database
) -> None:
    response = await client.post(
        "/collect",
        json={
            "eventType": "test",
            "sessionId": "test_session",
            "visitorId": "test_visitor",
            "siteId": "localhost",
        },
    )
    assert response.status_code == 200, response.text
    recent = (await client.get("/events/recent")).json()
    assert recent["events"][0]["site_id"] == "localhost"
    assert recent["events"][0]["event_type"] == "test"
    # curl is not a browser: stored, flagged as a bot, never counted in statistics.
    assert recent["events"][0]["is_bot"] is True


async def test_text_plain_and_pixel(
    client: httpx.AsyncClient, make_project: Callable[..., Any], db: Database
) -> None:
    project = await make_project()
    response = await client.post(
        "/collect",
        content=b'{"siteId": "%s", "eventType": "signup", "url": "https://a.io/x"}'
        % project["slug"].encode(),
        headers={"content-type": "text/plain;charset=UTF-8", "user-agent": CHROME},
    )
    assert response.status_code == 200, response.text
    pixel = await client.get(
        "/collect",
        params={
            "siteId": project["slug"],
            "url": "https://a.io/landing?utm_campaign=june",
            "utm_source": "newsletter",
            "prop_plan": "pro",
        },
        headers={"user-agent": IPHONE},
    )
    assert pixel.status_code == 200
    assert pixel.headers["content-type"] == "image/gif"
    assert pixel.content.startswith(b"GIF89a") and len(pixel.content) == 43
    assert pixel.headers["cache-control"] == "no-store"
    events = {e.event_type: e for e in await stored_events(db, project["id"])}
    assert events["signup"].path == "/x"
    assert events["pageview"].utm_source == "newsletter"
    assert events["pageview"].utm_campaign == "june"
    assert events["pageview"].properties == {"plan": "pro"}
    assert events["pageview"].device == "mobile"


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "malformed_json"),
        (b"", "text/plain", 400, "empty_body"),
        (b"[]", "application/json", 422, "validation_error"),
        (b'{"eventType": "pageview"}', "application/json", 422, "validation_error"),
        (b'{"siteId": "s", "timestamp": "noon"}', "application/json", 422, "validation_error"),
        (b'{"siteId": "s"}', "application/xml", 415, "unsupported_media_type"),
        (
            b'{"siteId": "s", "x": "' + b"a" * 70_000 + b'"}',
            "application/json",
            413,
            "payload_too_large",
        ),
    ],
)
async def test_malformed_bodies_store_nothing(
    client: httpx.AsyncClient,
    db: Database,
    content: bytes,
    content_type: str,
    status: int,
    code: str,
) -> None:
    response = await client.post(
        "/collect", content=content, headers={"content-type": content_type}
    )
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    assert response.headers["access-control-allow-origin"] == "*"
    assert await event_count(db) == 0


async def test_validation_error_names_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/collect", json={"siteId": "s", "url": "ftp://x"})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "url", "message": "must be an absolute http(s) URL"}
    ]


async def test_unknown_site_is_404_and_stores_nothing(
    make_app: Callable[..., Any], db: Database, production_settings: dict[str, Any]
) -> None:
    async with make_app(**production_settings) as client:
        response = await client.post("/collect", json={"siteId": "nope", "url": "https://a.io/"})
        assert response.status_code == 404
        assert response.json()["error"] == "site_not_found"
        pixel = await client.get("/collect", params={"siteId": "nope"})
        assert pixel.status_code == 404
    async with make_app(web_auto_create_sites=False) as client:
        response = await client.post("/collect", json={"siteId": "nope"})
        assert response.status_code == 404
    assert await event_count(db) == 0


async def test_public_key_works_as_site_id_in_production(
    make_app: Callable[..., Any],
    make_project: Callable[..., Any],
    db: Database,
    production_settings: dict[str, Any],
) -> None:
    project = await make_project()
    async with make_app(**production_settings) as client:
        await send(client, project["public_key"], url="https://a.io/")
        await send(client, project["slug"], url="https://a.io/b")
    assert len(await stored_events(db, project["id"])) == 2


async def test_spoofed_forwarded_for_from_untrusted_peer_is_ignored(
    make_app: Callable[..., Any], make_project: Callable[..., Any], db: Database
) -> None:
    project = await make_project(settings={"ip_mode": "full"})
    spoof = {"x-forwarded-for": "203.0.113.9", "x-real-ip": "203.0.113.9"}
    async with make_app() as client:  # no trusted proxies: the peer (127.0.0.1) is the client
        await send(client, project["slug"], headers=spoof, url="https://a.io/1")
    async with make_app(trusted_proxies=["10.0.0.0/8"]) as client:  # peer is not in the list
        await send(client, project["slug"], headers=spoof, url="https://a.io/2")
    async with make_app(trusted_proxies=["127.0.0.1"]) as client:  # now the peer is trusted
        await send(
            client,
            project["slug"],
            headers={"x-forwarded-for": "198.51.100.1, 203.0.113.9"},
            url="https://a.io/3",
        )
        await send(
            client, project["slug"], headers={"x-forwarded-for": "garbage"}, url="https://a.io/4"
        )
    ips = {e.path: e.ip for e in await stored_events(db, project["id"])}
    assert ips == {"/1": "127.0.0.1", "/2": "127.0.0.1", "/3": "203.0.113.9", "/4": "127.0.0.1"}
    # The visitor hash follows the real client address too.
    visitors = {e.path: e.visitor_id for e in await stored_events(db, project["id"])}
    assert visitors["/1"] == visitors["/2"] == visitors["/4"] != visitors["/3"]


@pytest.mark.parametrize(
    ("mode", "expected"), [("full", "127.0.0.1"), ("none", None), ("truncated", "127.0.0.0")]
)
async def test_ip_storage_modes(
    client: httpx.AsyncClient,
    make_project: Callable[..., Any],
    db: Database,
    mode: str,
    expected: str | None,
) -> None:
    project = await make_project()
    response = await client.patch(
        f"/api/v1/sites/{project['slug']}/settings", json={"ip_mode": mode}
    )
    assert response.status_code == 200, response.text
    await send(client, project["slug"], url="https://a.io/")
    [event] = await stored_events(db, project["id"])
    assert event.ip == expected


async def test_visits_end_after_30_minutes_of_inactivity(
    client: httpx.AsyncClient, make_project: Callable[..., Any], db: Database
) -> None:
    project = await make_project()
    start = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
    for minutes, path in [(0, "/a"), (20, "/b"), (45, "/c"), (80, "/d"), (81, "/e")]:
        await send(
            client,
            project["slug"],
            url=f"https://a.io{path}",
            timestamp=(start + timedelta(minutes=minutes)).isoformat(),
            referrer="https://news.ycombinator.com/" if path == "/a" else None,
        )
    # Another browser (user agent) is another visitor.
    await send(
        client, project["slug"], ua=IPHONE, url="https://a.io/a", timestamp=start.isoformat()
    )
    visits = [v for v in await sessions_of(db, project["id"]) if v.browser == "Chrome"]
    assert [(v.pageviews, v.entry_page, v.exit_page, v.duration) for v in visits] == [
        (3, "/a", "/c", 45 * 60),
        (2, "/d", "/e", 60),
    ]
    assert visits[0].source == "Hacker News" and visits[1].source is None
    assert visits[0].visitor_id == visits[1].visitor_id
    events = await stored_events(db, project["id"])
    by_path = {e.path: e.session_id for e in events if e.browser == "Chrome"}
    assert by_path["/a"] == by_path["/b"] == by_path["/c"] == visits[0].id
    assert by_path["/d"] == by_path["/e"] == visits[1].id
    assert len({v.visitor_id for v in await sessions_of(db, project["id"])}) == 2


async def test_event_order_does_not_matter_and_event_id_is_idempotent(
    client: httpx.AsyncClient, make_project: Callable[..., Any], db: Database
) -> None:
    project = await make_project()
    base = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
    await send(
        client,
        project["slug"],
        url="https://a.io/second",
        timestamp=(base + timedelta(minutes=10)).isoformat(),
        eventId="e-2",
    )
    await send(
        client, project["slug"], url="https://a.io/first", timestamp=base.isoformat(), eventId="e-1"
    )
    again = await send(
        client, project["slug"], url="https://a.io/first", timestamp=base.isoformat(), eventId="e-1"
    )
    assert again["event_id"] == "e-1"
    assert len(await stored_events(db, project["id"])) == 2
    [visit] = await sessions_of(db, project["id"])
    assert (visit.pageviews, visit.entry_page, visit.exit_page) == (2, "/first", "/second")
    assert visit.started_at == base


async def test_bots_are_stored_and_flagged(
    client: httpx.AsyncClient, make_project: Callable[..., Any], db: Database
) -> None:
    project = await make_project()
    await send(client, project["slug"], ua=GOOGLEBOT, url="https://a.io/")
    [event] = await stored_events(db, project["id"])
    assert event.is_bot is True and event.device == "bot"


async def test_site_hostnames_restrict_collection_and_cors(
    client: httpx.AsyncClient, make_project: Callable[..., Any], db: Database
) -> None:
    project = await make_project()
    response = await client.patch(
        f"/api/v1/sites/{project['slug']}/settings",
        json={
            "hostnames": ["https://www.Example.com/", "shop.example.org"],
            "timezone": "Europe/Berlin",
        },
    )
    assert response.json() == {
        "site_id": project["slug"],
        "timezone": "Europe/Berlin",
        "hostnames": ["example.com", "shop.example.org"],
        "ip_mode": "truncated",
    }
    ok = await client.post(
        "/collect",
        json={"siteId": project["slug"], "url": "https://blog.example.com/post"},
        headers={"origin": "https://blog.example.com", "user-agent": CHROME},
    )
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://blog.example.com"
    refused = await client.post(
        "/collect",
        json={"siteId": project["slug"], "url": "https://evil.test/"},
        headers={"origin": "https://evil.test"},
    )
    assert refused.status_code == 403
    assert refused.json()["error"] == "hostname_not_allowed"
    assert len(await stored_events(db, project["id"])) == 1

    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    allowed = await client.options(
        f"/collect?siteId={project['slug']}",
        headers={"origin": "https://example.com", **preflight},
    )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "https://example.com"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    denied = await client.options(
        f"/collect?siteId={project['slug']}", headers={"origin": "https://evil.test", **preflight}
    )
    assert denied.status_code == 403
    assert "access-control-allow-origin" not in denied.headers
    bad = await client.patch(
        f"/api/v1/sites/{project['slug']}/settings", json={"timezone": "Mars/Base"}
    )
    assert bad.status_code == 422 and bad.json()["detail"].startswith("timezone")


async def test_collect_cors_is_open_even_when_the_api_cors_is_strict(
    make_app: Callable[..., Any],
    make_project: Callable[..., Any],
    production_settings: dict[str, Any],
) -> None:
    project = await make_project()
    preflight = {
        "origin": "https://customer.site",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    async with make_app(**production_settings) as client:
        response = await client.options("/collect", headers=preflight)
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == "*"
        # The API itself keeps the strict policy.
        api = await client.options("/api/v1/sites/x/stats/aggregate", headers=preflight)
        assert api.status_code == 400
        posted = await client.post(
            "/collect",
            json={"siteId": project["public_key"], "url": "https://customer.site/"},
            headers={"origin": "https://customer.site", "user-agent": CHROME},
        )
        assert posted.status_code == 200
        assert posted.headers["access-control-allow-origin"] == "*"


async def test_overload_answers_503_with_retry_after(
    make_app: Callable[..., Any], make_project: Callable[..., Any], db: Database
) -> None:
    project = await make_project()
    async with make_app(ingest_queue_limit=0) as client:
        response = await client.post(
            "/collect", json={"siteId": project["slug"]}, headers={"user-agent": CHROME}
        )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert await event_count(db) == 0


async def test_tracking_script_is_served_small(client: httpx.AsyncClient) -> None:
    response = await client.get("/js/gati.js", headers={"accept-encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) < 2048
    assert b"sendBeacon" in response.content  # httpx decoded it
    plain = await client.get("/js/gati.js", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert gzip.compress(plain.content, 9) and b"data-site" in plain.content


async def test_recent_events_are_scoped_to_the_caller(
    make_app: Callable[..., Any],
    make_project: Callable[..., Any],
    production_settings: dict[str, Any],
) -> None:
    first, second = await make_project(), await make_project()
    async with make_app(**production_settings) as client:
        await send(client, first["public_key"], url="https://one.io/")
        await send(client, second["public_key"], url="https://two.io/")
        assert (await client.get("/events/recent")).status_code == 401
        public = await client.get(
            "/events/recent", headers={"authorization": f"Bearer {first['public_key']}"}
        )
        assert public.status_code == 403
        mine = await client.get(
            "/events/recent", headers={"authorization": f"Bearer {first['secret_key']}"}
        )
        assert mine.status_code == 200
        assert [e["url"] for e in mine.json()["events"]] == ["https://one.io/"]
        assert mine.json()["events"][0]["site_id"] == first["slug"]
        other = await client.get(
            f"/events/recent?project={second['slug']}",
            headers={"x-api-key": first["secret_key"]},
        )
        assert other.status_code == 404
