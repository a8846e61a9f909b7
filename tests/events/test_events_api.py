"""Product events over HTTP: single and batch ingest, the shared path with seed-002 error
reports, validation, idempotency, listing with filters and cursors. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import gzip
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from gati.db.types import utcnow
from gati.events.models import Event
from tests.auth.helpers import bearer, error_code

E = "/api/v1/events"


async def _stored(db: Any, *where: Any) -> list[Event]:
    async with db.read_session() as session:
        stmt = select(Event).order_by(Event.timestamp, Event.id)
        for clause in where:
            stmt = stmt.where(clause)
        return list((await session.execute(stmt)).scalars())


# --- single ---------------------------------------------------------------------------------


async def test_single_event_is_committed_when_acknowledged(client: Any, db: Any) -> None:
    before = utcnow()
    response = await client.post(
        E, json={"event_type": "signup", "properties": {"plan": "pro", "seats": 3}}
    )
    after = utcnow()
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["event_type"] == "signup" and body["duplicate"] is False
    # Read through a separate connection: the row is committed.
    [row] = await _stored(db, Event.id == body["id"])
    assert row.properties == {"plan": "pro", "seats": 3}
    assert before <= row.timestamp <= after  # defaults to receipt time
    assert row.received_at == row.timestamp
    assert row.project_id == body["project_id"] == client.app.state.default_project_id


async def test_name_alias_explicit_timestamp_and_client_id(client: Any, db: Any) -> None:
    response = await client.post(
        E,
        json={
            "name": "purchase",
            "timestamp": "2024-01-15T14:00:00+02:00",
            "event_id": "order-17",
            "properties": {"amount": 12.5, "items": [{"sku": "a"}]},
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["id"] == "order-17"
    [row] = await _stored(db, Event.id == "order-17")
    assert row.event_type == "purchase"
    assert row.timestamp == datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
    assert row.properties["items"] == [{"sku": "a"}]


async def test_retried_event_is_stored_once(client: Any, db: Any) -> None:
    payload = {"event_type": "signup", "event_id": "evt-1"}
    first = await client.post(E, json=payload)
    second = await client.post(E, json={**payload, "properties": {"changed": True}})
    assert first.status_code == second.status_code == 201
    assert (first.json()["duplicate"], second.json()["duplicate"]) == (False, True)
    [row] = await _stored(db, Event.id == "evt-1")
    assert row.properties == {}
    # Concurrent duplicates share a commit group: still one row, one "created".
    results = await asyncio.gather(
        *[client.post(E, json={"event_type": "x", "event_id": "evt-2"}) for _ in range(10)]
    )
    assert all(r.status_code == 201 for r in results)
    assert sum(not r.json()["duplicate"] for r in results) == 1
    assert len(await _stored(db, Event.id == "evt-2")) == 1


async def test_concurrent_single_events_all_committed(client: Any, db: Any) -> None:
    results = await asyncio.gather(
        *[client.post(E, json={"event_type": "burst", "properties": {"i": i}}) for i in range(300)]
    )
    assert [r.status_code for r in results] == [201] * 300
    rows = await _stored(db, Event.event_type == "burst")
    assert sorted(r.properties["i"] for r in rows) == list(range(300))
    assert {r.id for r in rows} == {r.json()["id"] for r in results}
    # The writes shared transactions (group commit).
    assert client.app.state.committer.groups_committed < 300


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "event_type"),
        ({"properties": {"a": 1}}, "event_type"),
        ({"message": "half an error report"}, "event_type"),
        ({"event_type": ""}, "event_type"),
        ({"event_type": "x" * 201}, "event_type"),
        ({"event_type": 7}, "event_type"),
        ({"name": "a", "event_type": "b"}, "name"),
        ({"event_type": "x", "timestamp": "not a time"}, "timestamp"),
        ({"event_type": "x", "properties": [1, 2]}, "properties"),
        ({"event_type": "x", "event_id": ""}, "event_id"),
        ({"event_type": "x", "event_id": {"a": 1}}, "event_id"),
        ({"event_type": "x", "project": 1.5}, "project"),
        ({"event_type": "x", "plan": "pro"}, "plan"),
        # Both shapes at once: refused, never silently stored as either.
        ({"event_type": "x", "project_key": "p", "message": "m"}, "project_key"),
        ([{"event_type": "x"}], "body"),
        ("just text", "body"),
    ],
)
async def test_bad_events_are_refused_naming_the_field(
    client: Any, db: Any, payload: Any, field: str
) -> None:
    response = await client.post(E, json=payload)
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"{field}:"), response.json()
    assert await _stored(db) == []


async def test_bad_bodies(make_app: Any, db: Any) -> None:
    async with make_app(max_event_size_mb=0.001) as client:
        malformed = await client.post(
            E, content=b'{"event_type": ', headers={"Content-Type": "application/json"}
        )
        assert malformed.status_code == 400 and error_code(malformed) == "malformed_json"
        wrong_type = await client.post(
            E,
            content=b"event_type=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert wrong_type.status_code == 415
        empty = await client.post(E, content=b"", headers={"Content-Type": "application/json"})
        assert empty.status_code == 400
        too_big = await client.post(E, json={"event_type": "x", "properties": {"b": "x" * 5000}})
        assert too_big.status_code == 413
        gzipped = await client.post(
            E,
            content=gzip.compress(orjson.dumps({"event_type": "zipped"})),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        assert gzipped.status_code == 201, gzipped.text
        bomb = gzip.compress(orjson.dumps({"event_type": "x", "properties": {"b": "y" * 100_000}}))
        response = await client.post(
            E,
            content=bomb,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        assert response.status_code == 413
    assert [r.event_type for r in await _stored(db)] == ["zipped"]


async def test_project_named_in_body_or_query(client: Any, make_project: Any, db: Any) -> None:
    shop = await make_project("shop")
    by_slug = await client.post(E, json={"event_type": "a", "project": "shop"})
    by_id = await client.post(E, json={"event_type": "b", "project": shop["id"]})
    by_query = await client.post(f"{E}?project=shop", json={"event_type": "c"})
    for response in (by_slug, by_id, by_query):
        assert response.status_code == 201 and response.json()["project_id"] == shop["id"]
    unknown = await client.post(E, json={"event_type": "d", "project": "no-such-project"})
    assert unknown.status_code == 404 and error_code(unknown) == "project_not_found"
    assert len(await _stored(db, Event.project_id == shop["id"])) == 3


async def test_key_scopes_ingest(
    make_app: Any, production_settings: dict[str, Any], make_project: Any, db: Any
) -> None:
    mine = await make_project("mine")
    theirs = await make_project("theirs")
    async with make_app(**production_settings) as client:
        assert (await client.post(E, json={"event_type": "x"})).status_code == 401
        ok = await client.post(E, json={"event_type": "x"}, headers=bearer(mine["secret_key"]))
        assert ok.status_code == 201 and ok.json()["project_id"] == mine["id"]
        public = await client.post(
            E, json={"event_type": "x"}, headers={"X-API-Key": mine["public_key"]}
        )
        assert public.status_code == 201 and public.json()["project_id"] == mine["id"]
        for ref in (theirs["id"], theirs["slug"]):
            refused = await client.post(
                E, json={"event_type": "x", "project": ref}, headers=bearer(mine["secret_key"])
            )
            assert refused.status_code == 404
        # A public key ingests but never reads.
        read = await client.get(E, headers={"X-API-Key": mine["public_key"]})
        assert read.status_code == 403
    assert await _stored(db, Event.project_id == theirs["id"]) == []


# --- the shared path: seed-002 error reports ---------------------------------------------------


async def test_seed_002_error_report_on_the_same_path(client: Any, db: Any) -> None:
    report = {
        "project_key": "my-project",
        "message": "Error message",
        "stack": "Error: message\n    at handler (/app/server.js:10:5)",
        "method": "GET",
        "path": "/api/users/:id",
        "status_code": 500,
        "timestamp": "2024-01-15T12:00:00Z",
    }
    response = await client.post(E, json=report)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "timestamp", "message"}
    assert body["message"] == "Error message"
    # Stored as an error event, not as a product event.
    assert await _stored(db) == []
    from gati.errors.models import ErrorEvent

    async with db.read_session() as session:
        count = (await session.execute(select(func.count()).select_from(ErrorEvent))).scalar_one()
    assert count == 1
    # And a product event right after it is a product event.
    event = await client.post(E, json={"event_type": "signup"})
    assert event.status_code == 201 and "duplicate" in event.json()


# --- batch ----------------------------------------------------------------------------------


async def test_batch_with_per_item_errors(client: Any, db: Any) -> None:
    events = [
        {"event_type": "a", "event_id": "b-1"},
        {"properties": {}},  # 1: no type
        {"name": "b", "timestamp": "2024-01-15T12:00:00Z"},
        {"event_type": "c", "timestamp": "yesterday"},  # 3
        "not an object",  # 4
        {"event_type": "a", "event_id": "b-1"},  # duplicate of 0 within the batch
        {"event_type": "d", "project": "no-such-project"},  # 6
    ]
    response = await client.post(f"{E}/batch", json={"events": events})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "partial"
    assert body["count"] == 3 and body["failed"] == 4 and body["duplicates"] == 1
    assert {(e["index"], e["field"]) for e in body["errors"]} == {
        (1, "event_type"),
        (3, "timestamp"),
        (4, "body"),
        (6, "project"),
    }
    assert all(e["message"] for e in body["errors"])
    ids = body["ids"]
    assert ids[0] == ids[5] == "b-1" and ids[1] is None and ids[2] is not None
    rows = await _stored(db)
    assert sorted(r.event_type for r in rows) == ["a", "b"]
    # A retried batch stores nothing new.
    retry = await client.post(f"{E}/batch", json=[events[0]])
    assert retry.json()["duplicates"] == 1
    assert len(await _stored(db)) == 2


async def test_batch_refusals(make_app: Any, db: Any) -> None:
    async with make_app(max_batch_size=5) as client:
        none_valid = await client.post(f"{E}/batch", json={"events": [{}, {"name": ""}]})
        assert none_valid.status_code == 422 and error_code(none_valid) == "no_valid_events"
        assert [e["index"] for e in none_valid.json()["errors"]] == [0, 1]
        empty = await client.post(f"{E}/batch", json={"events": []})
        assert empty.status_code == 422
        wrong = await client.post(f"{E}/batch", json={"event_type": "x"})
        assert wrong.status_code == 422
        too_many = await client.post(f"{E}/batch", json=[{"event_type": "x"}] * 6)
        assert too_many.status_code == 413
        ok = await client.post(f"{E}/batch", json=[{"event_type": "x"}] * 5)
        assert ok.status_code == 200 and ok.json()["status"] == "success"
    assert len(await _stored(db)) == 5


# --- reads ----------------------------------------------------------------------------------


async def _seed(client: Any, events: list[dict[str, Any]]) -> None:
    response = await client.post(f"{E}/batch", json={"events": events})
    assert response.status_code == 200 and response.json()["failed"] == 0, response.text


T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


async def test_list_filters(client: Any) -> None:
    await _seed(
        client,
        [
            {
                "event_type": "signup",
                "timestamp": _at(1),
                "event_id": "e1",
                "properties": {"plan": "pro", "seats": 3},
            },
            {
                "event_type": "signup",
                "timestamp": _at(2),
                "event_id": "e2",
                "properties": {"plan": "free", "seats": "3"},
            },
            {
                "event_type": "login",
                "timestamp": _at(3),
                "event_id": "e3",
                "properties": {"plan": "pro", "trial": True},
            },
            {
                "event_type": "purchase",
                "timestamp": _at(4),
                "event_id": "e4",
                "properties": {"plan": "team", "trial": False, "coupon": None},
            },
            {
                "event_type": "login",
                "timestamp": _at(5),
                "event_id": "e5",
                "properties": {"plan": "pro", "seats": 3.0},
            },
        ],
    )

    async def ids(query: str) -> list[str]:
        response = await client.get(f"{E}?{query}")
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()["items"]]

    assert await ids("") == ["e5", "e4", "e3", "e2", "e1"]  # newest first
    assert await ids("event_type=login") == ["e5", "e3"]
    assert await ids("event_type=login&event_type=signup") == ["e5", "e3", "e2", "e1"]
    assert await ids(f"start={_at(2)}&end={_at(4)}".replace("+", "%2B")) == ["e3", "e2"]
    assert await ids("property.plan=pro") == ["e5", "e3", "e1"]
    assert await ids("property.plan=pro&event_type=signup") == ["e1"]
    assert await ids("property.plan=pro&property.plan=team") == ["e5", "e4", "e3", "e1"]
    # Shorthand text matches the string and the number it spells; JSON form is typed.
    assert await ids("property.seats=3") == ["e5", "e2", "e1"]
    assert await ids('properties={"seats":3}') == ["e5", "e1"]
    assert await ids('properties={"seats":"3"}') == ["e2"]
    assert await ids("property.trial=true") == ["e3"]
    assert await ids('properties={"trial":false}') == ["e4"]
    assert await ids('properties={"coupon":null}') == ["e4"]  # missing keys never match null
    assert await ids('properties={"plan":"pro","trial":true}') == ["e3"]
    assert await ids("property.nope=1") == []

    bad = await client.get(f"{E}?properties=not-json")
    assert bad.status_code == 422 and bad.json()["detail"].startswith("properties:")
    bad = await client.get(f'{E}?properties={{"a":{{"b":1}}}}')
    assert bad.status_code == 422
    bad = await client.get(f"{E}?start={_at(5)}&end={_at(1)}".replace("+", "%2B"))
    assert bad.status_code == 422
    bad = await client.get(f"{E}?limit=0")
    assert bad.status_code == 422
    bad = await client.get(f"{E}?cursor=garbage")
    assert bad.status_code == 400 and error_code(bad) == "invalid_cursor"


async def test_cursor_pages_are_complete_and_stable(client: Any) -> None:
    # 25 events, many sharing a timestamp, so that ties are broken by id.
    await _seed(
        client,
        [
            {
                "event_type": "p",
                "timestamp": _at(i // 4),
                "event_id": f"id-{i:02d}",
                "properties": {"i": i},
            }
            for i in range(25)
        ],
    )
    expected = sorted(
        (f"id-{i:02d}" for i in range(25)), key=lambda x: (int(x[3:]) // 4, x), reverse=True
    )
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        url = f"{E}?limit=4" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url)).json()
        seen += [e["id"] for e in page["items"]]
        pages += 1
        if pages == 2:
            # Newer events arriving while paging do not shift the pages still to come.
            await _seed(client, [{"event_type": "p", "timestamp": _at(100), "event_id": "late"}])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert pages == 7
    # With filters too.
    page = (await client.get(f"{E}?limit=2&property.i=24")).json()
    assert [e["id"] for e in page["items"]] == ["id-24"] and page["next_cursor"] is None


async def test_get_one(client: Any, make_project: Any) -> None:
    response = await client.post(
        E, json={"event_type": "x", "event_id": "one", "properties": {"k": "v"}}
    )
    got = await client.get(f"{E}/one")
    assert got.status_code == 200
    assert got.json() == {
        "id": "one",
        "project_id": response.json()["project_id"],
        "event_type": "x",
        "timestamp": response.json()["timestamp"],
        "received_at": got.json()["received_at"],
        "properties": {"k": "v"},
    }
    missing = await client.get(f"{E}/nope")
    assert missing.status_code == 404 and error_code(missing) == "event_not_found"
    # The same client id in two visible projects: ambiguous unless a project is named.
    other = await make_project("other")
    await client.post(E, json={"event_type": "y", "event_id": "one", "project": other["id"]})
    assert (await client.get(f"{E}/one")).status_code == 409
    named = await client.get(f"{E}/one?project=other")
    assert named.status_code == 200 and named.json()["event_type"] == "y"


# --- users' tokens -----------------------------------------------------------------------------


async def test_user_tokens_write_to_the_personal_project_and_read_only_their_own(
    make_app: Any, production_settings: dict[str, Any], db: Any
) -> None:
    from tests.auth.helpers import register

    async with make_app(**production_settings) as client:
        ada = await register(client)
        bob = await register(client)
        personal = ada["user"]["default_project_id"]
        sent = await client.post(
            E, json={"event_type": "signup", "event_id": "ada-1"}, headers=ada["headers"]
        )
        assert sent.status_code == 201 and sent.json()["project_id"] == personal
        # A project Ada creates can be named; without a name her personal project is used.
        shop = (
            await client.post("/api/v1/projects", json={"name": "Shop"}, headers=ada["headers"])
        ).json()
        named = await client.post(
            f"{E}/batch",
            json=[{"event_type": "order", "event_id": "ada-2", "project": shop["slug"]}],
            headers=ada["headers"],
        )
        assert named.status_code == 200 and named.json()["count"] == 1
        listed = await client.get(E, headers=ada["headers"])
        assert [e["id"] for e in listed.json()["items"]] == ["ada-2", "ada-1"]
        only_shop = await client.get(f"{E}?project={shop['id']}", headers=ada["headers"])
        assert [e["id"] for e in only_shop.json()["items"]] == ["ada-2"]

        # Bob sees none of it, cannot name Ada's projects, and Ada's ids are not his.
        assert (await client.get(E, headers=bob["headers"])).json()["items"] == []
        assert (await client.get(f"{E}/ada-1", headers=bob["headers"])).status_code == 404
        for ref in (personal, shop["id"], shop["slug"]):
            read = await client.get(f"{E}?project={ref}", headers=bob["headers"])
            assert read.status_code == 404 and error_code(read) == "project_not_found"
            write = await client.post(
                E, json={"event_type": "x", "project": ref}, headers=bob["headers"]
            )
            assert write.status_code == 404, write.text
            batch = await client.post(
                f"{E}/batch", json=[{"event_type": "x", "project": ref}], headers=bob["headers"]
            )
            assert batch.status_code == 422 and batch.json()["errors"][0]["field"] == "project"
        # The same client event id in Bob's own project is Bob's own event.
        mine = await client.post(
            E, json={"event_type": "bob", "event_id": "ada-1"}, headers=bob["headers"]
        )
        assert mine.status_code == 201 and mine.json()["duplicate"] is False
        assert (await client.get(f"{E}/ada-1", headers=ada["headers"])).json()["event_type"] == (
            "signup"
        )
        assert (await client.get(f"{E}/ada-1", headers=bob["headers"])).json()["event_type"] == (
            "bob"
        )
    assert len(await _stored(db, Event.project_id == personal)) == 1


async def test_a_failing_live_publish_does_not_fail_a_committed_event(client: Any, db: Any) -> None:
    """The live fan-out (Redis in production) failing after the commit is logged; the event is
    stored and acknowledged, so a client never retries an event that was stored."""

    class BrokenBackend:
        name = "broken"

        async def publish(self, topic: str, data: bytes) -> None:
            raise ConnectionError("redis is down")

    hub = client.app.state.realtime.hub
    working = hub.backend
    hub.backend = BrokenBackend()
    try:
        single = await client.post(E, json={"event_type": "x", "event_id": "p-1"})
        batch = await client.post(f"{E}/batch", json=[{"event_type": "x", "event_id": "p-2"}])
    finally:
        hub.backend = working
    assert single.status_code == 201, single.text
    assert batch.status_code == 200, batch.text
    assert {r.id for r in await _stored(db)} == {"p-1", "p-2"}


async def test_shared_path_credentials_in_production(
    make_app: Any, production_settings: dict[str, Any], make_project: Any, db: Any
) -> None:
    """Product events need a credential header; a seed-002 report may instead carry its
    project's public key as ``project_key`` (the error-tracking service checks it)."""
    project = await make_project("reports")
    async with make_app(**production_settings) as client:
        event = await client.post(E, json={"event_type": "x"})
        assert event.status_code == 401 and error_code(event) == "authentication_required"
        report = await client.post(
            E, json={"project_key": project["public_key"], "message": "boom"}
        )
        assert report.status_code == 201, report.text
        assert set(report.json()) == {"id", "timestamp", "message"}
        anonymous = await client.post(E, json={"project_key": "reports", "message": "boom"})
        assert anonymous.status_code == 401
    assert await _stored(db) == []


async def test_documented_response_shapes_match_the_answers(client: Any) -> None:
    """The OpenAPI models of the events answers list exactly the fields that are sent."""
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    single = await client.post(E, json={"event_type": "x"})
    batch = await client.post(f"{E}/batch", json=[{"event_type": "x"}, {}])
    page = await client.get(E)
    one = await client.get(f"{E}/{single.json()['id']}")
    assert set(single.json()) == set(schemas["EventAccepted"]["properties"])
    assert set(batch.json()) == set(schemas["EventBatchResult"]["properties"])
    assert set(batch.json()["errors"][0]) == set(schemas["ItemError"]["properties"])
    assert set(page.json()) == set(schemas["EventPage"]["properties"])
    assert set(one.json()) == set(schemas["EventRead"]["properties"])
