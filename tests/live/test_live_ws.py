"""WS /api/v1/ws/metrics against real `gati serve` processes with a real WebSocket client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from gati.db.engine import Database
from tests.metrics.factories import UserFixture, make_user, revoke

SECRET = "test-secret-key-that-is-long-enough-0123456789"
PRODUCTION = {
    "ENVIRONMENT": "production",
    "SECRET_KEY": SECRET,
    "CORS_ORIGINS": "https://app.example.com",
    "LIVE_REVALIDATE_SECONDS": "0.3",
}


def ws_url(server: Any, token: str | None = None) -> str:
    url = server.url.replace("http://", "ws://") + "/api/v1/ws/metrics"
    return f"{url}?token={token}" if token else url


async def receive(ws: ClientConnection, kind: str) -> dict[str, Any]:
    """The next message of type ``kind`` (others are skipped)."""
    async with asyncio.timeout(10.0):
        while True:
            message = orjson.loads(await ws.recv())
            if message.get("type") == kind:
                return message  # type: ignore[no-any-return]


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    try:
        async with asyncio.timeout(10.0):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        assert closed.rcvd is not None
        return closed.rcvd.code, closed.rcvd.reason
    raise AssertionError("socket not closed")


async def subscribe(ws: ClientConnection, **message: Any) -> dict[str, Any]:
    await ws.send(orjson.dumps({"type": "subscribe", **message}).decode())
    return await receive(ws, "subscribed")


@pytest.fixture
async def users(
    db: Database, make_project: Callable[..., Any]
) -> tuple[dict[str, Any], dict[str, Any], UserFixture, UserFixture]:
    mine, theirs = await make_project("mine"), await make_project("theirs")
    me = await make_user(db, project_ids=[mine["id"]], secret=SECRET)
    other = await make_user(db, project_ids=[theirs["id"]], secret=SECRET)
    return mine, theirs, me, other


async def test_points_arrive_after_commit_and_other_tenants_stay_out(
    live_server: Callable[..., Any], users: Any
) -> None:
    mine, theirs, me, _ = users
    server = live_server(**PRODUCTION)
    async with (
        connect(ws_url(server, me.token())) as ws,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        welcome = await receive(ws, "welcome")
        assert welcome["user_id"] == me.id and welcome["expires_at"]
        ack = await subscribe(ws, project=mine["id"], metrics=["cpu"], events=True)
        assert ack == {
            "type": "subscribed",
            "project_id": mine["id"],
            "metrics": ["cpu"],
            "events": True,
            "aggregate": False,
        }
        # Another tenant's project: refused, the socket stays usable.
        await ws.send(
            orjson.dumps(
                {"type": "subscribe", "project": theirs["id"], "metrics": ["cpu"]}
            ).decode()
        )
        refused = await receive(ws, "error")
        assert refused["error"] == "project_not_found"
        await http.post(
            "/api/v1/metrics",
            json={"name": "cpu", "value": 5},
            headers={"Authorization": f"Bearer {theirs['secret_key']}"},
        )
        stored = await http.post(
            "/api/v1/metrics",
            json=[
                {"name": "cpu", "value": 1.5, "tags": {"host": "a"}},
                {"name": "mem", "value": 2},
            ],
            headers={"Authorization": f"Bearer {me.token()}"},
        )
        assert stored.status_code == 200
        message = await receive(ws, "metric")
        assert message["project_id"] == mine["id"] and message["name"] == "cpu"
        assert [p["value"] for p in message["points"]] == [1.5]
        assert message["points"][0]["id"] == stored.json()["ids"][0]
        await ws.send('{"type": "ping"}')
        assert (await receive(ws, "pong")) == {
            "type": "pong"
        }  # nothing from "theirs" or "mem" queued
        await ws.send('{"type": "unsubscribe", "metrics": ["cpu"]}')
        assert (await receive(ws, "unsubscribed"))["metrics"] == ["cpu"]


async def test_bad_tokens_are_refused_with_close_codes(
    live_server: Callable[..., Any], users: Any, db: Database
) -> None:
    mine, _, me, other = users
    server = live_server(**PRODUCTION)
    token = me.token()
    cases = {
        "invalid_token": token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
        "token_expired": me.token(ttl_seconds=-5),
        "wrong_token_type": me.token(token_type="refresh"),
    }
    for reason, bad in cases.items():
        async with connect(ws_url(server, bad)) as ws:
            assert await closed_with(ws) == (4401, reason)
    async with connect(ws_url(server, mine["public_key"])) as ws:
        assert await closed_with(ws) == (4403, "read_not_allowed")
    async with connect(ws_url(server)) as ws:  # production: no token
        await ws.send('{"type": "subscribe", "metrics": ["cpu"]}')
        assert await closed_with(ws) == (4401, "auth_required")
    await revoke(db, other)
    async with connect(ws_url(server, other.token())) as ws:
        assert await closed_with(ws) == (4401, "token_revoked")
    # First-message authentication (token kept out of the URL), then a secret key works too.
    async with connect(ws_url(server)) as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": me.token()}).decode())
        assert (await receive(ws, "welcome"))["user_id"] == me.id
    async with connect(ws_url(server, mine["secret_key"])) as ws:
        assert (await receive(ws, "welcome"))["project_id"] == mine["id"]
        assert (await subscribe(ws, metrics=["cpu"]))["project_id"] == mine["id"]


async def test_socket_closes_when_its_token_expires_or_is_revoked(
    live_server: Callable[..., Any], users: Any, db: Database
) -> None:
    _, _, me, _ = users
    server = live_server(**PRODUCTION)
    started = time.monotonic()
    async with connect(ws_url(server, me.token(ttl_seconds=2))) as ws:
        await receive(ws, "welcome")
        assert await closed_with(ws) == (4401, "token_expired")
    assert time.monotonic() - started < 6
    async with connect(ws_url(server, me.token())) as ws:
        await receive(ws, "welcome")
        await revoke(db, me)
        assert await closed_with(ws) == (4401, "token_revoked")


async def test_periodic_aggregate_updates(live_server: Callable[..., Any], users: Any) -> None:
    mine, _, me, _ = users
    server = live_server(**PRODUCTION)
    async with (
        connect(ws_url(server, me.token())) as ws,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        await http.post(
            "/api/v1/metrics",
            json=[{"name": "rps", "value": v} for v in (10, 20, 30)],
            headers={"Authorization": f"Bearer {me.token()}"},
        )
        await subscribe(
            ws,
            metrics=["rps"],
            aggregate={
                "functions": ["count", "avg"],
                "bucket": "hour",
                "window_seconds": 600,
                "interval_seconds": 1,
            },
        )
        first = await receive(ws, "aggregate")
        assert first["project_id"] == mine["id"] and first["name"] == "rps"
        assert sum(b["count"] for b in first["buckets"]) == 3
        await http.post(
            "/api/v1/metrics",
            json={"name": "rps", "value": 40},
            headers={"Authorization": f"Bearer {me.token()}"},
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            update = await receive(ws, "aggregate")
            if sum(b["count"] for b in update["buckets"]) == 4:
                break
        else:
            raise AssertionError("no aggregate update with the new point")


@pytest.mark.redis
async def test_redis_fans_out_between_two_server_processes(
    live_server: Callable[..., Any], users: Any, redis_url: str, redis_prefix: str
) -> None:
    mine, _, me, _ = users
    env = {**PRODUCTION, "REDIS_URL": redis_url, "REDIS_PREFIX": redis_prefix}
    subscriber_server, publisher_server = live_server(**env), live_server(**env)
    async with connect(ws_url(subscriber_server, me.token())) as ws:
        await subscribe(ws, metrics=["fan"])
        async with httpx.AsyncClient(base_url=publisher_server.url) as http:
            stored = await http.post(
                "/api/v1/metrics",
                json={"name": "fan", "value": 7},
                headers={"Authorization": f"Bearer {me.token()}"},
            )
            assert stored.status_code == 201
            health = await http.get("/health")
            assert health.json()["redis"] == "connected"
        message = await receive(ws, "metric")
        assert message["points"][0]["id"] == stored.json()["id"]
        assert message["project_id"] == mine["id"]
