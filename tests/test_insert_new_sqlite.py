"""gati.db.bulk.insert_new on SQLite: new rows go in as one multi-row statement inside a savepoint
(no lookup of existing keys); a batch with a known key falls back to the lookup path and stores
exactly the new rows; a foreign-key failure leaves nothing behind and surfaces as SQLAlchemy's
IntegrityError."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, func, select
from sqlalchemy.exc import IntegrityError

from gati.db import bulk
from gati.db.engine import Database
from gati.settings import Settings

_metadata = MetaData()
parents = Table("bulk_parents", _metadata, Column("id", Integer, primary_key=True))
items = Table(
    "bulk_items",
    _metadata,
    Column("parent_id", ForeignKey("bulk_parents.id"), primary_key=True),
    Column("key", String(32), primary_key=True),
    Column("payload", String),
)
COLUMNS = ("parent_id", "key", "payload")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bulk.db'}"
    database = Database(url, Settings(database_url=url))
    async with database.connection() as conn:
        await conn.run_sync(_metadata.create_all)
        await conn.execute(parents.insert(), [{"id": 1}])
    try:
        yield database
    finally:
        await database.dispose()


async def _keys(db: Database) -> list[tuple[Any, ...]]:
    async with db.connection() as conn:
        result = await conn.execute(select(items.c.key, items.c.payload).order_by(items.c.key))
        return [tuple(r) for r in result]


async def _insert(db: Database, rows: list[tuple[Any, ...]]) -> set[tuple[Any, ...]] | None:
    async with db.connection() as conn:
        return await bulk.insert_new(conn, items, COLUMNS, rows, key=("parent_id", "key"))


async def test_new_rows_take_one_statement_and_no_lookup(
    tmp_path: Path, sqlite_statements: list[str]
) -> None:
    statements = sqlite_statements
    url = f"sqlite+aiosqlite:///{tmp_path / 'traced.db'}"
    database = Database(url, Settings(database_url=url))
    try:
        async with database.connection() as conn:
            await conn.run_sync(_metadata.create_all)
            await conn.execute(parents.insert(), [{"id": 1}])
        statements.clear()
        rows = [(1, f"k{i}", f"p{i}") for i in range(500)]
        assert await _insert(database, rows) is None  # every row was new
        assert len(await _keys(database)) == 500
    finally:
        await database.dispose()
    inserts = [s for s in statements if s.startswith("INSERT INTO bulk_items")]
    assert len(inserts) == 1 and inserts[0].count("), (") == 499  # one multi-row statement
    assert not [s for s in statements if s.startswith("SELECT key FROM bulk_items")]
    assert "SAVEPOINT gati_insert_new" in statements
    assert "RELEASE gati_insert_new" in statements


async def test_known_keys_fall_back_and_only_new_rows_are_stored(db: Database) -> None:
    assert await _insert(db, [(1, "a", "first"), (1, "b", "first")]) is None
    inserted = await _insert(db, [(1, "b", "second"), (1, "c", "second"), (1, "c", "third")])
    assert inserted == {(1, "c")}
    assert await _keys(db) == [("a", "first"), ("b", "first"), ("c", "second")]


async def test_a_foreign_key_failure_stores_nothing(db: Database) -> None:
    with pytest.raises(IntegrityError):
        await _insert(db, [(1, "ok", "x"), (2, "orphan", "x")])
    assert await _keys(db) == []
    async with db.connection() as conn:
        assert await conn.scalar(select(func.count()).select_from(items)) == 0


async def test_the_insert_joins_the_callers_transaction(db: Database) -> None:
    """The fast path's savepoint is nested in the caller's transaction: rolling that back
    removes the rows too."""

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with db.connection() as conn:
            await bulk.insert_new(conn, items, COLUMNS, [(1, "z", "x")], key=("parent_id", "key"))
            raise Abort
    assert await _keys(db) == []


async def test_insert_new_returning_reads_back_only_the_new_rows_in_one_row(
    tmp_path: Path, sqlite_statements: list[str]
) -> None:
    """``insert_new_returning`` on SQLite: the inserted rows come back (retries and duplicates
    within the batch dropped), from an empty table too, without a RETURNING row per inserted
    row (each is a GIL hand-off on the driver's thread): one read-back row of JSON."""
    statements = sqlite_statements
    url = f"sqlite+aiosqlite:///{tmp_path / 'returning.db'}"
    database = Database(url, Settings(database_url=url))
    key = ("parent_id", "key")
    try:
        async with database.connection() as conn:
            await conn.run_sync(_metadata.create_all)
            await conn.execute(parents.insert(), [{"id": 1}])
        async with database.connection() as conn:  # an empty table: no largest rowid yet
            first = await bulk.insert_new_returning(
                conn, items, COLUMNS, [(1, "a", "x"), (1, "b", "x")], key=key
            )
            await conn.commit()
        assert first == {(1, "a"), (1, "b")}
        async with database.connection() as conn:
            again = await bulk.insert_new_returning(
                conn,
                items,
                COLUMNS,
                [(1, "b", "y"), (1, "c", "y"), (1, "c", "z"), (1, "d", "y")],
                key=key,
                returning=("key", "payload"),
            )
            await conn.commit()
        assert again == {("c", "y"), ("d", "y")}
        async with database.connection() as conn:
            assert (
                await bulk.insert_new_returning(conn, items, COLUMNS, [(1, "a", "q")], key=key)
                == set()
            )
        assert await _keys(database) == [("a", "x"), ("b", "x"), ("c", "y"), ("d", "y")]
    finally:
        await database.dispose()
    assert not [s for s in statements if "RETURNING" in s]
    assert len([s for s in statements if s.startswith("SELECT json_group_array")]) == 2
