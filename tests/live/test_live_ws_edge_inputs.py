"""WS /api/v1/ws/metrics with messages a client should not send, against a real `gati serve` on
each database: an error message that names the problem and a socket that stays usable, never
a close with 1011 internal_error."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
from websockets.asyncio.client import connect

from gati.db.engine import Database
from tests.live.test_live_ws import PRODUCTION, SECRET, receive, ws_url
from tests.metrics.factories import make_user


async def test_bad_messages_get_an_error_and_the_socket_stays_open(
    live_server: Callable[..., Any], db: Database, make_project: Callable[..., Any]
) -> None:
    project = await make_project("mine")
    me = await make_user(db, project_ids=[project["id"]], secret=SECRET)
    server = live_server(**PRODUCTION)
    async with connect(ws_url(server, me.token())) as ws:
        await receive(ws, "welcome")
        await ws.send(b"\x00binary")
        error = await receive(ws, "error")
        assert error["error"] == "invalid_message" and "binary" in error["detail"]
        bad_aggregates = [
            ({"window_seconds": 1e308}, "window_seconds"),
            ({"window_seconds": 2**70}, "window_seconds"),
            ({"window_seconds": 10_000 * 366 * 86400}, "window_seconds"),
            ({"window_seconds": "nan"}, "window_seconds"),
            ({"interval_seconds": 1e308}, "interval_seconds"),
            ({"functions": [1]}, "functions"),
        ]
        for aggregate, field in bad_aggregates:
            message = {"type": "subscribe", "project": project["id"], "metrics": ["cpu"]}
            await ws.send(json.dumps({**message, "aggregate": aggregate}))  # big ints as sent
            error = await receive(ws, "error")
            assert error["error"] == "invalid_message" and field in error["detail"], error
        await ws.send(
            orjson.dumps({"type": "subscribe", "project": "a\x00", "metrics": ["m"]}).decode()
        )
        error = await receive(ws, "error")
        assert error["error"] == "project_not_found", error
        await ws.send('{"type": "ping"}')
        assert (await receive(ws, "pong")) == {"type": "pong"}
