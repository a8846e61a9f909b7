"""All SQL of error tracking. Writes take a Core ``AsyncConnection`` (group commit, jobs); reads
take an ``AsyncSession`` and always start from the caller's project ids."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

import orjson
from sqlalchemy import (
    Select,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    false,
    func,
    literal_column,
    null,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gati.db import bulk, sqlite_rows
from gati.db import dialect as d
from gati.db.types import sqlite_timestamp, utcnow
from gati.errors.models import ErrorEvent, Issue, IssueValue
from gati.projects.models import Project

_CHUNK = 500
_issues = cast(Table, Issue.__table__)
_values = cast(Table, IssueValue.__table__)
_events = cast(Table, ErrorEvent.__table__)

EVENT_COLUMNS: tuple[str, ...] = (
    "project_id",
    "event_id",
    "fingerprint",
    "timestamp",
    "received_at",
    "source",
    "level",
    "platform",
    "title",
    "culprit",
    "message",
    "exception_type",
    "exception_value",
    "transaction_name",
    "request_method",
    "request_url",
    "status_code",
    "environment",
    "release",
    "server_name",
    "payload",  # JSON text (the body as received, or the report re-serialized)
)
_TS_INDEXES = (EVENT_COLUMNS.index("timestamp"), EVENT_COLUMNS.index("received_at"))
assert _TS_INDEXES[1] == _TS_INDEXES[0] + 1  # insert_events_sqlite converts them as a pair


# ---------------------------------------------------------------------------------------------
# Writes (one batch = one transaction, driven by the group committer)
# ---------------------------------------------------------------------------------------------


def _issue_conflict_set(dialect: str) -> dict[str, Any]:
    """What an existing issue becomes when a batch brings it events (``excluded``: the batch's
    row). One definition for both databases' batch statements."""
    c = _issues.c
    x = d.excluded
    has_new = x("event_count") > 0
    newer = and_(has_new, x("last_seen") >= c.last_seen)
    reopen = and_(has_new, c.status == "resolved")
    return {
        "event_count": c.event_count + x("event_count"),
        "times_seen": c.times_seen + x("times_seen"),
        "first_seen": case(
            (has_new, d.least(dialect, c.first_seen, x("first_seen"))),  # type: ignore[arg-type]
            else_=c.first_seen,
        ),
        "last_seen": case(
            (has_new, d.greatest(dialect, c.last_seen, x("last_seen"))),  # type: ignore[arg-type]
            else_=c.last_seen,
        ),
        "title": case((newer, x("title")), else_=c.title),
        "culprit": case((newer, x("culprit")), else_=c.culprit),
        "level": case((newer, x("level")), else_=c.level),
        "is_regressed": case((reopen, true()), else_=c.is_regressed),
        "resolved_at": case((reopen, null()), else_=c.resolved_at),
        "status_changed_at": case((reopen, x("updated_at")), else_=c.status_changed_at),
        "status": case((reopen, "unresolved"), else_=c.status),
        "updated_at": x("updated_at"),
    }


_ISSUE_INSERT_COLUMNS = (
    "project_id",
    "fingerprint",
    "title",
    "culprit",
    "type",
    "level",
    "platform",
    "status",
    "is_regressed",
    "first_seen",
    "last_seen",
    "event_count",
    "times_seen",
    "grouping",
    "created_at",
    "updated_at",
)
_PG_EVENTS_TAIL = (
    " ON CONFLICT (project_id, event_id) DO NOTHING"
    " RETURNING id, project_id, event_id, fingerprint, timestamp, title, culprit, level,"
    " environment, release"
)


