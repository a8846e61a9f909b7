"""Builders shared by the error-tracking tests."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import func, select

from gati.db.engine import Database
from gati.errors.models import ErrorEvent, Issue


def sentry_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": uuid.uuid4().hex,
        "level": "error",
        "platform": "python",
        "environment": "production",
        "release": "shop@1.0.0",
        "exception": {
            "values": [
                {
                    "type": "ValueError",
                    "value": "bad input 42",
                    "stacktrace": {
                        "frames": [
                            {
                                "module": "shop.views",
                                "function": "checkout",
                                "lineno": 10,
                                "in_app": True,
                            },
                            {
                                "module": "shop.cart",
                                "function": "total",
                                "lineno": 20,
                                "in_app": True,
                            },
                        ]
                    },
                }
            ]
        },
    }
    event.update(overrides)
    return event


def envelope(
    *events: dict[str, Any], header: dict[str, Any] | None = None, extra_items: bytes = b""
) -> bytes:
    head = dict(header or {})
    if events and "event_id" not in head:
        head["event_id"] = events[0]["event_id"]
    parts = [orjson.dumps(head)]
    for event in events:
        payload = orjson.dumps(event)
        parts.append(orjson.dumps({"type": "event", "length": len(payload)}))
        parts.append(payload)
    body = b"\n".join(parts) + b"\n"
    return body + extra_items


def auth(public_key: str) -> dict[str, str]:
    return {
        "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_client=test/1.0, sentry_key={public_key}"
    }


async def count_events(db: Database, project_id: int | None = None) -> int:
    async with db.read_session() as session:
        stmt = select(func.count(ErrorEvent.id))
        if project_id is not None:
            stmt = stmt.where(ErrorEvent.project_id == project_id)
        return int((await session.execute(stmt)).scalar_one())


async def count_issues(db: Database, project_id: int | None = None) -> int:
    async with db.read_session() as session:
        stmt = select(func.count(Issue.id))
        if project_id is not None:
            stmt = stmt.where(Issue.project_id == project_id)
        return int((await session.execute(stmt)).scalar_one())
