"""Run Alembic migrations programmatically (``gati migrate``, server start-up, tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncConnection

from gati.db.engine import null_pool_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def _with_connection(url: str, fn: str, target: str) -> None:
    engine = null_pool_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_alembic_sync, url, fn, target)
            await conn.commit()
    finally:
        await engine.dispose()


def _alembic_sync(sync_conn: object, url: str, fn: str, target: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = sync_conn
    getattr(command, fn)(config, target)


async def upgrade(url: str, target: str = "heads") -> None:
    """Apply every migration of every branch (one history, one branch per domain)."""
    await _with_connection(url, "upgrade", target)


async def downgrade(url: str, target: str = "base") -> None:
    await _with_connection(url, "downgrade", target)


def upgrade_sync(url: str, target: str = "heads") -> None:
    asyncio.run(upgrade(url, target))


async def current_heads(conn: AsyncConnection) -> list[str]:
    from sqlalchemy import text

    rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
    return [r[0] for r in rows]