@functools.cache
def _pg_batch_sql(insert_events_sql: str, issues_param: int) -> str:
    """The PostgreSQL batch statement (see :func:`store_batch_pg`) around the events insert;
    ``$issues_param`` is the issues' JSON document. The issue upsert's ON CONFLICT clause is
    SQLAlchemy's, from the same definition as the SQLite upsert."""
    c = _issues.c
    source: Any = select(
        *(
            literal_column(expr)
            for expr in (
                "a.project_id",
                "a.fingerprint",
                "a.title",
                "a.culprit",
                "f.v->>2",
                "a.level",
                "f.v->>3",
                "'unresolved'",
                "false",
                "a.first_seen",
                "a.last_seen",
                "a.n",
                "a.n",
                "f.v->4",
                "now()",
                "now()",
            )
        )
    ).select_from(
        text(
            f"agg AS a JOIN jsonb_array_elements(${issues_param}::jsonb) AS f(v) "
            "ON (f.v->>0)::bigint = a.project_id AND f.v->>1 = a.fingerprint "
            "ORDER BY a.project_id, a.fingerprint"  # one lock order for concurrent writers
        )
    )
    upsert = (
        postgresql.insert(_issues)
        .from_select(list(_ISSUE_INSERT_COLUMNS), source)
        .on_conflict_do_update(
            index_elements=["project_id", "fingerprint"], set_=_issue_conflict_set("postgresql")
        )
        .returning(c.id, c.project_id, c.fingerprint)
    )
    upsert_sql = str(
        upsert.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    )
    return (
        f"WITH ins AS ({insert_events_sql}), "
        "agg AS (SELECT project_id, fingerprint, count(*) AS n, min(timestamp) AS first_seen, "
        "max(timestamp) AS last_seen, "
        "(array_agg(title ORDER BY timestamp DESC))[1] AS title, "
        "(array_agg(culprit ORDER BY timestamp DESC))[1] AS culprit, "
        "(array_agg(level ORDER BY timestamp DESC))[1] AS level "
        "FROM ins GROUP BY project_id, fingerprint), "
        f"up AS ({upsert_sql}), "
        "vals AS (INSERT INTO issue_values (issue_id, kind, value, first_seen) "
        "SELECT u.id, v.kind, v.value, min(i.timestamp) FROM ins AS i "
        "JOIN up AS u ON u.project_id = i.project_id AND u.fingerprint = i.fingerprint "
        "CROSS JOIN LATERAL (VALUES ('environment', i.environment), ('release', i.release)) "
        "AS v(kind, value) WHERE v.value IS NOT NULL AND v.value <> '' "
        "GROUP BY u.id, v.kind, v.value ORDER BY u.id, v.kind, v.value "
        "ON CONFLICT (issue_id, kind, value) DO NOTHING) "
        "SELECT i.project_id, i.event_id, i.id, u.id FROM ins AS i "
        "JOIN up AS u ON u.project_id = i.project_id AND u.fingerprint = i.fingerprint"
    )


async def store_batch_pg(
    conn: AsyncConnection,
    rows: Sequence[tuple[Any, ...]],
    issues: Sequence[tuple[int, str, str | None, str, list[str]]],
) -> dict[tuple[int, str], tuple[int, int]]:
    """PostgreSQL: a batch of error events, their issues and the issues' environments and
    releases in ONE statement, hence atomic on its own (the group committer runs it without
    BEGIN/COMMIT: one round trip). Events whose ``(project_id, event_id)`` is stored already
    are dropped; only the new ones count towards their issues, which are upserted once per
    fingerprint as :func:`store_batch_sqlite` does. ``rows``: ``EVENT_COLUMNS`` order, no duplicate
    keys; ``issues``: (project_id, fingerprint, type, platform, grouping components) of every
    fingerprint in ``rows`` (what a new issue starts with). Returns ``{(project_id, event_id):
    (event row id, issue id)}`` of the events inserted."""
    if not rows:
        return {}
    insert_sql, params = bulk.pg_insert_select(
        conn.dialect, _events, EVENT_COLUMNS, rows, _PG_EVENTS_TAIL
    )
    sql = _pg_batch_sql(insert_sql, len(params) + 1)
    document = orjson.dumps(issues).decode()
    records = await bulk.pg_fetch(conn, sql, [*params, document])
    return {
        (project_id, event_id): (row_id, issue_id)
        for project_id, event_id, row_id, issue_id in records
    }


