"""All SQL of web analytics collection: salts, visits, events, rollups, recent events.

Statistics queries live in :mod:`gati.web.stats_repository`.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy import Table, delete, func, not_, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gati.db.bulk import pg_insert_select
from gati.db.dialect import excluded, insert_ignore, upsert
from gati.db.engine import Dialect
from gati.db.sqlite_rows import execute_rows
from gati.db.types import as_utc, sqlite_timestamp
from gati.projects.models import Project
from gati.web.models import WebEvent, WebRollupHourly, WebSalt, WebSession, WebVisitorHour

EVENTS: Table = WebEvent.__table__  # type: ignore[assignment]
SESSIONS: Table = WebSession.__table__  # type: ignore[assignment]
ROLLUPS: Table = WebRollupHourly.__table__  # type: ignore[assignment]
SALTS: Table = WebSalt.__table__  # type: ignore[assignment]
VISITOR_HOURS: Table = WebVisitorHour.__table__  # type: ignore[assignment]

EVENT_COLUMNS: tuple[str, ...] = (
    "project_id", "id", "event_type", "timestamp", "received_at", "session_id", "visitor_id",
    "visitor_key", "url", "path", "hostname", "referrer", "title", "source", "utm_source",
    "utm_medium", "utm_campaign", "utm_term", "utm_content", "browser", "browser_version", "os",
    "os_version", "device", "country", "ip", "is_bot", "properties", "raw",
)  # fmt: skip
_TIME_COLUMNS = ("timestamp", "received_at")
SESSION_FIELDS: tuple[str, ...] = (
    "project_id", "id", "visitor_id", "visitor_key", "started_at", "last_seen_at", "duration",
    "pageviews", "events", "entry_page", "exit_page", "hostname", "referrer", "source",
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "browser", "os",
    "device", "country", "is_bot",
)  # fmt: skip
SESSION_MUTABLE = (
    "started_at", "last_seen_at", "duration", "pageviews", "events", "entry_page", "exit_page",
)  # fmt: skip
ROLLUP_COUNTERS = ("pageviews", "events", "visits", "bounces", "duration", "visit_changes")
ROLLUP_SHARDS = 8

_JSON_COLUMNS = ("properties", "raw")
_ROLLUP_COLUMNS = ("project_id", "hour", *ROLLUP_COUNTERS, "shard")
_VISITS_TAIL = " ON CONFLICT (project_id, id) DO UPDATE SET " + ", ".join(
    f"{name} = excluded.{name}" for name in SESSION_MUTABLE
)
_ROLLUPS_TAIL = " ON CONFLICT (project_id, hour, shard) DO UPDATE SET " + ", ".join(
    f"{name} = web_rollup_hourly.{name} + excluded.{name}" for name in ROLLUP_COUNTERS
)


def _pg_write(
    events: Sequence[dict[str, Any]],
    visits: Sequence[dict[str, Any]],
    rollups: Sequence[dict[str, Any]],
    shard: int,
) -> tuple[str, list[Any]]:
    """Events, visits and rollups in ONE statement (data-modifying CTEs): one round trip. Each
    table's rows are one JSON document (``bulk.pg_insert_select``; one array per column only
    for values without an exact JSON form), which costs the client about half the CPU of one
    asyncpg array per column."""
    params: list[Any] = []
    parts = []
    for name, table, columns, rows, tail in (
        (
            "new_events",
            EVENTS,
            EVENT_COLUMNS,
            [
                tuple(_json(row[c]) if c in _JSON_COLUMNS else row[c] for c in EVENT_COLUMNS)
                for row in events
            ],
            "",
        ),
        (
            "visits",
            SESSIONS,
            SESSION_FIELDS,
            [tuple(row[c] for c in SESSION_FIELDS) for row in visits],
            _VISITS_TAIL,
        ),
        (
            "rollups",
            ROLLUPS,
            _ROLLUP_COLUMNS,
            [(*(row[c] for c in _ROLLUP_COLUMNS[:-1]), shard) for row in rollups],
            _ROLLUPS_TAIL,
        ),
    ):
        sql, part = pg_insert_select(_PG_DIALECT, table, columns, rows, tail, len(params) + 1)
        parts.append(f"{name} AS ({sql})")
        params.extend(part)
    return f"WITH {', '.join(parts)} SELECT 1", params


_PG_DIALECT = postgresql.dialect()
_PG_LOCK_AND_LOAD = "SELECT * FROM web_lock_and_load_visits($1, $2, $3, $4, $5, $6)"
_PG_EXISTING_EVENTS = (
    "SELECT project_id, id FROM web_events "
    "WHERE (project_id, id) IN (SELECT * FROM unnest($1::int[], $2::text[]))"
)


async def _driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn``, inside the transaction ``conn`` has begun (the
    writer's first statement, :func:`lock_and_load_visits`, goes through SQLAlchemy and begins
    it)."""
    raw = await conn.get_raw_connection()
    return raw.driver_connection


