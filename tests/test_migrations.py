"""One Alembic history for both dialects: upgrade to every head, downgrade to base, upgrade again."""

from __future__ import annotations

from sqlalchemy import inspect, text

from gati.db import migrate
from gati.db.base import Base
from gati.db.engine import Database
from gati.db.models_registry import __all__ as _models  # noqa: F401


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_round_trip(db: Database) -> None:
    expected = set(Base.metadata.tables)
    assert expected <= await _tables(db)  # the fixture database is migrated to heads
    await migrate.downgrade(db.url, "base")
    assert (await _tables(db)) - {"alembic_version"} == set()
    await migrate.upgrade(db.url)
    assert expected <= await _tables(db)
    async with db.engine.connect() as conn:
        heads = await migrate.current_heads(conn)
    assert "0001_core" in heads or any(h for h in heads)


async def test_error_payloads_are_lz4_compressed_on_postgresql(db: Database) -> None:
    """errors_0002: TOAST compresses new error payloads with LZ4 where the server has it."""
    if db.dialect != "postgresql":
        return  # SQLite stores JSON text uncompressed: nothing to check
    async with db.engine.connect() as conn:
        has_lz4 = await conn.scalar(
            text(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                "WHERE name = 'default_toast_compression'"
            )
        )
        method = await conn.scalar(
            text(
                "SELECT attcompression::text FROM pg_attribute "
                "WHERE attrelid = 'error_events'::regclass AND attname = 'payload'"
            )
        )
    assert method == ("l" if has_lz4 else "")