@functools.cache
def _sqlite_upsert_sql() -> tuple[str, str, str]:
    """The SQLite issue upsert as text around its VALUES rows: (head, one row's marks, tail)."""
    row = "(" + ", ".join("?" * len(_ISSUE_INSERT_COLUMNS)) + ")"
    stmt = (
        sqlite.insert(_issues)
        .values({name: literal_column("?") for name in _ISSUE_INSERT_COLUMNS})
        .on_conflict_do_update(
            index_elements=["project_id", "fingerprint"], set_=_issue_conflict_set("sqlite")
        )
    )
    sql = str(stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    head, tail = sql.split(row, 1)
    return head, row, tail


_SQLITE_READ_BACK = (
    "SELECT json_group_array(json_array(e.project_id, e.event_id, e.id, i.id)) "
    f"FROM {_events.name} AS e JOIN {_issues.name} AS i "
    "ON i.project_id = e.project_id AND i.fingerprint = e.fingerprint WHERE e.id > ?"
)
_SQLITE_MAX_ID = f"SELECT coalesce(max(id), 0) FROM {_events.name}"
_SQLITE_NEW_KEYS = (
    f"SELECT json_group_array(json_array(project_id, event_id)) FROM {_events.name} WHERE id > ?"
)


@dataclass(slots=True)
class SqliteBatch:
    """A batch's SQLite statements, built on the event loop's thread before the one hop to the
    driver's thread (:func:`prepare_batch_sqlite`), so that the hop runs little Python."""

    rows: Sequence[tuple[Any, ...]]
    issues: Sequence[tuple[int, str, str | None, str, list[str]]]
    inserts: list[tuple[str, list[Any]]]
    upserts: list[tuple[str, list[Any]]]  # for when every event is new


def prepare_batch_sqlite(
    rows: Sequence[tuple[Any, ...]],
    issues: Sequence[tuple[int, str, str | None, str, list[str]]],
) -> SqliteBatch:
    """``rows``: ``EVENT_COLUMNS`` order, aware UTC datetimes, no duplicate keys; ``issues`` as
    for :func:`store_batch_pg`."""
    ts, received = _TS_INDEXES
    width = len(EVENT_COLUMNS)
    per_statement = bulk.SQLITE_MAX_VARIABLES // width
    inserts: list[tuple[str, list[Any]]] = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        params: list[Any] = []
        for row in chunk:
            params.extend(row[:ts])
            params.append(sqlite_timestamp(row[ts]))
            params.append(sqlite_timestamp(row[received]))
            params.extend(row[received + 1 :])
        marks = ", ".join([_row_marks(width)] * len(chunk))
        inserts.append((_SQLITE_EVENTS_HEAD + marks + _SQLITE_EVENTS_TAIL, params))
    return SqliteBatch(rows, issues, inserts, _issue_upserts_sqlite(rows, issues))


def store_batch_sqlite(
    db: sqlite3.Connection, batch: SqliteBatch
) -> dict[tuple[int, str], tuple[int, int]]:
    """SQLite: what :func:`store_batch_pg` does but the issues' environments and releases (the
    caller knows which it stored already), on the driver's thread (``bulk.sqlite_run``) in the
    caller's transaction: the events in one multi-row ``INSERT ... ON CONFLICT DO NOTHING``,
    ONE issue upsert with one row per fingerprint carrying exactly the new events, and ONE row
    of JSON with each new event's row id and issue id.

    No RETURNING: every row of a result, like every statement, is a call into SQLite that gives
    the GIL up and then waits to take it back, up to a switch interval while the event loop is
    busy, so a RETURNING row per event and per issue made a 32-event group wait ~10 ms instead
    of ~2 (``bench/errors/sqlite_gil.py``). The new events are the rows above the table's
    largest id before the insert: SQLite gives a new row the largest id + 1, and the write lock
    is held from before that read (``bulk.sqlite_write_lock``)."""
    if not batch.rows:
        return {}
    bulk.sqlite_write_lock(db)
    (before,) = db.execute(_SQLITE_MAX_ID).fetchone()
    inserted = sum(db.execute(sql, params).rowcount for sql, params in batch.inserts)
    if not inserted:
        return {}
    upserts = batch.upserts
    if inserted != len(batch.rows):  # some were stored already (retries): only the others count
        (document,) = db.execute(_SQLITE_NEW_KEYS, (before,)).fetchone()
        new_keys = {(p, event_id) for p, event_id in orjson.loads(document)}
        new_rows = [row for row in batch.rows if (row[0], row[1]) in new_keys]
        upserts = _issue_upserts_sqlite(new_rows, batch.issues)
    for sql, params in upserts:
        db.execute(sql, params)
    (document,) = db.execute(_SQLITE_READ_BACK, (before,)).fetchone()
    return {(p, event_id): (row_id, issue) for p, event_id, row_id, issue in orjson.loads(document)}


_FINGERPRINT = EVENT_COLUMNS.index("fingerprint")
_LEVEL, _TITLE, _CULPRIT = (EVENT_COLUMNS.index(c) for c in ("level", "title", "culprit"))


def _issue_upserts_sqlite(
    rows: Sequence[tuple[Any, ...]],
    issues: Sequence[tuple[int, str, str | None, str, list[str]]],
) -> list[tuple[str, list[Any]]]:
    """ONE statement per ~2,000 issues, one row per (project, fingerprint) of the new events
    ``rows``: new issues are inserted; existing ones get the events' count, first/last seen,
    the newest event's title/culprit/level, and are reopened (marked regressed) when resolved
    (the ON CONFLICT clause of PostgreSQL's batch statement). Rows go in sorted by key so that
    concurrent writers would lock issues in one order."""
    ts = _TS_INDEXES[0]
    # (project, fingerprint) -> [first seen, last seen, newest row, events]
    agg: dict[tuple[int, str], list[Any]] = {}
    for row in rows:
        key = (row[0], row[_FINGERPRINT])
        a = agg.get(key)
        if a is None:
            agg[key] = [row[ts], row[ts], row, 1]
            continue
        a[3] += 1
        if row[ts] < a[0]:
            a[0] = row[ts]
        if row[ts] >= a[1]:
            a[1], a[2] = row[ts], row
    now = sqlite_timestamp(utcnow())
    values: list[tuple[Any, ...]] = []
    for project_id, fingerprint, type_, platform, grouping in sorted(issues, key=lambda i: i[:2]):
        a = agg.get((project_id, fingerprint))
        if a is None:
            continue
        first, last, newest, count = a
        values.append(
            (
                project_id,
                fingerprint,
                newest[_TITLE],
                newest[_CULPRIT],
                type_,
                newest[_LEVEL],
                platform,
                "unresolved",
                0,
                sqlite_timestamp(first),
                sqlite_timestamp(last),
                count,
                count,
                orjson.dumps(grouping).decode(),
                now,
                now,
            )
        )
    head, marks, tail = _sqlite_upsert_sql()
    per_statement = bulk.SQLITE_MAX_VARIABLES // len(_ISSUE_INSERT_COLUMNS)
    statements: list[tuple[str, list[Any]]] = []
    for start in range(0, len(values), per_statement):
        chunk = values[start : start + per_statement]
        sql = head + ", ".join([marks] * len(chunk)) + tail
        statements.append((sql, [value for row in chunk for value in row]))
    return statements


@functools.cache
def _row_marks(width: int) -> str:
    return "(" + ", ".join("?" * width) + ")"


_SQLITE_EVENTS_HEAD = f"INSERT INTO {_events.name} ({', '.join(EVENT_COLUMNS)}) VALUES "
_SQLITE_EVENTS_TAIL = " ON CONFLICT (project_id, event_id) DO NOTHING"


_SQLITE_VALUES_SQL = (
    "INSERT INTO issue_values (issue_id, kind, value, first_seen) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (issue_id, kind, value) DO NOTHING"
)


def insert_issue_values_sqlite(
    db: sqlite3.Connection, values: Iterable[tuple[int, str, str, datetime]]
) -> None:
    """Remember the environments and releases issues were seen in (existing pairs are kept);
    on the driver's thread (``bulk.sqlite_run``)."""
    rows = [
        (i, k, v, sqlite_timestamp(ts)) for i, k, v, ts in sorted(set(values), key=lambda r: r[:3])
    ]
    if rows:
        sqlite_rows.execute_rows(db.execute, _SQLITE_VALUES_SQL, rows)


async def row_ids_by_event_id(
    conn: AsyncConnection, *, project_id: int, event_ids: Sequence[str]
) -> dict[str, int]:
    c = _events.c
    found: dict[str, int] = {}
    unique = sorted(set(event_ids))
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        result = await conn.execute(
            select(c.event_id, c.id).where(c.project_id == project_id, c.event_id.in_(chunk))
        )
        found.update({event_id: row_id for event_id, row_id in result})
    return found


# ---------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------

IssueSort = Literal["last_seen", "first_seen", "count"]


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _issue_filters(
    stmt: Select[Any],
    *,
    project_ids: Sequence[int],
    status: str | None,
    environment: str | None,
    release: str | None,
    text: str | None,
) -> Select[Any]:
    c = Issue
    stmt = stmt.where(c.project_id.in_(project_ids))
    if status == "regressed":
        stmt = stmt.where(c.is_regressed.is_(True), c.status == "unresolved")
    elif status:
        stmt = stmt.where(c.status == status)
    for kind, value in (("environment", environment), ("release", release)):
        if value:
            stmt = stmt.where(
                exists().where(
                    IssueValue.issue_id == c.id, IssueValue.kind == kind, IssueValue.value == value
                )
            )
    if text:
        pattern = _like_pattern(text)
        stmt = stmt.where(
            or_(
                c.title.ilike(pattern, escape="\\"),
                c.culprit.ilike(pattern, escape="\\"),
                c.type.ilike(pattern, escape="\\"),
            )
        )
    return stmt


async def list_issues(
    session: AsyncSession,
    *,
    project_ids: Sequence[int],
    status: str | None = None,
    environment: str | None = None,
    release: str | None = None,
    text: str | None = None,
    sort: IssueSort = "last_seen",
    limit: int = 25,
    offset: int = 0,
) -> tuple[list[Issue], int]:
    if not project_ids:
        return [], 0
    filters: dict[str, Any] = {
        "project_ids": project_ids,
        "status": status,
        "environment": environment,
        "release": release,
        "text": text,
    }
    order: Any = {
        "last_seen": Issue.last_seen.desc(),
        "first_seen": Issue.first_seen.desc(),
        "count": Issue.event_count.desc(),
    }[sort]
    stmt = _issue_filters(select(Issue), **filters).order_by(order, Issue.id.desc())
    rows = list((await session.scalars(stmt.limit(limit).offset(offset))).all())
    total = (
        await session.execute(_issue_filters(select(func.count(Issue.id)), **filters))
    ).scalar_one()
    return rows, int(total)


async def get_issue(
    session: AsyncSession, *, project_ids: Sequence[int] | None, issue_id: int
) -> Issue | None:
    """``project_ids=None`` only for callers that check access themselves."""
    stmt = select(Issue).where(Issue.id == issue_id)
    if project_ids is not None:
        stmt = stmt.where(Issue.project_id.in_(project_ids) if project_ids else false())
    return (await session.scalars(stmt)).first()


async def issue_values(
    session: AsyncSession, *, issue_ids: Sequence[int]
) -> dict[int, dict[str, list[str]]]:
    out: dict[int, dict[str, list[str]]] = {
        i: {"environment": [], "release": []} for i in issue_ids
    }
    if not issue_ids:
        return out
    stmt = (
        select(IssueValue.issue_id, IssueValue.kind, IssueValue.value)
        .where(IssueValue.issue_id.in_(issue_ids))
        .order_by(IssueValue.issue_id, IssueValue.first_seen, IssueValue.value)
    )
    for issue_id, kind, value in await session.execute(stmt):
        out.setdefault(issue_id, {"environment": [], "release": []}).setdefault(kind, []).append(
            value
        )
    return out


async def set_issue_status(
    session: AsyncSession, *, issue: Issue, status: str, now: datetime
) -> Issue:
    issue.status = status
    issue.is_regressed = False
    issue.resolved_at = now if status == "resolved" else None
    issue.status_changed_at = now
    issue.updated_at = now
    await session.flush()
    return issue


async def list_issue_events(
    session: AsyncSession, *, issue: Issue, limit: int, offset: int
) -> tuple[list[ErrorEvent], int]:
    of_issue = and_(
        ErrorEvent.project_id == issue.project_id, ErrorEvent.fingerprint == issue.fingerprint
    )
    stmt = (
        select(ErrorEvent)
        .where(of_issue)
        .order_by(ErrorEvent.timestamp.desc(), ErrorEvent.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = list((await session.scalars(stmt)).all())
    total = (await session.execute(select(func.count(ErrorEvent.id)).where(of_issue))).scalar_one()
    return rows, int(total)


async def get_error_event(
    session: AsyncSession,
    *,
    project_ids: Sequence[int],
    row_id: int | None = None,
    event_id: str | None = None,
) -> tuple[ErrorEvent, int | None] | None:
    """The event and its issue's id."""
    if not project_ids:
        return None
    stmt = (
        select(ErrorEvent, Issue.id)
        .outerjoin(
            Issue,
            and_(
                Issue.project_id == ErrorEvent.project_id,
                Issue.fingerprint == ErrorEvent.fingerprint,
            ),
        )
        .where(ErrorEvent.project_id.in_(project_ids))
    )
    if row_id is not None:
        stmt = stmt.where(ErrorEvent.id == row_id)
    elif event_id is not None:
        stmt = stmt.where(ErrorEvent.event_id == event_id)
    else:
        return None
    row = (await session.execute(stmt.order_by(ErrorEvent.id).limit(1))).first()
    return (row[0], row[1]) if row is not None else None


# ---------------------------------------------------------------------------------------------
# Retention
# ---------------------------------------------------------------------------------------------


async def delete_events_before(
    conn: AsyncConnection, *, project_id: int, cutoff: datetime, limit: int
) -> dict[str, int]:
    """Delete up to ``limit`` events older than ``cutoff``; return deleted counts per issue
    fingerprint."""
    c = _events.c
    doomed = (
        select(c.id)
        .where(c.project_id == project_id, c.timestamp < cutoff)
        .order_by(c.timestamp)
        .limit(limit)
        .scalar_subquery()
    )
    result = await conn.execute(delete(_events).where(c.id.in_(doomed)).returning(c.fingerprint))
    counts: dict[str, int] = {}
    for (fingerprint,) in result:
        counts[fingerprint] = counts.get(fingerprint, 0) + 1
    return counts


async def subtract_issue_counts(
    conn: AsyncConnection, *, project_id: int, counts: dict[str, int]
) -> None:
    """Lower stored-event counts (a decrement, so that it commutes with concurrent ingestion)."""
    if not counts:
        return
    c = _issues.c
    stmt = (
        update(_issues)
        .where(c.project_id == bindparam("b_project"), c.fingerprint == bindparam("b_fp"))
        .values(event_count=c.event_count - bindparam("b_n"))
    )
    await conn.execute(
        stmt,
        [{"b_project": project_id, "b_fp": f, "b_n": n} for f, n in sorted(counts.items())],
    )


async def delete_empty_issues(
    conn: AsyncConnection, *, project_id: int, fingerprints: Iterable[str], cutoff: datetime
) -> int:
    """Issues whose every event has expired go too (their last event is older than the cutoff)."""
    keys = sorted(fingerprints)
    if not keys:
        return 0
    c = _issues.c
    e = _events.c
    deleted = 0
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        result = await conn.execute(
            delete(_issues).where(
                and_(
                    c.project_id == project_id,
                    c.fingerprint.in_(chunk),
                    c.event_count <= 0,
                    c.last_seen < cutoff,
                    ~exists().where(e.project_id == c.project_id, e.fingerprint == c.fingerprint),
                )
            )
        )
        deleted += result.rowcount or 0
    return deleted


async def projects_with_events_before(conn: AsyncConnection, *, cutoff: datetime) -> list[int]:
    c = _events.c
    result = await conn.execute(select(c.project_id).where(c.timestamp < cutoff).distinct())
    return [row[0] for row in result]


async def list_project_ids_with_errors(conn: AsyncConnection) -> list[int]:
    result = await conn.execute(select(_issues.c.project_id).distinct())
    return [row[0] for row in result]


# ---------------------------------------------------------------------------------------------
# Per-project error settings (keys of projects.settings)
# ---------------------------------------------------------------------------------------------


async def merge_project_settings(
    session: AsyncSession, *, project_id: int, changes: dict[str, Any]
) -> dict[str, Any] | None:
    """Set (or, for ``None``, remove) keys of the project's settings, leaving the other keys
    (web analytics, ...) alone. The row is locked first (PostgreSQL; SQLite has one writer), so
    a concurrent change of another key is not lost. Returns the new settings (None: no project)."""
    current = (
        await session.execute(
            select(Project.settings).where(Project.id == project_id).with_for_update()
        )
    ).first()
    if current is None:
        return None
    merged = dict(current[0] or {})
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    await session.execute(update(Project).where(Project.id == project_id).values(settings=merged))
    return merged
