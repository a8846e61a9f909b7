"""``keys_in``: composite-key lookups are index searches on SQLite (a row-value IN was a full scan)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, union
from sqlalchemy.dialects import sqlite as sqlite_dialect

from gati.db.dialect import keys_in
from gati.db.engine import Database
from gati.metrics.repository import points_t, rollups_t, series_t
from gati.projects.models import Project
from gati.web.repository import EVENTS, SESSION_FIELDS, SESSIONS


def _queries() -> dict[str, object]:
    columns = [SESSIONS.c[name] for name in SESSION_FIELDS]
    visitors = select(*columns).where(
        keys_in((SESSIONS.c.project_id, SESSIONS.c.visitor_id), [(1, "a"), (1, "b"), (2, "c")]),
        SESSIONS.c.last_seen_at >= datetime(2026, 1, 1, tzinfo=UTC),
    )
    visits = select(*columns).where(keys_in((SESSIONS.c.project_id, SESSIONS.c.id), [(1, "s")]))
    return {
        "web_sessions": union(visitors, visits),
        "web_events": select(EVENTS.c.id).where(
            keys_in((EVENTS.c.project_id, EVENTS.c.id), [(1, "e1"), (3, "e2")])
        ),
        "metric_series": select(series_t.c.id).where(
            keys_in(
                (series_t.c.project_id, series_t.c.name, series_t.c.tags_key),
                [(1, "cpu", "k1"), (1, "cpu", "k2"), (1, "mem", "k1")],
            )
        ),
        "metric_points": select(points_t.c.id).where(
            keys_in((points_t.c.project_id, points_t.c.client_id), [(1, "x"), (2, "y")])
        ),
        "metric_rollups": select(rollups_t.c.series_id).where(
            keys_in(
                (rollups_t.c.series_id, rollups_t.c.bucket_start),
                [(1, datetime(2026, 1, 1, tzinfo=UTC))],
            )
        ),
    }


@pytest.mark.parametrize("table", sorted(_queries()))
async def test_sqlite_plans_are_index_searches(
    _sqlite_template: Path, tmp_path: Path, table: str
) -> None:
    """PostgreSQL used its indexes for either form; SQLite only for this one."""
    path = tmp_path / "plan.db"
    shutil.copy(_sqlite_template, path)
    db = Database(f"sqlite+aiosqlite:///{path}")
    sql = str(
        _queries()[table].compile(  # type: ignore[attr-defined]
            dialect=sqlite_dialect.dialect(), compile_kwargs={"literal_binds": True}
        )
    )
    try:
        async with db.read_engine.connect() as conn:
            plan = [str(row[-1]) for row in await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    finally:
        await db.dispose()
    assert plan, sql
    assert not [step for step in plan if step.startswith(f"SCAN {table}")], plan


@pytest.mark.parametrize("distinct_leads", [3, 1500])
async def test_exact_rows_with_few_or_many_leading_values(
    db: Database, make_project: Any, distinct_leads: int
) -> None:
    """Exactly the named keys, also past the OR-branch cap (SQLite refuses ORs 1,000 deep)."""
    projects = [await make_project(f"keys-in-{i}") for i in range(3)]
    real = [(p["id"], p["slug"]) for p in projects]
    wrong_slug = [(projects[0]["id"], projects[1]["slug"])]  # both parts exist, not together
    absent = [(10_000 + i, f"nope-{i}") for i in range(distinct_leads)]
    table = Project.__table__
    stmt = select(table.c.id, table.c.slug).where(
        keys_in((table.c.id, table.c.slug), [real[0], real[2], *wrong_slug, *absent])
    )
    async with db.read_session() as session:
        found = {(row[0], row[1]) for row in await session.execute(stmt)}
    assert found == {real[0], real[2]}
