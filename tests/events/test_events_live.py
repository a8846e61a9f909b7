"""Committed product events reach WebSocket subscribers of the project's events (and nothing
else does): a real ``gati serve`` process, a real WebSocket client, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
from sqlalchemy import select
from websockets.asyncio.client import ClientConnection, connect

from gati.events.models import Event
from tests.auth.helpers import bearer, register
from tests.conftest import PRODUCTION_SECRET

E = "/api/v1/events"
PRODUCTION = {
    "ENVIRONMENT": "production",
    "SECRET_KEY": PRODUCTION_SECRET,
    "CORS_ORIGINS": "https://app.example.com",
    "RATE_LIMIT_ENABLED": "false",
}


def _json(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


async def _next(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(10.0):
        message: dict[str, Any] = orjson.loads(await ws.recv())
        return message


async def _until(ws: ClientConnection, kind: str) -> list[dict[str, Any]]:
    """Every message up to and including the first of type ``kind``."""
    seen: list[dict[str, Any]] = []
    while True:
        seen.append(await _next(ws))
        if seen[-1].get("type") == kind:
            return seen


async def _nothing_queued(ws: ClientConnection) -> list[dict[str, Any]]:
    """Messages queued for this socket before a ping's pong (the pong itself excluded)."""
    await ws.send('{"type": "ping"}')
    return (await _until(ws, "pong"))[:-1]


async def _stored_ids(db: Any, ids: list[str]) -> set[str]:
    async with db.read_session() as session:
        rows = await session.execute(select(Event.id).where(Event.id.in_(ids)))
        return set(rows.scalars())


async def test_committed_events_are_published_to_subscribers(live_server: Any, db: Any) -> None:
    server = live_server(**PRODUCTION)
    ws_url = server.url.replace("http://", "ws://") + "/api/v1/ws/metrics"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        me = await register(http)
        other = await register(http)
        mine = me["user"]["default_project_id"]
        async with connect(f"{ws_url}?token={me['access_token']}") as ws:
            assert (await _until(ws, "welcome"))[-1]["user_id"] == me["user"]["id"]
            await ws.send(_json({"type": "subscribe", "project": mine, "events": True}))
            assert (await _until(ws, "subscribed"))[-1]["events"] is True

            # One event: the message arrives while the request may still be in flight, and the
            # event is already committed when it does (published after commit, never before).
            post = asyncio.create_task(
                http.post(
                    E,
                    json={"event_type": "signup", "event_id": "live-1", "properties": {"a": 1}},
                    headers=me["headers"],
                )
            )
            message = (await _until(ws, "event"))[-1]
            assert await _stored_ids(db, ["live-1"]) == {"live-1"}
            response = await post
            assert response.status_code == 201, response.text
            assert message["project_id"] == mine
            [event] = message["events"]
            assert event["id"] == "live-1" and event["event_type"] == "signup"
            assert event["properties"] == {"a": 1}
            assert event["timestamp"] == response.json()["timestamp"]
            assert event["timestamp"].endswith("Z")

            # A batch: one message with the new events only (not the duplicate, not the invalid).
            batch = await http.post(
                f"{E}/batch",
                json={
                    "events": [
                        {"event_type": "a", "event_id": "live-2"},
                        {"event_type": "a", "event_id": "live-1"},  # stored before
                        {"properties": {}},  # invalid
                        {"name": "b", "event_id": "live-3"},
                    ]
                },
                headers=me["headers"],
            )
            assert batch.status_code == 200 and batch.json()["failed"] == 1, batch.text
            message = (await _until(ws, "event"))[-1]
            assert [e["id"] for e in message["events"]] == ["live-2", "live-3"]

            # Nothing is published for a duplicate, a refused event, an error report, another
            # user's project or another event type of a project this socket does not watch.
            duplicate = await http.post(
                E, json={"event_type": "signup", "event_id": "live-1"}, headers=me["headers"]
            )
            assert duplicate.status_code == 201 and duplicate.json()["duplicate"] is True
            refused = await http.post(E, json={"properties": {}}, headers=me["headers"])
            assert refused.status_code == 422
            theirs = await http.post(
                E, json={"event_type": "theirs", "event_id": "live-x"}, headers=other["headers"]
            )
            assert theirs.status_code == 201
            report = await http.post(
                E,
                json={"project_key": "whatever", "message": "boom"},
                headers=me["headers"],
            )
            assert report.status_code < 500
            assert await _nothing_queued(ws) == []

            # Unsubscribed: no more events.
            await ws.send(_json({"type": "unsubscribe", "project": mine, "events": True}))
            await _until(ws, "unsubscribed")
            later = await http.post(
                E, json={"event_type": "late", "event_id": "live-4"}, headers=me["headers"]
            )
            assert later.status_code == 201
            assert await _nothing_queued(ws) == []

        # A secret key of the project subscribes too, and receives key-ingested events.
        project = (
            await http.post("/api/v1/projects", json={"name": "Shop"}, headers=me["headers"])
        ).json()
        async with connect(f"{ws_url}?token={project['secret_key']}") as ws:
            await _until(ws, "welcome")
            await ws.send(_json({"type": "subscribe", "project": project["id"], "events": True}))
            await _until(ws, "subscribed")
            sent = await http.post(
                E, json={"event_type": "keyed"}, headers=bearer(project["public_key"])
            )
            assert sent.status_code == 201, sent.text
            message = (await _until(ws, "event"))[-1]
            assert message["project_id"] == project["id"]
            assert [e["id"] for e in message["events"]] == [sent.json()["id"]]
