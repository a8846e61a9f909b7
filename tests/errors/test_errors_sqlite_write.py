"""The SQLite group write of error events (``repository.store_batch_sqlite``): a fixed, small
number of statements per group whatever its size, none of them returning a row per event or per
issue (each row of a result is a GIL hand-off on the driver's thread), and the row ids and issue
ids it reads back are the stored ones, retries included."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from gati.db.engine import Database
from gati.errors import service
from gati.errors.models import ErrorEvent, Issue
from gati.errors.normalize import normalize_sentry_event
from gati.projects import service as projects

NOW = datetime(2024, 3, 1, tzinfo=UTC)


async def _project(db: Database) -> int:
    async with db.session() as session:
        project, _ = await projects.create_project(session, name=f"p-{uuid.uuid4().hex[:8]}")
        await session.commit()
        return project.id


def _write(project_id: int, fingerprint: str, ts: datetime, **extra: Any) -> service.ErrorWrite:
    raw = {
        "event_id": extra.pop("event_id", None) or uuid.uuid4().hex,
        "timestamp": ts.isoformat(),
        "message": f"{fingerprint} at {ts:%H:%M:%S}",
        "fingerprint": [fingerprint],
        "environment": "production",
    }
    event = normalize_sentry_event(raw, received_at=NOW + timedelta(hours=1))
    return service.ErrorWrite(project_id=project_id, event=event, **extra)


def _group_statements(seen: list[str]) -> list[str]:
    """The statements of the last group write, from its events insert on (its BEGIN and the
    connection's set-up are SQLAlchemy's)."""
    start = max(i for i, sql in enumerate(seen) if sql.startswith("SELECT coalesce(max(id)"))
    return seen[start:]


async def test_a_group_is_a_few_statements_and_none_returns_a_row_per_event(
    sqlite_db: Database, sqlite_statements: list[str]
) -> None:
    project_id = await _project(sqlite_db)
    for size in (3, 64):
        writes = [
            _write(project_id, f"fp-{i % 20}", NOW + timedelta(seconds=i)) for i in range(size)
        ]
        async with sqlite_db.connection() as conn:
            results = await service.write_error_batch(conn, writes)
            await conn.commit()
        assert all(r.stored for r in results)
        group = _group_statements(sqlite_statements)
        # the write lock is taken before the largest id is read (SQLAlchemy had begun its
        # transaction, sqlite3 had not)
        before = sqlite_statements[len(sqlite_statements) - len(group) - 1]
        assert before == "BEGIN IMMEDIATE", before
        kinds = [sql.split(" (", 1)[0].split(" VALUES", 1)[0][:40] for sql in group]
        assert not any("RETURNING" in sql for sql in group), kinds
        # max id, the events, the issue upsert, the read-back (+ the issues' new environments
        # the first time), between the transaction's BEGIN and COMMIT: as many for 3 events as
        # for 64
        assert len([s for s in group if not s.startswith(("BEGIN", "COMMIT"))]) <= 5, kinds


async def test_row_ids_and_issue_ids_are_the_stored_ones(db: Database) -> None:
    """On both databases (PostgreSQL's batch statement answers the same question)."""
    project_id = await _project(db)
    first = [_write(project_id, f"fp-{i % 3}", NOW + timedelta(seconds=i)) for i in range(9)]
    async with db.connection() as conn:
        first_results = await service.write_error_batch(conn, first)
        await conn.commit()
    # a retry of two stored events among new ones: only the new ones count, the retries get
    # their stored row id when asked for it (seed-002 answers with it)
    retried = [
        _write(project_id, f"fp-{i % 3}", NOW + timedelta(seconds=i), event_id=w.event.event_id)
        for i, w in enumerate(first[:2])
    ]
    retried[0].want_row_id = True
    newer = [
        _write(project_id, "fp-0", NOW + timedelta(minutes=5)),
        _write(project_id, "fp-new", NOW + timedelta(minutes=6), want_row_id=True),
    ]
    async with db.connection() as conn:
        results = await service.write_error_batch(conn, [*retried, *newer])
        await conn.commit()
    assert [r.stored for r in results] == [False, False, True, True]

    async with db.read_session() as session:
        rows = {
            e.event_id: (e.id, e.fingerprint)
            for e in await session.scalars(
                select(ErrorEvent).where(ErrorEvent.project_id == project_id)
            )
        }
        issues = {
            i.fingerprint: i
            for i in await session.scalars(select(Issue).where(Issue.project_id == project_id))
        }
    assert len(rows) == 11
    for write, result in zip([*first, *retried, *newer], [*first_results, *results], strict=True):
        row_id, fingerprint = rows[write.event.event_id]
        if result.row_id is not None:
            assert result.row_id == row_id
        if result.stored:
            assert result.issue_id == issues[fingerprint].id
    assert results[0].row_id == rows[first[0].event.event_id][0]  # a retry that asked for it
    by_title = {i.title: i for i in issues.values()}
    fp0 = issues[newer[0].event.fingerprint]
    assert fp0.event_count == 4  # three from the first batch, one new; the retry not counted
    assert fp0.last_seen == NOW + timedelta(minutes=5) and fp0.title == newer[0].event.title
    assert fp0.first_seen == NOW
    assert by_title[newer[1].event.title].event_count == 1
