"""Database access: one async engine on PostgreSQL; a writer and a reader pool on SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from gati.db import sqlite_rows
from gati.settings import Settings, dialect_of

Dialect = Literal["sqlite", "postgresql"]


def dialect_name(conn: AsyncConnection) -> Dialect:
    """The dialect of an open connection, typed for the helpers in ``gati.db.dialect``."""
    name = conn.dialect.name
    if name == "postgresql":
        return "postgresql"
    if name == "sqlite":
        return "sqlite"
    raise AssertionError(name)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def _sqlite_reset(dbapi_connection: Any, _record: Any, state: Any) -> None:
    """Reset-on-return of a SQLite connection: roll back only what is still open.

    SQLAlchemy's default rolls back every connection it gets back, even one whose transaction
    was just committed; on aiosqlite that is a thread hop, and under load every hop waits for a
    turn of a busy event loop (one of four per group commit of error events). The driver knows
    without a hop whether a transaction is open (``in_transaction`` reads sqlite3's flag).
    Not asyncio-safe (a connection garbage-collected outside the loop): the pool terminates it
    instead, as it would anyway."""
    if state.terminate_only or not state.asyncio_safe:
        return
    if dbapi_connection.driver_connection.in_transaction:
        dbapi_connection.rollback()


class Database:
    """Owns the engines. ``session()`` may write; ``read_session()`` only reads.

    On SQLite all writes go through a single connection (SQLite has one writer anyway; queueing in
    the pool is cheaper than busy-waiting on the file lock) and reads use a small pool of
    connections that see the last committed state through WAL. On PostgreSQL both are one pool.
    """

    def __init__(self, url: str, settings: Settings | None = None) -> None:
        self.url = url
        self.dialect: Dialect = dialect_of(url)
        settings = settings or Settings()
        if self.dialect == "sqlite":
            ensure_sqlite_folder(url)
            self.write_engine = create_async_engine(
                url,
                pool_size=1,
                max_overflow=0,
                pool_timeout=settings.database_pool_timeout,
                pool_reset_on_return=None,  # _sqlite_reset instead
            )
            self.read_engine = create_async_engine(
                url,
                pool_size=settings.sqlite_read_pool_size,
                max_overflow=0,
                pool_timeout=settings.database_pool_timeout,
                pool_reset_on_return=None,
            )
            for engine in (self.write_engine, self.read_engine):
                event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
                event.listen(engine.sync_engine, "reset", _sqlite_reset)
            sqlite_rows.register(self.write_engine.sync_engine)
        else:
            self.write_engine = create_async_engine(
                url,
                pool_size=settings.database_pool_size,
                max_overflow=settings.database_max_overflow,
                pool_timeout=settings.database_pool_timeout,
                pool_recycle=settings.database_pool_recycle,
                pool_pre_ping=True,
            )
            self.read_engine = self.write_engine
        self._writer = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._reader = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @property
    def engine(self) -> AsyncEngine:
        return self.write_engine

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A write session: commits when the block ends, rolls back on error."""
        async with self._writer() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        async with self._reader() as session:
            yield session

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A write connection in a transaction (Core), committed when the block ends."""
        async with self.write_engine.begin() as conn:
            yield conn

    async def ping(self, limit_seconds: float = 3.0) -> bool:
        try:
            async with asyncio.timeout(limit_seconds), self.read_engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()


def ensure_sqlite_folder(url: str) -> None:
    """SQLite creates the database file, not the folders above it (e.g. a new GATI_DATA_DIR)."""
    database = make_url(url).database
    if dialect_of(url) == "sqlite" and database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def null_pool_engine(url: str) -> AsyncEngine:
    """A poolless engine for one-off work (migrations, tests' setup)."""
    ensure_sqlite_folder(url)
    return create_async_engine(url, poolclass=NullPool)
