"""The batch writer (one issue upsert per fingerprint per batch) and retention, on both dialects."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, select

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


class _IssueStatements:
    """Counts statements that write the issues table and the rows they carry."""

    def __init__(self) -> None:
        self.statements = 0
        self.rows = 0

    def __call__(
        self,
        conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        head = statement.lstrip().upper()
        if head.startswith(("INSERT INTO ISSUES ", "UPDATE ISSUES ")):
            self.statements += 1
            if head.startswith("INSERT"):
                # multi-row VALUES (insertmanyvalues): count its row groups
                self.rows += (
                    head.split(" VALUES ", 1)[1].split(" ON CONFLICT", 1)[0].count("),") + 1
                )
            elif executemany:
                self.rows += len(parameters)
            else:
                self.rows += 1


async def test_ten_thousand_events_hundred_fingerprints(db: Database, make_project: Any) -> None:
    project = await make_project()
    items = [
        service.ErrorWrite(
            project_id=project["id"], event=_event(f"fp-{i % 100}", NOW - timedelta(seconds=i))
        )
        for i in range(10_000)
    ]
    counter = _IssueStatements()
    event.listen(db.write_engine.sync_engine, "before_cursor_execute", counter)
    try:
        async with db.connection() as conn:
            results = await service.write_error_batch(conn, items)
    finally:
        event.remove(db.write_engine.sync_engine, "before_cursor_execute", counter)
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
