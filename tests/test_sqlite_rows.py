"""gati.db.sqlite_rows: executemany of an INSERT on SQLite runs as multi-row statements, with the
same outcome (ON CONFLICT clauses included, a key repeated within the rows included)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.sqlite import insert

from gati.db import sqlite_rows
from gati.db.engine import Database
from gati.settings import Settings

_metadata = MetaData()
counters = Table(
    "rows_counters",
    _metadata,
    Column("key", String(16), primary_key=True),
    Column("hits", Integer, nullable=False),
    Column("note", String(32)),
)


def _upsert() -> Any:
    stmt = insert(counters)
    return stmt.on_conflict_do_update(
        index_elements=["key"], set_={"hits": counters.c.hits + stmt.excluded.hits}
    )


def test_split_insert_takes_plain_values_groups_only() -> None:
    compiled = str(_upsert().compile(dialect=sqlite_dialect.dialect()))
    split = sqlite_rows.split_insert(compiled)
    assert split is not None
    head, group, tail, width = split
    assert head.startswith("INSERT INTO rows_counters") and head.endswith(" VALUES ")
    assert group == "(?, ?, ?)" and width == 3
    assert tail == ' ON CONFLICT ("key") DO UPDATE SET hits = (rows_counters.hits + excluded.hits)'
    for other in [
        "UPDATE rows_counters SET hits = ? WHERE key = ?",
        "INSERT INTO t (a, b) VALUES (?, now())",
        "INSERT INTO t (a) VALUES (:a)",
        "INSERT INTO t (a) VALUES (?) RETURNING a",
        "INSERT INTO t (a) SELECT ? FROM u",
        "INSERT INTO t (a) VALUES (?) ON CONFLICT (a) DO UPDATE SET b = ?",
    ]:
        assert sqlite_rows.split_insert(other) is None, other


def test_execute_rows_chunks_by_the_parameter_limit() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT, c TEXT)")
    calls: list[int] = []

    def execute(sql: str, params: Any) -> Any:
        calls.append(len(params))
        return db.execute(sql, params)

    rows = [(i, f"b{i}", None) for i in range(25_000)]
    results = sqlite_rows.execute_rows(execute, "INSERT INTO t (a, b, c) VALUES (?, ?, ?)", rows)
    assert results is not None and sum(r.rowcount for r in results) == 25_000
    per_statement = sqlite_rows.MAX_VARIABLES // 3
    assert calls == [per_statement * 3] * 2 + [(25_000 - 2 * per_statement) * 3]
    assert db.execute("SELECT count(*), sum(a) FROM t").fetchone() == (25_000, sum(range(25_000)))
    assert sqlite_rows.execute_rows(execute, "DELETE FROM t WHERE a = ?", rows) is None


@pytest.fixture
async def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'rows.db'}"
    database = Database(url, Settings(database_url=url))
    async with database.connection() as conn:
        await conn.run_sync(_metadata.create_all)
    try:
        yield database
    finally:
        await database.dispose()


async def test_the_write_engine_runs_executemany_of_an_upsert_as_one_statement(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    async with db.connection() as conn:
        raw = await conn.get_raw_connection()
        raw.driver_connection._conn.set_trace_callback(statements.append)  # type: ignore[union-attr]
        rows = [{"key": f"k{i % 40}", "hits": 1, "note": "n"} for i in range(100)]
        await conn.execute(_upsert(), rows)  # 100 rows, 40 keys: repeated keys add up
        raw.driver_connection._conn.set_trace_callback(None)  # type: ignore[union-attr]
    async with db.connection() as conn:
        stored = dict((await conn.execute(select(counters.c.key, counters.c.hits))).all())
    assert stored == {f"k{i}": (3 if i < 20 else 2) for i in range(40)}
    inserts = [s for s in statements if s.startswith("INSERT")]
    assert len(inserts) == 1  # one statement (traced with its values bound) for the 100 rows
    assert inserts[0].count("), (") == 99
