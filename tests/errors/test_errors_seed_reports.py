"""Seed-002 error reports on the shared ``POST /api/v1/events``, on SQLite and PostgreSQL: local
mode (projects created on first use), production mode (keys required), shape disambiguation."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from gati.db.engine import Database
from gati.errors.models import ErrorEvent
from gati.projects import repository as projects_repo
from tests.errors.helpers import count_events, count_issues

REPORT = {
    "project_key": "my-project",
    "message": "Cannot read properties of undefined (reading 'id')",
    "stack": "TypeError: Cannot read properties of undefined (reading 'id')\n"
    "    at getUser (/srv/api/users.js:10:15)\n"
    "    at Layer.handle (/srv/node_modules/express/lib/router/layer.js:95:5)",
    "method": "GET",
    "path": "/api/users/:id",
    "status_code": 500,
    "timestamp": "2024-01-15T12:00:00Z",
}


async def test_seed_report_local_mode_creates_the_project(client: Any, db: Database) -> None:
    r = await client.post("/api/v1/events", json=REPORT)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"id", "timestamp", "message"}
    assert isinstance(body["id"], int)
    assert body["timestamp"].startswith("2024-01-15T12:00:00")
    assert body["message"] == REPORT["message"]
    async with db.read_session() as session:
        project = await projects_repo.get_by_slug(session, "my-project")
    assert project is not None

    event = (await client.get(f"/api/v1/error-events/{body['id']}")).json()
    assert event["source"] == "report" and event["platform"] == "javascript"
    assert event["exception"] == {"type": "TypeError", "value": REPORT["message"]}
    assert event["request"] == {"method": "GET", "url": "/api/users/:id", "status_code": 500}
    assert event["frames"][-1]["function"] == "getUser" and event["frames"][-1]["in_app"] is True
    assert event["payload"]["stack"] == REPORT["stack"]

    # same code path, other message: same issue; another project_key: another project and issue
    r2 = await client.post("/api/v1/events", json={**REPORT, "message": "other", "timestamp": None})
    assert r2.status_code == 201
    r3 = await client.post("/api/v1/events", json={**REPORT, "project_key": "Second Project"})
    assert r3.status_code == 201
    issues = (await client.get("/api/v1/projects/my-project/issues")).json()
    assert issues["total"] == 1 and issues["items"][0]["event_count"] == 2
    assert issues["items"][0]["culprit"] == "GET /api/users/:id"
    assert (await client.get("/api/v1/projects/second-project/issues")).json()["total"] == 1
    # the second call with the original spelling finds the same project
    r4 = await client.post("/api/v1/events", json={**REPORT, "project_key": "Second Project"})
    assert r4.status_code == 201
    assert (await client.get("/api/v1/projects/second-project/issues")).json()["items"][0][
        "event_count"
    ] == 2


async def test_minimal_report_and_validation(client: Any, db: Database) -> None:
    r = await client.post(
        "/api/v1/events", json={"project_key": "p1", "message": "Payment 123 declined"}
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/api/v1/events", json={"project_key": "p1", "message": "Payment 456 declined"}
    )
    assert r.status_code == 201
    assert (await client.get("/api/v1/projects/p1/issues")).json()["total"] == 1

    # a body with only one of the two markers is not an error report (gati.events.dispatch)
    for body in ({"project_key": "p1"}, {"message": "x"}):
        r = await client.post("/api/v1/events", json=body)
        assert r.status_code == 422, r.text
    for body, field in [
        ({"project_key": "p1", "message": "  "}, "message"),
        ({"project_key": "", "message": "x"}, "project_key"),
        ({"project_key": "p1", "message": 42}, "message"),
        ({"project_key": "p1", "message": "x", "status_code": 9999}, "status_code"),
        ({"project_key": "p1", "message": "x", "timestamp": "yesterday"}, "timestamp"),
    ]:
        r = await client.post("/api/v1/events", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["detail"].startswith(field), r.json()
    assert await count_events(db) == 2


async def test_event_id_makes_reports_idempotent(client: Any, db: Database) -> None:
    event_id = str(uuid.uuid4())
    first = await client.post("/api/v1/events", json={**REPORT, "event_id": event_id})
    second = await client.post("/api/v1/events", json={**REPORT, "event_id": event_id})
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert await count_events(db) == 1


async def test_product_events_and_error_reports_are_told_apart(client: Any, db: Database) -> None:
    r = await client.post(
        "/api/v1/events", json={"event_type": "signup", "properties": {"plan": "pro"}}
    )
    assert r.status_code == 201, r.text
    assert "message" not in r.json()
    # "message" inside properties does not make a product event an error report
    r = await client.post(
        "/api/v1/events",
        json={"name": "clicked", "properties": {"message": "hi", "project_key": "x"}},
    )
    assert r.status_code == 201, r.text
    assert await count_events(db) == 0 and await count_issues(db) == 0
    r = await client.post("/api/v1/events", json={"project_key": "shop", "message": "boom"})
    assert r.status_code == 201 and set(r.json()) == {"id", "timestamp", "message"}
    assert await count_events(db) == 1


async def test_production_mode_needs_the_projects_key(
    make_app: Any, make_project: Any, production_settings: dict[str, Any], db: Database
) -> None:
    project = await make_project("checkout")
    other = await make_project("other")
    report = {**REPORT, "project_key": project["slug"]}
    async with make_app(**production_settings) as client:
        r = await client.post("/api/v1/events", json=report)
        assert r.status_code == 401, r.text
        secret = {"Authorization": f"Bearer {project['secret_key']}"}
        r = await client.post("/api/v1/events", json=report, headers=secret)
        assert r.status_code == 201, r.text
        r = await client.post(
            "/api/v1/events", json=report, headers={"X-API-Key": project["public_key"]}
        )
        assert r.status_code == 201, r.text
        # the public key itself as project_key, with that key as credential
        r = await client.post(
            "/api/v1/events",
            json={**REPORT, "project_key": project["public_key"]},
            headers={"X-API-Key": project["public_key"]},
        )
        assert r.status_code == 201, r.text
        # another project's key: refused, says the project is not writable
        r = await client.post(
            "/api/v1/events",
            json=report,
            headers={"Authorization": f"Bearer {other['secret_key']}"},
        )
        assert r.status_code == 404 and r.json()["error"] == "project_not_found"
        # an unknown project is not created in production
        r = await client.post(
            "/api/v1/events", json={**REPORT, "project_key": "does-not-exist"}, headers=secret
        )
        assert r.status_code == 404 and "does not exist" in r.json()["detail"]
    async with db.read_session() as session:
        assert await projects_repo.get_by_slug(session, "does-not-exist") is None
        stored = (await session.scalars(select(ErrorEvent.project_id))).all()
    assert stored == [project["id"]] * 3