def _dialect(conn: AsyncConnection) -> Dialect:
    name = conn.dialect.name
    if name not in ("sqlite", "postgresql"):
        raise AssertionError(name)
    return name  # type: ignore[return-value]


# --- sites -----------------------------------------------------------------------------------


async def update_project_settings(
    session: AsyncSession, *, project_id: int, settings: dict[str, Any]
) -> None:
    await session.execute(update(Project).where(Project.id == project_id).values(settings=settings))


# --- salts -----------------------------------------------------------------------------------


async def get_salts(conn: AsyncConnection, days: Iterable[date]) -> dict[date, bytes]:
    rows = await conn.execute(select(WebSalt.day, WebSalt.salt).where(WebSalt.day.in_(list(days))))
    return {row.day: bytes(row.salt) for row in rows}


async def insert_salt(conn: AsyncConnection, *, day: date, salt: bytes, now: datetime) -> None:
    stmt = insert_ignore(_dialect(conn), SALTS, index_elements=["day"])
    await conn.execute(stmt, [{"day": day, "salt": salt, "created_at": now}])


async def delete_salts_before(conn: AsyncConnection, day: date) -> None:
    await conn.execute(delete(WebSalt).where(WebSalt.day < day))


# --- visits ----------------------------------------------------------------------------------


