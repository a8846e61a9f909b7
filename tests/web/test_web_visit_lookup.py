"""The /collect batch writer's visit lookup on PostgreSQL (``web_lock_and_load_visits``,
migration web_0003): each key is an index search, the plan is cached, and a visit found both by
its visitor and by its session id comes back once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from gati.db.engine import Database
from gati.web import repository
from tests.web.helpers import send, stored_sessions


async def test_a_visit_found_by_visitor_and_by_session_id_comes_once(
    client: httpx.AsyncClient, db: Database, make_project: Callable[..., Any]
) -> None:
    if db.dialect != "postgresql":
        return  # SQLite looks visits up in Python (sqlite_load_visits), one query per kind
    project = await make_project()
    await send(client, project["slug"], sessionId="sess-1", visitorId="vis-1")
    (visit,) = await stored_sessions(db, project["id"])
    async with db.engine.connect() as conn:
        loaded = await repository.lock_and_load_visits(
            conn,
            lock_keys=[1, 2],
            visitors=[(project["id"], visit.visitor_id)],
            sessions=[(project["id"], visit.id)],
            since=datetime.now(UTC) - timedelta(days=1),
        )
        await conn.rollback()
    assert [(v["project_id"], v["id"]) for v in loaded] == [(project["id"], visit.id)]


async def test_the_lookup_never_scans_the_visits_table(db: Database) -> None:
    """Sequential scans and sorts are off inside the function, so its cached plan is an index
    search whatever the table's statistics, and JIT is off (the disabled nodes' cost would
    have it compile every call); the web_0002 setting that planned every call is gone."""
    if db.dialect != "postgresql":
        return
    async with db.engine.connect() as conn:
        config = await conn.scalar(
            text("SELECT proconfig FROM pg_proc WHERE proname = 'web_lock_and_load_visits'")
        )
    assert config == ["enable_seqscan=off", "enable_sort=off", "jit=off"]
