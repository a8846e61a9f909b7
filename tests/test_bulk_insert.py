"""gati.db.bulk on PostgreSQL: a small group's insert as one JSON document stores exactly what
the one-array-per-column (unnest) form stores, and falls back to it for values JSON cannot
carry."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)

from gati.db import bulk
from gati.db.engine import Database
from gati.db.types import JSONType
from tests.conftest import settings_for

pytestmark = pytest.mark.postgres

_metadata = MetaData()
scratch = Table(
    "bulk_scratch",
    _metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("batch", String(16), nullable=False),
    Column("project_id", Integer),
    Column("name", String(64)),
    Column("note", Text),
    Column("ts", DateTime(timezone=True)),
    Column("value", Float),
    Column("flag", Boolean),
    Column("payload", JSONType),
)
COLUMNS = ("batch", "project_id", "name", "note", "ts", "value", "flag", "payload")

AWARE = datetime(2026, 3, 29, 1, 59, 59, 999999, tzinfo=timezone(timedelta(hours=5, minutes=45)))
ROWS: list[tuple[Any, ...]] = [
    (7, "plain", "text", datetime(2026, 1, 1, tzinfo=UTC), 1.5, True, {"a": [1, 2.5, None]}),
    (8, 'quote " and \\', "tab\t new\nline é 😀 \u2028", AWARE, 0.1, False, '{"b": "c"}'),
    (9, None, None, None, None, None, None),
    (10, "naive", "", datetime(2026, 7, 4, 12, 30), 5e-324, True, {"nested": {"x": "y\u00e9"}}),
    (11, "tiny", "x" * 3000, datetime(1970, 1, 1, tzinfo=UTC), 1e300, None, '[1, "two", {}]'),
    (12, "int as float", None, datetime(2026, 12, 6, 23, 59, tzinfo=UTC), 3, None, {}),
]


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[Database]:
    database = Database(pg_url, settings_for(pg_url))
    async with database.connection() as conn:
        await conn.run_sync(_metadata.create_all)
    try:
        yield database
    finally:
        await database.dispose()


def _rows(batch: str, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """In driver form, as the callers pass them: JSON column values as JSON text."""
    return [
        (batch, *row[:-1], json.dumps(row[-1]) if isinstance(row[-1], dict) else row[-1])
        for row in rows
    ]


async def _stored(db: Database, batch: str) -> list[tuple[Any, ...]]:
    columns = [scratch.c[c] for c in COLUMNS[1:]]
    async with db.connection() as conn:
        result = await conn.execute(
            select(*columns).where(scratch.c.batch == batch).order_by(scratch.c.id)
        )
        return [tuple(row) for row in result]


async def test_json_document_and_unnest_forms_store_the_same_rows(
    pg: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    used: list[bool] = []
    original = bulk._json_document

    def spy(plan: Any, rows: Any) -> str | None:
        document = original(plan, rows)
        used.append(document is not None)
        return document

    monkeypatch.setattr(bulk, "_json_document", spy)
    async with pg.connection() as conn:
        ids = await bulk.insert_returning_ids(conn, scratch, COLUMNS, _rows("json", ROWS))
    assert used == [True]
    assert len(ids) == len(ROWS) and ids == sorted(ids)

    monkeypatch.setattr(bulk, "_json_document", lambda plan, rows: None)
    async with pg.connection() as conn:
        await bulk.insert_returning_ids(conn, scratch, COLUMNS, _rows("unnest", ROWS))

    by_json, by_unnest = await _stored(pg, "json"), await _stored(pg, "unnest")
    assert by_json == by_unnest
    # And they are the values given: text untouched, instants kept (naive = UTC), JSON text
    # stored as the JSON it spells, NULL as NULL.
    assert by_json[1][1:3] == ('quote " and \\', "tab\t new\nline é 😀 \u2028")
    assert by_json[1][3] == AWARE and by_json[1][6] == {"b": "c"}
    assert by_json[2] == (9, None, None, None, None, None, None)
    assert by_json[3][3] == datetime(2026, 7, 4, 12, 30, tzinfo=UTC)
    assert by_json[3][4] == 5e-324 and by_json[1][4] == 0.1 and by_json[4][4] == 1e300
    assert by_json[4][6] == [1, "two", {}]
    assert by_json[0][6] == {"a": [1, 2.5, None]}


@pytest.mark.parametrize(
    ("label", "row"),
    [
        ("nan", (1, "n", None, None, math.nan, None, None)),
        ("infinity", (1, "i", None, None, -math.inf, None, None)),
        ("json null text", (1, "j", None, None, None, None, "null")),
        ("negative zero", (1, "z", None, None, -0.0, None, None)),
    ],
)
async def test_values_json_cannot_carry_fall_back_to_unnest(
    pg: Database, label: str, row: tuple[Any, ...]
) -> None:
    plan = bulk._pg_plan(pg.write_engine.dialect, scratch, COLUMNS, " RETURNING id")
    rows = _rows(label, [row, ROWS[0]])
    assert bulk._json_document(plan, rows) is None
    async with pg.connection() as conn:
        ids = await bulk.insert_returning_ids(conn, scratch, COLUMNS, rows)
    assert len(ids) == 2
    stored = await _stored(pg, label)
    value = stored[0][4]
    if label == "nan":
        assert math.isnan(value)
    elif label == "infinity":
        assert value == -math.inf
    elif label == "negative zero":
        assert value == 0 and math.copysign(1.0, value) == -1.0
    else:  # the JSON value null, not SQL NULL, as the unnest form's cast of the text stores it
        async with pg.connection() as conn:
            is_sql_null = await conn.scalar(
                select(scratch.c.payload.is_(None)).where(scratch.c.batch == label).limit(1)
            )
        assert is_sql_null is False
    assert stored[1] == (
        7,
        "plain",
        "text",
        datetime(2026, 1, 1, tzinfo=UTC),
        1.5,
        True,
        ROWS[0][6],
    )
