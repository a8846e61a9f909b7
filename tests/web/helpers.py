"""Shared helpers of the web analytics storage tests."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from gati.db.engine import Database
from gati.web.models import WebEvent, WebSession

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


async def send(
    client: httpx.AsyncClient,
    site: str,
    *,
    ua: str = CHROME,
    expect: int = 200,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    body = {"siteId": site, **fields}
    response = await client.post(
        "/collect", json=body, headers={"user-agent": ua, **(headers or {})}
    )
    assert response.status_code == expect, response.text
    return response.json()  # type: ignore[no-any-return]


async def stored_events(db: Database, project_id: int) -> list[WebEvent]:
    async with db.read_session() as session:
        rows = await session.execute(
            select(WebEvent)
            .where(WebEvent.project_id == project_id)
            .order_by(WebEvent.timestamp, WebEvent.id)
        )
        return list(rows.scalars())


async def stored_sessions(db: Database, project_id: int) -> list[WebSession]:
    async with db.read_session() as session:
        rows = await session.execute(
            select(WebSession)
            .where(WebSession.project_id == project_id)
            .order_by(WebSession.started_at)
        )
        return list(rows.scalars())


async def event_count(db: Database) -> int:
    async with db.read_session() as session:
        return int((await session.execute(select(func.count()).select_from(WebEvent))).scalar_one())
