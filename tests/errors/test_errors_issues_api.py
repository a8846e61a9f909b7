"""Issues: grouping, listing (filters, sort, pagination), detail, events, status changes,
regressions and tenant isolation, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.errors.helpers import auth, envelope, sentry_event

T0 = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)


def _exc(type_: str, value: str, func: str, ts: datetime, **kw: Any) -> dict[str, Any]:
    return sentry_event(
        timestamp=ts.isoformat(),
        exception={
            "values": [
                {
                    "type": type_,
                    "value": value,
                    "stacktrace": {
                        "frames": [{"module": "app.core", "function": func, "in_app": True}]
                    },
                }
            ]
        },
        **kw,
    )


async def _send(
    client: httpx.AsyncClient, project: dict[str, Any], *events: dict[str, Any]
) -> None:
    for event in events:
        r = await client.post(
            f"/api/{project['id']}/envelope/",
            content=envelope(event),
            headers=auth(project["public_key"]),
        )
        assert r.status_code == 200, r.text


async def test_grouping_listing_and_detail(make_app: Any, make_project: Any) -> None:
    project = await make_project()
    async with make_app() as client:
        await _send(
            client,
            project,
            _exc("KeyError", "user 1", "load", T0, environment="production", release="1.0"),
            _exc(
                "KeyError",
                "user 2",
                "load",
                T0 + timedelta(minutes=1),
                environment="staging",
                release="1.1",
            ),
            _exc(
                "KeyError",
                "user 3",
                "load",
                T0 + timedelta(minutes=2),
                environment="production",
                release="1.1",
            ),
            _exc(
                "TypeError",
                "bad",
                "save",
                T0 + timedelta(minutes=3),
                environment="staging",
                release="1.0",
            ),
            sentry_event(
                exception=None,
                message="disk 91% full",
                level="warning",
                timestamp=(T0 - timedelta(days=1)).isoformat(),
                environment="production",
            ),
            sentry_event(
                exception=None,
                message="disk 97% full",
                level="warning",
                timestamp=(T0 - timedelta(hours=1)).isoformat(),
                environment="production",
            ),
        )
        base = f"/api/v1/projects/{project['slug']}/issues"
        page = (await client.get(base)).json()
        assert page["total"] == 3 and not page["has_more"]
        titles = [i["title"] for i in page["items"]]
        assert titles == ["TypeError: bad", "KeyError: user 3", "disk 97% full"]  # last_seen desc
        key_error = page["items"][1]
        assert key_error["event_count"] == 3 and key_error["times_seen"] == 3
        assert key_error["first_seen"] == "2024-01-15T12:00:00Z"
        assert key_error["last_seen"] == "2024-01-15T12:02:00Z"
        assert sorted(key_error["environments"]) == ["production", "staging"]
        assert sorted(key_error["releases"]) == ["1.0", "1.1"]
        assert key_error["culprit"] == "app.core in load"
        assert key_error["status"] == "unresolved" and key_error["type"] == "KeyError"
        assert page["items"][2]["level"] == "warning" and page["items"][2]["event_count"] == 2

        async def ids(**params: Any) -> list[str]:
            data = (await client.get(base, params=params)).json()
            return [i["title"] for i in data["items"]]

        assert await ids(sort="count") == ["KeyError: user 3", "disk 97% full", "TypeError: bad"]
        assert await ids(sort="first_seen") == [
            "TypeError: bad",
            "KeyError: user 3",
            "disk 97% full",
        ]
        assert await ids(environment="staging") == ["TypeError: bad", "KeyError: user 3"]
        assert await ids(release="1.1") == ["KeyError: user 3"]
        assert await ids(environment="nowhere") == []
        assert await ids(query="DISK") == ["disk 97% full"]
        assert await ids(query="app.core in save") == ["TypeError: bad"]
        assert await ids(query="100%") == []  # % is literal, not a wildcard
        paged = (await client.get(base, params={"limit": 2, "offset": 1})).json()
        assert [i["title"] for i in paged["items"]] == ["KeyError: user 3", "disk 97% full"]
        assert paged["total"] == 3 and paged["has_more"] is False
        first = (await client.get(base, params={"limit": 1})).json()
        assert first["has_more"] is True

        detail = (await client.get(f"/api/v1/issues/{key_error['id']}")).json()
        assert detail == key_error
        events = (
            await client.get(f"/api/v1/issues/{key_error['id']}/events", params={"limit": 2})
        ).json()
        assert events["total"] == 3 and events["has_more"]
        assert [e["exception"]["value"] for e in events["items"]] == ["user 3", "user 2"]
        assert "payload" not in events["items"][0]
        one = (await client.get(f"/api/v1/error-events/{events['items'][0]['id']}")).json()
        assert one["payload"]["exception"]["values"][0]["value"] == "user 3"
        assert one["issue_id"] == key_error["id"]

        bad = await client.get(base, params={"sort": "bogus"})
        assert bad.status_code == 422 and "sort" in bad.json()["detail"]
        assert (await client.get("/api/v1/issues/999999")).status_code == 404
        assert (await client.get("/api/v1/error-events/nope")).status_code == 404
        assert (await client.get("/api/v1/projects/no-such-project/issues")).status_code == 404


async def test_resolve_ignore_unresolve_and_regression(make_app: Any, make_project: Any) -> None:
    project = await make_project()
    async with make_app() as client:
        await _send(client, project, _exc("ValueError", "x", "f", T0))
        issue = (await client.get(f"/api/v1/projects/{project['id']}/issues")).json()["items"][0]
        url = f"/api/v1/issues/{issue['id']}"

        r = await client.patch(url, json={"status": "resolved"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "resolved" and r.json()["resolved_at"] is not None
        listed = (
            await client.get(
                f"/api/v1/projects/{project['id']}/issues", params={"status": "resolved"}
            )
        ).json()
        assert [i["id"] for i in listed["items"]] == [issue["id"]]

        # a new event reopens it and marks it regressed
        await _send(client, project, _exc("ValueError", "y", "f", T0 + timedelta(hours=1)))
        reopened = (await client.get(url)).json()
        assert reopened["status"] == "unresolved" and reopened["is_regressed"] is True
        assert reopened["resolved_at"] is None and reopened["event_count"] == 2
        regressed = (
            await client.get(
                f"/api/v1/projects/{project['id']}/issues", params={"status": "regressed"}
            )
        ).json()
        assert [i["id"] for i in regressed["items"]] == [issue["id"]]

        r = await client.patch(url, json={"status": "ignored"})
        assert r.json()["status"] == "ignored" and r.json()["is_regressed"] is False
        # events for an ignored issue keep it ignored
        await _send(client, project, _exc("ValueError", "z", "f", T0 + timedelta(hours=2)))
        assert (await client.get(url)).json()["status"] == "ignored"
        r = await client.patch(url, json={"status": "unresolved"})
        assert r.json()["status"] == "unresolved"

        bad = await client.patch(url, json={"status": "deleted"})
        assert bad.status_code == 422 and bad.json()["detail"].startswith("status")
        assert (
            await client.patch("/api/v1/issues/424242", json={"status": "resolved"})
        ).status_code == 404


async def test_tenants_cannot_see_or_change_each_other(
    make_app: Any, make_project: Any, production_settings: dict[str, Any]
) -> None:
    a = await make_project("tenant-a")
    b = await make_project("tenant-b")
    async with make_app(**production_settings) as client:
        await _send(client, a, _exc("ValueError", "a", "fa", T0))
        await _send(client, b, _exc("ValueError", "b", "fb", T0))
        ha = {"Authorization": f"Bearer {a['secret_key']}"}
        hb = {"Authorization": f"Bearer {b['secret_key']}"}
        a_issue = (await client.get(f"/api/v1/projects/{a['id']}/issues", headers=ha)).json()[
            "items"
        ][0]
        a_event = (await client.get(f"/api/v1/issues/{a_issue['id']}/events", headers=ha)).json()[
            "items"
        ][0]

        assert (
            await client.get(f"/api/v1/projects/{a['id']}/issues", headers=hb)
        ).status_code == 404
        assert (await client.get(f"/api/v1/issues/{a_issue['id']}", headers=hb)).status_code == 404
        assert (
            await client.get(f"/api/v1/issues/{a_issue['id']}/events", headers=hb)
        ).status_code == 404
        assert (
            await client.get(f"/api/v1/error-events/{a_event['id']}", headers=hb)
        ).status_code == 404
        assert (
            await client.get(f"/api/v1/error-events/{a_event['event_id']}", headers=hb)
        ).status_code == 404
        r = await client.patch(
            f"/api/v1/issues/{a_issue['id']}", json={"status": "resolved"}, headers=hb
        )
        assert r.status_code == 404
        assert (await client.get(f"/api/v1/issues/{a_issue['id']}", headers=ha)).json()[
            "status"
        ] == "unresolved"
        # without credentials (production) and with a public key: no reads
        assert (await client.get(f"/api/v1/projects/{a['id']}/issues")).status_code == 401
        pk = {"Authorization": f"Bearer {a['public_key']}"}
        assert (
            await client.get(f"/api/v1/projects/{a['id']}/issues", headers=pk)
        ).status_code == 403
        # the owner can
        assert (
            await client.get(f"/api/v1/error-events/{a_event['event_id']}", headers=ha)
        ).status_code == 200
        r = await client.patch(
            f"/api/v1/issues/{a_issue['id']}", json={"status": "resolved"}, headers=ha
        )
        assert r.status_code == 200


async def test_dsn_in_the_api(make_app: Any, make_project: Any) -> None:
    project = await make_project()
    async with make_app() as client:
        data = (await client.get(f"/api/v1/projects/{project['slug']}/dsn")).json()
        assert data["dsn"] == f"http://{project['public_key']}@testserver/{project['id']}"
        assert data["envelope_url"] == f"http://testserver/api/{project['id']}/envelope/"
    async with make_app(public_url="https://errors.example.com/gati") as client:
        data = (await client.get(f"/api/v1/projects/{project['id']}/dsn")).json()
        assert (
            data["dsn"]
            == f"https://{project['public_key']}@errors.example.com/gati/{project['id']}"
        )


async def test_error_settings_drive_retention_and_rate_limit(
    make_app: Any, make_project: Any, db: Any, production_settings: dict[str, Any]
) -> None:
    from gati.errors import service
    from gati.settings import Settings

    project = await make_project("settings-a", settings={"timezone": "Europe/Paris"})
    other = await make_project("settings-b")
    owner = {"Authorization": f"Bearer {project['secret_key']}"}
    url = f"/api/v1/projects/{project['id']}/error-settings"
    async with make_app(**production_settings, errors_retention_days=90) as client:
        data = (await client.get(url, headers=owner)).json()
        assert data["retention_days"] == 90 and data["retention_days_is_default"] is True
        assert data["rate_limit"] == "100/second;burst=1000" and data["rate_limit_is_default"]

        r = await client.patch(url, json={"retention_days": 0}, headers=owner)
        assert r.status_code == 422
        r = await client.patch(url, json={"rate_limit": "lots"}, headers=owner)
        assert r.status_code == 422 and "rate_limit" in r.json()["detail"]
        # another project's key can neither read nor change them
        other_key = {"Authorization": f"Bearer {other['secret_key']}"}
        assert (await client.get(url, headers=other_key)).status_code == 404
        r = await client.patch(url, json={"retention_days": 1}, headers=other_key)
        assert r.status_code == 404

        r = await client.patch(
            url, json={"retention_days": 5, "rate_limit": "1/minute"}, headers=owner
        )
        assert r.status_code == 200, r.text
        assert r.json()["retention_days"] == 5 and r.json()["rate_limit"] == "1/minute"

        # the new limit applies at once (the key cache was cleared)
        statuses = []
        for age_days in (1, 9):
            ts = datetime.now(UTC) - timedelta(days=age_days)
            r = await client.post(
                f"/api/{project['id']}/envelope/",
                content=envelope(_exc("ValueError", "x", "f", ts)),
                headers=auth(project["public_key"]),
            )
            statuses.append(r.status_code)
        assert statuses == [200, 429] and "X-Sentry-Rate-Limits" in r.headers

        r = await client.patch(url, json={"rate_limit": "off"}, headers=owner)
        assert r.json()["rate_limit"] is None and r.json()["rate_limit_is_default"] is False
        ts = datetime.now(UTC) - timedelta(days=9)
        r = await client.post(
            f"/api/{project['id']}/envelope/",
            content=envelope(_exc("ValueError", "x", "f", ts)),
            headers=auth(project["public_key"]),
        )
        assert r.status_code == 200

        # retention uses the project's 5 days: the 9-day-old event goes, the issue stays right
        deleted = await service.apply_retention(
            db, settings=Settings(database_url=db.url, errors_retention_days=90)
        )
        assert deleted.get(project["id"]) == 1
        issue = (
            await client.get(f"/api/v1/projects/{project['id']}/issues", headers=owner)
        ).json()["items"][0]
        assert issue["event_count"] == 1 and issue["times_seen"] == 2

        # null returns to the default; other keys of the project's settings are untouched
        r = await client.patch(
            url, json={"retention_days": None, "rate_limit": None}, headers=owner
        )
        assert r.json()["retention_days"] == 90 and r.json()["rate_limit_is_default"] is True
    async with db.read_session() as session:
        from gati.projects.service import get_project

        stored = await get_project(session, str(project["id"]))
    assert stored is not None and stored.settings == {"timezone": "Europe/Paris"}
