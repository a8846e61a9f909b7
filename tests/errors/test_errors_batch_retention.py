"""The batch writer (one issue upsert per fingerprint per batch) and retention, on both dialects."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.errors.counting import IssueStatements
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from gati.db.engine import Database
from gati.errors import service
from gati.errors.models import Issue, IssueValue
from gati.errors.normalize import normalize_sentry_event
from gati.settings import Settings
from tests.errors.helpers import count_events, count_issues

NOW = datetime(2024, 3, 1, tzinfo=UTC)


def _event(fingerprint: str, ts: datetime, event_id: str | None = None, **kw: Any) -> Any:
    raw = {
        "event_id": event_id or uuid.uuid4().hex,
        "timestamp": ts.isoformat(),
        "message": f"message {fingerprint}",
        "fingerprint": [fingerprint],
        "environment": kw.pop("environment", "production"),
        **kw,
    }
    return normalize_sentry_event(raw, received_at=NOW)


async def test_ten_thousand_events_hundred_fingerprints(db: Database, make_project: Any) -> None:
    project = await make_project()
    items = [
        service.ErrorWrite(
            project_id=project["id"], event=_event(f"fp-{i % 100}", NOW - timedelta(seconds=i))
        )
        for i in range(10_000)
    ]
    counter = IssueStatements()
    async with db.connection() as conn, counter.watching(db, conn):
        results = await service.write_error_batch(conn, items)
    assert len(results) == 10_000 and all(r.stored for r in results)
    # ONE upsert statement carrying one row per fingerprint (100), not per event
    assert counter.statements == 1, counter.statements
    assert counter.rows == 100, counter.rows
    async with db.read_session() as session:
        issues = (
            await session.scalars(select(Issue).where(Issue.project_id == project["id"]))
        ).all()
    assert len(issues) == 100
    assert {i.event_count for i in issues} == {100}
    assert {i.times_seen for i in issues} == {100}
    fp0 = next(i for i in issues if i.title == "message fp-0")
    assert fp0.last_seen == NOW and fp0.first_seen == NOW - timedelta(seconds=9900)
    assert await count_events(db, project["id"]) == 10_000


async def test_duplicates_inside_and_across_batches_count_once(
    db: Database, make_project: Any
) -> None:
    project = await make_project()
    event_id = uuid.uuid4().hex
    same = [
        service.ErrorWrite(project_id=project["id"], event=_event("dup", NOW, event_id))
        for _ in range(3)
    ]
    async with db.connection() as conn:
        first = await service.write_error_batch(conn, same)
    assert [r.stored for r in first] == [True, False, False]
    async with db.connection() as conn:
        again = await service.write_error_batch(
            conn,
            [
                service.ErrorWrite(
                    project_id=project["id"], event=_event("dup", NOW, event_id), want_row_id=True
                ),
                service.ErrorWrite(
                    project_id=project["id"], event=_event("dup", NOW + timedelta(seconds=1))
                ),
            ],
        )
    assert [r.stored for r in again] == [False, True]
    assert again[0].row_id is not None and again[0].issue_id is None
    assert again[1].issue_id == first[0].issue_id is not None
    async with db.read_session() as session:
        issue = (
            await session.scalars(select(Issue).where(Issue.project_id == project["id"]))
        ).one()
    assert issue.event_count == 2 and issue.last_seen == NOW + timedelta(seconds=1)


async def test_group_commits_store_events_issues_and_values_together(
    db: Database, make_project: Any
) -> None:
    """Through the group committer as the app registers it (autocommit groups on PostgreSQL: one
    statement per group, no BEGIN/COMMIT): an event of a project that no longer exists fails
    alone; every other event is stored once and counted once; environments and releases are
    recorded; a resolved issue that gets a new event is reopened as regressed."""
    from gati.ingest.groupcommit import GroupCommitter

    project = await make_project()
    gone = await make_project()
    async with db.session() as session:
        await session.execute(text("DELETE FROM projects WHERE id = :id"), {"id": gone["id"]})
    committer = GroupCommitter(db, max_batch=50)
    committer.register(service.WRITER_KIND, service.write_error_batch, autocommit=True)
    committer.start()
    try:
        retried = _event("fp-a", NOW - timedelta(seconds=5), environment="staging")
        writes = [
            service.ErrorWrite(
                project_id=project["id"],
                event=_event(f"fp-{'ab'[i % 2]}", NOW - timedelta(seconds=i), release=f"r{i % 3}"),
            )
            for i in range(40)
        ]
        writes += [service.ErrorWrite(project_id=project["id"], event=retried)] * 2
        writes.append(service.ErrorWrite(project_id=gone["id"], event=_event("fp-a", NOW)))
        outcomes = await asyncio.gather(
            *(committer.submit(service.WRITER_KIND, w) for w in writes), return_exceptions=True
        )
        assert isinstance(outcomes[-1], (IntegrityError, sqlite3.IntegrityError))  # its own
        results = [o for o in outcomes[:-1] if isinstance(o, service.ErrorWriteResult)]
        assert len(results) == 42
        assert sum(r.stored for r in results) == 41  # the retried event once
        if db.dialect == "postgresql":
            assert committer.autocommit_groups >= 1
        async with db.read_session() as session:
            issues = {
                i.title.removeprefix("message "): i
                for i in await session.scalars(
                    select(Issue).where(Issue.project_id == project["id"])
                )
            }
            assert {fp: i.event_count for fp, i in issues.items()} == {"fp-a": 21, "fp-b": 20}
            values = {
                (v.issue_id, v.kind, v.value) for v in await session.scalars(select(IssueValue))
            }
        a, b = issues["fp-a"].id, issues["fp-b"].id
        assert {(a, "environment", "staging"), (b, "release", "r1")} <= values
        assert {(a, "release", f"r{n}") for n in range(3)} <= values
        assert {r.issue_id for r in results if r.stored} == {a, b}

        async with db.session() as session:
            await session.execute(
                text("UPDATE issues SET status = 'resolved' WHERE id = :id"), {"id": a}
            )
        again = await committer.submit(
            service.WRITER_KIND,
            service.ErrorWrite(project_id=project["id"], event=_event("fp-a", NOW)),
        )
        assert again.stored and again.issue_id == a
        async with db.read_session() as session:
            issue = await session.get(Issue, a)
            assert issue is not None
            assert (issue.status, issue.is_regressed, issue.event_count) == ("unresolved", True, 22)
    finally:
        await committer.stop()


async def test_rows_without_a_json_form_take_the_other_insert_form(
    db: Database, make_project: Any
) -> None:
    """A payload whose JSON text is ``null`` has no place in PostgreSQL's JSON-document form of
    the group statement (it would read as SQL NULL): the statement is built on the one-array-
    per-column form instead (its issue document then has another parameter number), and the
    events and their issue are stored all the same."""
    project = await make_project()
    odd = _event("odd-payload", NOW)
    odd.payload_json = "null"
    items = [
        service.ErrorWrite(project_id=project["id"], event=odd),
        service.ErrorWrite(project_id=project["id"], event=_event("odd-payload", NOW)),
    ]
    async with db.connection() as conn:
        results = await service.write_error_batch(conn, items)
    assert [r.stored for r in results] == [True, True]
    assert results[0].issue_id == results[1].issue_id is not None
    async with db.read_session() as session:
        issue = await session.get(Issue, results[0].issue_id)
        assert issue is not None and issue.event_count == 2
    assert await count_events(db, project["id"]) == 2


async def test_same_fingerprint_in_two_projects_is_two_issues(
    db: Database, make_project: Any
) -> None:
    a, b = await make_project(), await make_project()
    async with db.connection() as conn:
        await service.write_error_batch(
            conn,
            [
                service.ErrorWrite(project_id=a["id"], event=_event("shared", NOW)),
                service.ErrorWrite(project_id=b["id"], event=_event("shared", NOW)),
            ],
        )
    assert await count_issues(db, a["id"]) == 1 and await count_issues(db, b["id"]) == 1


async def test_retention_per_project_keeps_counts_right(db: Database, make_project: Any) -> None:
    short = await make_project(settings={"error_retention_days": 7})
    default = await make_project()  # ERRORS_RETENTION_DAYS (30 here)
    items = []
    for age_days, fp in [(1, "recent"), (10, "mixed"), (2, "mixed"), (20, "old"), (21, "old")]:
        ts = NOW - timedelta(days=age_days)
        items.append(
            service.ErrorWrite(project_id=short["id"], event=_event(fp, ts, environment="e"))
        )
        items.append(service.ErrorWrite(project_id=default["id"], event=_event(fp, ts)))
    items.append(
        service.ErrorWrite(
            project_id=default["id"], event=_event("ancient", NOW - timedelta(days=40))
        )
    )
    async with db.connection() as conn:
        await service.write_error_batch(conn, items)
    settings = Settings(database_url=db.url, errors_retention_days=30)

    deleted = await service.apply_retention(db, settings=settings, now=NOW)
    assert deleted == {short["id"]: 3, default["id"]: 1}
    again = await service.apply_retention(db, settings=settings, now=NOW)  # idempotent
    assert sum(again.values()) == 0

    async with db.read_session() as session:
        rows = (
            await session.execute(
                select(Issue.project_id, Issue.title, Issue.event_count, Issue.times_seen)
            )
        ).all()
    counts = {(p, t): (n, seen) for p, t, n, seen in rows}
    # short retention: "old" lost all its events and is gone; "mixed" lost one of two
    assert counts[(short["id"], "message recent")] == (1, 1)
    assert counts[(short["id"], "message mixed")] == (1, 2)
    assert (short["id"], "message old") not in counts
    assert counts[(default["id"], "message old")] == (2, 2)
    assert (default["id"], "message ancient") not in counts
    assert await count_events(db, short["id"]) == 2
    assert await count_events(db, default["id"]) == 5
    async with db.read_session() as session:
        orphans = (
            await session.execute(
                select(IssueValue).where(~IssueValue.issue_id.in_(select(Issue.id)))
            )
        ).all()
    assert orphans == []


async def test_retention_job_is_registered() -> None:
    import gati.errors.router  # noqa: F401  (registers jobs like the app does)
    from gati.jobs.registry import REGISTRY

    spec = REGISTRY["errors.retention"]
    assert spec.every == timedelta(hours=1)
