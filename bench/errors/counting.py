"""Counting the statements that write the issues table, and the issue rows they carry: one upsert
per fingerprint per batch, never one per event (the grouping benchmark and its test)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection

from gati.db import bulk
from gati.db.engine import Database


class IssueStatements:
    """SQLite: every statement the database runs (sqlite3's trace callback, values filled in).
    PostgreSQL: statements sent through SQLAlchemy (a ``before_cursor_execute`` listener) and
    those sent straight to asyncpg (a pass-through wrapper of ``gati.db.bulk.pg_fetch``)."""

    def __init__(self) -> None:
        self.statements = 0
        self.rows = 0

    def count(self, statement: str, params: Any = None, many: bool = False) -> None:
        head = statement.lstrip().upper()
        if head.startswith("WITH ") and "INSERT INTO ISSUES " in head:
            # PostgreSQL's batch statement: the issues' rows are its last parameter, one JSON
            # row per fingerprint (gati.errors.repository.store_batch_pg)
            self.statements += 1
            self.rows += len(orjson.loads(params[-1]))
        elif head.startswith(("INSERT INTO ISSUES ", "UPDATE ISSUES ")):
            self.statements += 1
            if head.startswith("INSERT"):  # multi-row VALUES: count its row groups
                self.rows += (
                    head.split(" VALUES ", 1)[1].split(" ON CONFLICT", 1)[0].count("),") + 1
                )
            elif many:
                self.rows += len(params)
            else:
                self.rows += 1

    def _listener(
        self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if not statement.lstrip().upper().startswith("WITH "):  # counted by the wrapper
            self.count(statement, params, many)

    @contextlib.asynccontextmanager
    async def watching(self, db: Database, conn: AsyncConnection) -> AsyncIterator[None]:
        """Count what runs on ``conn`` (a write connection of ``db``) inside the block."""
        if db.dialect == "sqlite":
            driver = await bulk.raw_driver(conn)
            await driver.set_trace_callback(self.count)
            try:
                yield
            finally:
                await driver.set_trace_callback(None)
            return
        fetch = bulk.pg_fetch

        async def counted(c: AsyncConnection, sql: str, params: Any) -> Any:
            self.count(sql, params)
            return await fetch(c, sql, params)

        bulk.pg_fetch = counted  # type: ignore[assignment]
        engine = db.write_engine.sync_engine
        event.listen(engine, "before_cursor_execute", self._listener)
        try:
            yield
        finally:
            event.remove(engine, "before_cursor_execute", self._listener)
            bulk.pg_fetch = fetch  # type: ignore[assignment]
