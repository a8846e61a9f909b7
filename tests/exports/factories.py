"""Web events written straight into ``web_events`` (received_at chosen by the test), and the
row-by-row comparison of exported rows with what was stored."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import insert

from gati.db.engine import Database
from gati.web.models import WebEvent

T0 = datetime(2025, 6, 22, 9, 0, tzinfo=UTC)


def web_event(project_id: int, i: int, received_at: datetime) -> dict[str, Any]:
    odd = i % 2 == 1
    return {
        "project_id": project_id,
        "id": str(uuid.UUID(int=i + 1)),
        "event_type": "pageview" if i % 3 else "signup",
        "timestamp": received_at - timedelta(seconds=1, microseconds=i),
        "received_at": received_at,
        "session_id": f"sess_{i // 4}",
        "visitor_id": f"vis_{i % 5}",
        "visitor_key": (i * 7919) % (2**62),
        "url": f'https://example.com/p/{i}?q="x",y' if odd else None,
        "path": f"/p/{i}",
        "hostname": "example.com",
        "referrer": "https://google.com/" if odd else None,
        "title": f"Page, {i}\nline two é",
        "source": "Google" if odd else None,
        "utm_source": "news" if i % 4 == 0 else None,
        "utm_medium": None,
        "utm_campaign": None,
        "utm_term": None,
        "utm_content": None,
        "browser": "Firefox",
        "browser_version": "128.0",
        "os": "Linux",
        "os_version": None,
        "device": "desktop",
        "country": "DE" if odd else None,
        "ip": "203.0.113.0",
        "is_bot": i % 10 == 9,
        "properties": {"plan": "pro", "n": i} if odd else None,
        "raw": {"eventType": "pageview", "siteId": "x", "nested": {"i": i, "list": [1, "a"]}},
    }


async def insert_web_events(
    db: Database,
    project_id: int,
    *,
    start: datetime,
    count: int,
    spacing: timedelta,
    first_index: int = 0,
) -> list[dict[str, Any]]:
    rows = [web_event(project_id, first_index + i, start + spacing * i) for i in range(count)]
    async with db.session() as session:
        for offset in range(0, len(rows), 500):
            await session.execute(insert(WebEvent), rows[offset : offset + 500])
    return rows


RENAMES = {"event_id": "id", "raw_event_data": "raw"}


def _normalise(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def assert_rows_equal(
    exported: Sequence[dict[str, Any]],
    stored: Sequence[dict[str, Any]],
    *,
    site: str,
    textual: bool = False,
) -> None:
    """Compare exported rows with stored rows, column by column, in order.

    ``textual``: values came from CSV (strings), so typed values are compared through their
    text form.
    """
    assert len(exported) == len(stored)
    expected_columns = {RENAMES.get(k, k) for k in exported[0]} - {"site_id"} if exported else set()
    for got, want in zip(exported, stored, strict=True):
        assert got["site_id"] == site
        assert expected_columns == set(want) - {"project_id"}
        for name, value in got.items():
            if name == "site_id":
                continue
            original = want[RENAMES.get(name, name)]
            if textual:
                assert_text_equal(name, value, original)
                continue
            if name in ("properties", "raw_event_data"):
                if isinstance(value, str):
                    value = orjson.loads(value)
                assert value == original, name
            elif isinstance(original, datetime):
                if isinstance(value, str):
                    value = parse_iso(value)
                assert _normalise(value) == _normalise(original), name
            else:
                assert value == original, name


def assert_text_equal(name: str, value: str, original: Any) -> None:
    if original is None:
        assert value == "", name
    elif isinstance(original, bool):
        assert value == ("true" if original else "false"), name
    elif isinstance(original, datetime):
        assert parse_iso(value) == _normalise(original), name
    elif isinstance(original, dict | list):
        assert orjson.loads(value) == original, name
    else:
        assert value == str(original), name
