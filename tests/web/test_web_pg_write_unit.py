"""The one-statement PostgreSQL write of a /collect group: each table's rows as ONE JSON document
(what the stored values look like is covered by the collect and rollup tests on PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gati.web import repository as r

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


def _event() -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(r.EVENT_COLUMNS)
    row.update(
        project_id=1,
        id="e1",
        event_type="pageview",
        timestamp=NOW,
        received_at=NOW,
        visitor_key=2**62,
        is_bot=False,
        properties={"plan": "pro"},
        raw={"eventType": "pageview"},
    )
    return row


def _visit() -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(r.SESSION_FIELDS)
    row.update(project_id=1, id="v1", started_at=NOW, last_seen_at=NOW, duration=0, is_bot=False)
    return row


def test_each_table_is_one_json_document() -> None:
    rollup = {"project_id": 1, "hour": NOW, **dict.fromkeys(r.ROLLUP_COUNTERS, 1)}
    sql, params = r._pg_write([_event()] * 3, [_visit()] * 2, [rollup], shard=5)
    assert sql.count("jsonb_array_elements") == 3
    assert [sql.count(f"${n}::jsonb") for n in (1, 2, 3)] == [1, 1, 1]
    assert len(params) == 3 and all(isinstance(p, str) for p in params)
    assert '"plan":"pro"' in params[0]  # JSON columns embedded as JSON, not as strings
    assert params[2].endswith(",5]]")  # the shard, last column of the rollup row


def test_an_empty_table_is_an_empty_document() -> None:
    sql, params = r._pg_write([_event()], [], [], shard=0)
    assert params[1:] == ["[]", "[]"]
    assert sql.startswith("WITH new_events AS (") and sql.endswith(" SELECT 1")