async def lock_and_load_visits(
    conn: AsyncConnection,
    *,
    driver: Any = None,
    lock_keys: Sequence[int],
    visitors: Sequence[tuple[int, str]],
    sessions: Sequence[tuple[int, str]],
    since: datetime,
) -> list[dict[str, Any]]:
    """PostgreSQL: take the batch's locks, then read, in one query, the visits of ``visitors``
    (``(project_id, visitor_id)``) seen since ``since`` and the visits named by ``sessions``
    (``(project_id, id)``), each visit once: one call of ``web_lock_and_load_visits`` (migration
    web_0003), the transaction's first statement (through SQLAlchemy, which begins the
    transaction with it, or straight on ``driver``, an asyncpg connection in a transaction of
    its own). SQLite has one writer connection and no locks: :func:`sqlite_load_visits`."""
    args = (
        sorted(set(lock_keys)),
        [p for p, _ in visitors],
        [v for _, v in visitors],
        since,
        [p for p, _ in sessions],
        [s for _, s in sessions],
    )
    if driver is not None:
        rows: Iterable[Any] = await driver.fetch(_PG_LOCK_AND_LOAD, *args)
    else:
        rows = [row._mapping for row in await conn.exec_driver_sql(_PG_LOCK_AND_LOAD, args)]
    # A visit both of a batch's visitors and named by its session id comes twice (web_0003).
    visits: dict[tuple[int, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["project_id"], row["id"])
        if key not in visits:
            visits[key] = dict(row)
    return list(visits.values())


# --- SQLite: the writer's statements on aiosqlite's thread, in one hop (bulk.sqlite_run) -------
#
# Plain sqlite3 calls instead of SQLAlchemy statements: a group commit of /collect on SQLite
# made six thread hops (lookup, insert, two upserts, BEGIN, COMMIT), each waiting for a turn of
# the busy event loop, and building and compiling its statements cost the event loop ~150 µs of
# CPU per event (docs/benchmarks.md). Timestamps are stored as SQLAlchemy stores them
# (``sqlite_timestamp``) and read back as UTC datetimes, booleans as 0/1.

_SQLITE_VISIT_COLUMNS = ", ".join(SESSION_FIELDS)
_SQLITE_TIME_FIELDS = frozenset({"started_at", "last_seen_at"})


def _grouped(keys: Iterable[tuple[int, str]]) -> dict[int, list[str]]:
    by_project: dict[int, list[str]] = {}
    for project_id, value in keys:
        by_project.setdefault(project_id, []).append(value)
    return by_project


def _chunks(values: Sequence[str], size: int = 5000) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _visit_from_sqlite(names: Sequence[str], record: Sequence[Any]) -> dict[str, Any]:
    row = dict(zip(names, record, strict=True))
    for name in _SQLITE_TIME_FIELDS:
        value = row[name]
        if isinstance(value, str):
            row[name] = datetime.fromisoformat(value).replace(tzinfo=UTC)
    row["is_bot"] = bool(row["is_bot"])
    return row


def sqlite_load_visits(
    db: sqlite3.Connection,
    *,
    visitors: Sequence[tuple[int, str]],
    sessions: Sequence[tuple[int, str]],
    since: datetime,
) -> list[dict[str, Any]]:
    """SQLite (on aiosqlite's thread): the visits of ``visitors`` seen since ``since`` and the
    visits named by ``sessions``, each once. One query per project and kind, each an index
    search (``ix_web_sessions_visitor``, the primary key)."""
    found: dict[tuple[int, str], dict[str, Any]] = {}
    queries: list[tuple[str, list[Any]]] = []
    for project_id, values in _grouped(visitors).items():
        for chunk in _chunks(values):
            queries.append(
                (
                    f"SELECT {_SQLITE_VISIT_COLUMNS} FROM web_sessions WHERE project_id = ? "
                    f"AND visitor_id IN ({_marks(len(chunk))}) AND last_seen_at >= ?",
                    [project_id, *chunk, sqlite_timestamp(since)],
                )
            )
    for project_id, values in _grouped(sessions).items():
        for chunk in _chunks(values):
            queries.append(
                (
                    f"SELECT {_SQLITE_VISIT_COLUMNS} FROM web_sessions WHERE project_id = ? "
                    f"AND id IN ({_marks(len(chunk))})",
                    [project_id, *chunk],
                )
            )
    for sql, params in queries:
        for record in db.execute(sql, params):
            row = _visit_from_sqlite(SESSION_FIELDS, record)
            found[(row["project_id"], row["id"])] = row
    return list(found.values())


def sqlite_existing_event_ids(
    db: sqlite3.Connection, keys: Sequence[tuple[int, str]]
) -> set[tuple[int, str]]:
    """SQLite (on aiosqlite's thread): which of ``keys`` (``(project_id, id)``) are stored."""
    stored: set[tuple[int, str]] = set()
    for project_id, values in _grouped(keys).items():
        for chunk in _chunks(values):
            sql = f"SELECT id FROM web_events WHERE project_id = ? AND id IN ({_marks(len(chunk))})"
            stored.update((project_id, str(r[0])) for r in db.execute(sql, [project_id, *chunk]))
    return stored


def sqlite_write_batch(
    db: sqlite3.Connection,
    *,
    events: Sequence[dict[str, Any]],
    visits: Sequence[dict[str, Any]],
    rollups: Sequence[dict[str, Any]],
) -> None:
    """SQLite (on aiosqlite's thread): what :func:`write_batch` does, as multi-row statements
    (one writer on SQLite: every rollup increment goes to shard 0)."""
    execute = db.execute
    if events:
        records = []
        for row in events:
            values = []
            for name in EVENT_COLUMNS:
                value = row[name]
                if name in _TIME_COLUMNS:
                    value = sqlite_timestamp(value)
                elif name in _JSON_COLUMNS:
                    value = _json(value)
                values.append(value)
            records.append(values)
        execute_rows(execute, _SQLITE_INSERT_EVENTS, records)
    if visits:
        execute_rows(
            execute,
            _SQLITE_UPSERT_VISITS,
            [
                [
                    sqlite_timestamp(row[name]) if name in _SQLITE_TIME_FIELDS else row[name]
                    for name in SESSION_FIELDS
                ]
                for row in visits
            ],
        )
    if rollups:
        execute_rows(
            execute,
            _SQLITE_UPSERT_ROLLUPS,
            [
                [row["project_id"], sqlite_timestamp(row["hour"])]
                + [row[name] for name in ROLLUP_COUNTERS]
                + [0]
                for row in rollups
            ],
        )


async def existing_event_ids(
    conn: AsyncConnection, keys: Sequence[tuple[int, str]]
) -> set[tuple[int, str]]:
    """PostgreSQL: which of ``keys`` (``(project_id, id)``) are stored events (SQLite:
    :func:`sqlite_existing_event_ids`)."""
    if not keys:
        return set()
    driver = await _driver(conn)
    records = await driver.fetch(_PG_EXISTING_EVENTS, [p for p, _ in keys], [i for _, i in keys])
    return {(int(r[0]), str(r[1])) for r in records}


def _json(value: Any) -> str | None:
    return orjson.dumps(value).decode() if value is not None else None


async def write_batch(
    conn: AsyncConnection,
    *,
    events: Sequence[dict[str, Any]],
    visits: Sequence[dict[str, Any]],
    rollups: Sequence[dict[str, Any]],
) -> None:
    """PostgreSQL, in one statement: insert ``events`` (new ones: the caller has checked
    client ids under their locks), insert or update ``visits`` (counters and bounds computed by
    the caller under the visitors' locks; the attribution of an existing visit, its first
    event's, never changes) and add ``rollups`` (``project_id``, ``hour`` and increments of
    :data:`ROLLUP_COUNTERS`, sorted by key) to a random shard (SQLite:
    :func:`sqlite_write_batch`)."""
    if not events and not visits and not rollups:
        return
    sql, args = _pg_write(events, visits, rollups, random.randrange(ROLLUP_SHARDS))
    driver = await _driver(conn)
    await driver.execute(sql, *args)


_SQLITE_INSERT_EVENTS = (
    f"INSERT INTO web_events ({', '.join(EVENT_COLUMNS)}) VALUES ({_marks(len(EVENT_COLUMNS))})"
)
# The same ON CONFLICT clauses as PostgreSQL's (SQLite spells upserts alike).
_SQLITE_UPSERT_VISITS = (
    f"INSERT INTO web_sessions ({_SQLITE_VISIT_COLUMNS}) VALUES ({_marks(len(SESSION_FIELDS))})"
    + _VISITS_TAIL
)
_SQLITE_UPSERT_ROLLUPS = (
    f"INSERT INTO web_rollup_hourly ({', '.join(_ROLLUP_COLUMNS)}) "
    f"VALUES ({_marks(len(_ROLLUP_COLUMNS))})" + _ROLLUPS_TAIL
)


# --- visitor key sets per hour (the web.visitor_hours job) -----------------------------------


def human_visits(project_id: int, start: datetime, end: datetime) -> list[Any]:
    """Conditions of the human visits of a project that started in ``[start, end)``:
    ``not_(is_bot)`` renders as the predicate of the partial index ix_web_sessions_visitors
    (``NOT is_bot`` on PostgreSQL, ``is_bot = 0`` on SQLite), so both databases use it."""
    return [
        SESSIONS.c.project_id == project_id,
        SESSIONS.c.started_at >= start,
        SESSIONS.c.started_at < end,
        not_(SESSIONS.c.is_bot),
    ]


async def stale_visitor_hours(
    conn: AsyncConnection, *, limit: int
) -> list[tuple[int, datetime, int]]:
    """``(project_id, hour, visit_changes)`` of hours with visits whose key set is missing or
    older than the hour's ``visit_changes`` (summed over the rollup shards)."""
    hours = (
        select(
            ROLLUPS.c.project_id,
            ROLLUPS.c.hour,
            func.sum(ROLLUPS.c.visits).label("visits"),
            func.sum(ROLLUPS.c.visit_changes).label("changes"),
        )
        .group_by(ROLLUPS.c.project_id, ROLLUPS.c.hour)
        .subquery("hours")
    )
    stmt = (
        select(hours.c.project_id, hours.c.hour, hours.c.changes)
        .select_from(
            hours.outerjoin(
                VISITOR_HOURS,
                (VISITOR_HOURS.c.project_id == hours.c.project_id)
                & (VISITOR_HOURS.c.hour == hours.c.hour),
            )
        )
        .where(
            hours.c.visits > 0,
            VISITOR_HOURS.c.version.is_(None) | (VISITOR_HOURS.c.version != hours.c.changes),
        )
        .order_by(hours.c.project_id, hours.c.hour)
        .limit(limit)
    )
    return [(int(r[0]), as_utc(r[1]), int(r[2])) for r in await conn.execute(stmt)]


async def visitor_keys_of_hour(
    conn: AsyncConnection, *, project_id: int, hour: datetime, end: datetime
) -> list[int]:
    stmt = (
        select(SESSIONS.c.visitor_key)
        .where(*human_visits(project_id, hour, end))
        .distinct()
        .order_by(SESSIONS.c.visitor_key)
    )
    return [int(r[0]) for r in await conn.execute(stmt)]


async def save_visitor_hours(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """``rows``: ``{"project_id", "hour", "version", "keys", "sketch"}``."""
    if not rows:
        return
    stmt = upsert(
        _dialect(conn),
        VISITOR_HOURS,
        index_elements=["project_id", "hour"],
        set_={name: excluded(name) for name in ("version", "keys", "sketch")},
    )
    await conn.execute(stmt, list(rows))


# --- reads -----------------------------------------------------------------------------------


async def list_recent(
    session: AsyncSession, *, project_ids: Sequence[int], limit: int
) -> list[tuple[WebEvent, str]]:
    if not project_ids:
        return []
    stmt = (
        select(WebEvent, Project.slug)
        .join(Project, Project.id == WebEvent.project_id)
        .where(WebEvent.project_id.in_(list(project_ids)))
        .order_by(WebEvent.timestamp.desc(), WebEvent.id.desc())
        .limit(limit)
    )
    return [(row[0], row[1]) for row in (await session.execute(stmt)).all()]


async def count_events(conn: AsyncConnection, *, project_id: int) -> int:
    from sqlalchemy import func

    result = await conn.execute(
        select(func.count()).select_from(EVENTS).where(EVENTS.c.project_id == project_id)
    )
    return int(result.scalar_one())
