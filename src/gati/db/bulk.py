"""The dialect's fastest duplicate-safe bulk insert.

``insert_new(conn, table, columns, rows, key)`` stores rows whose key is not present yet and returns
the keys it actually inserted, so that callers update derived totals only for new rows.

- PostgreSQL: binary COPY straight into the table inside a savepoint; if that hits a duplicate
  key, COPY into a temporary staging table and one
  ``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING key`` instead (duplicates, within the
  batch or against stored rows, are dropped by the database, race-free across concurrent writers).
- SQLite: all the rows as multi-row statements (``gati.db.sqlite_rows``) inside a savepoint; if
  fewer rows went in than were sent (ON CONFLICT DO NOTHING), the savepoint is rolled back and a
  lookup of the existing keys followed by one insert of the new rows runs instead (a single
  writer connection holds the write lock for the whole transaction, so this is race-free too).
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import orjson
from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gati.db import sqlite_rows

SQLITE_MAX_VARIABLES = sqlite_rows.MAX_VARIABLES

# Key of ``AsyncConnection.info`` during a group commit of an autocommit kind: the driver
# connection on which statements may be sent straight, each committing on its own
# (set by gati.ingest.groupcommit; read by _driver_in_transaction and sqlite_run).
AUTOCOMMIT_DRIVER = "gati.autocommit_driver"

T = TypeVar("T")


@dataclass(frozen=True)
class _PgPlan:
    """The PostgreSQL statements of one (table, columns, tail) for :func:`_insert_returning`.

    ``json_sql`` takes the rows as ONE JSON document (an array of row arrays) that PostgreSQL
    parses once into ``jsonb`` and takes apart (``->>`` on a ``json`` text re-parses the row
    from its start for every column: quadratic in the row's width, seconds for 10,000 error
    events with their payloads); ``unnest_sql`` takes one array parameter per column. The JSON form costs the
    client about half the CPU (measured with 25-row groups: 106-169 µs against 277-306 µs per
    statement, docs/benchmarks.md): orjson writes the document in C, where asyncpg encodes
    every element of every array, while the server, which has the other core, parses it. It
    is used whenever every value has an exact JSON form (see :func:`_json_document`); the
    unnest form is the fallback. ``json_sql`` is None when a column's type has no JSON path.
    """

    unnest_sql: str
    json_sql: str | None
    json_columns: tuple[int, ...]  # JSON/JSONB columns: a str value is JSON text
    float_columns: tuple[int, ...]  # NaN, infinities and -0.0 have no jsonb form


# Compiled once per (table, columns, tail): compiling the column types on every group commit
# was a visible share of its CPU. A handful of entries (one per writer).
_PG_PLANS: dict[tuple[str, tuple[str, ...], str, int], _PgPlan] = {}
_JSON_SAFE_TYPES = re.compile(
    r"(SMALLINT|INTEGER|BIGINT|TEXT|VARCHAR(\(\d+\))?|BOOLEAN|UUID|DOUBLE PRECISION|FLOAT|REAL"
    r"|TIMESTAMP( WITH(OUT)? TIME ZONE)?|JSONB?)"
)


def _pg_plan(
    dialect: Dialect, table: Table, columns: Sequence[str], tail: str, first: int = 1
) -> _PgPlan:
    """``first``: the number of the statement's first parameter."""
    key = (table.name, tuple(columns), tail, first)
    plan = _PG_PLANS.get(key)
    if plan is not None:
        return plan
    cols = ", ".join(columns)
    types = [str(table.c[c].type.compile(dialect=dialect)).upper() for c in columns]
    arrays = ", ".join(f"${first + i}::{t}[]" for i, t in enumerate(types))
    unnest_sql = f"INSERT INTO {table.name} ({cols}) SELECT * FROM unnest({arrays}){tail}"
    json_sql = None
    if all(_JSON_SAFE_TYPES.fullmatch(t) for t in types):
        values = []
        for i, t in enumerate(types):
            if t in ("JSON", "JSONB"):  # JSON null is SQL NULL, as in the unnest form
                values.append(
                    f"CASE WHEN jsonb_typeof(r.v->{i}) = 'null' THEN NULL ELSE (r.v->{i})::{t} END"
                )
            else:
                values.append(f"(r.v->>{i})::{t}")
        json_sql = (
            f"INSERT INTO {table.name} ({cols}) SELECT {', '.join(values)} "
            f"FROM jsonb_array_elements(${first}::jsonb) AS r(v){tail}"
        )
    plan = _PgPlan(
        unnest_sql,
        json_sql,
        tuple(i for i, t in enumerate(types) if t in ("JSON", "JSONB")),
        tuple(i for i, t in enumerate(types) if t in ("DOUBLE PRECISION", "FLOAT", "REAL")),
    )
    _PG_PLANS[key] = plan
    return plan


def _json_document(plan: _PgPlan, rows: Sequence[tuple[Any, ...]]) -> str | None:
    """The rows as the JSON document of ``plan.json_sql``, or None when a value has no exact
    JSON form (a non-finite float, a type orjson does not write): the unnest form then."""
    if plan.json_sql is None:
        return None
    for i in plan.float_columns:
        for row in rows:
            value = row[i]
            if value is not None and (
                not math.isfinite(value) or (value == 0 and math.copysign(1.0, value) < 0)
            ):
                return None  # jsonb numbers have no NaN, infinities or negative zero
    document: Sequence[Sequence[Any]] = rows
    if plan.json_columns:
        embedded: list[list[Any]] = []
        for row in rows:
            values = list(row)
            for i in plan.json_columns:
                text = values[i]
                if isinstance(text, str):  # already JSON text: embedded as it is
                    if text.strip() == "null":
                        return None  # the JSON value null, which the document would make NULL
                    values[i] = orjson.Fragment(text)
            embedded.append(values)
        document = embedded
    try:
        # Naive datetimes are UTC, as asyncpg takes them for timestamptz.
        return orjson.dumps(document, option=orjson.OPT_NAIVE_UTC).decode()
    except TypeError:  # orjson.JSONEncodeError: a value of another type, or an integer > 64 bits
        return None


async def raw_driver(conn: AsyncConnection) -> Any:
    """The driver's own connection under ``conn`` (aiosqlite, asyncpg), in its transaction."""
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def sqlite_run(conn: AsyncConnection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fn(sqlite3 connection)`` on aiosqlite's thread, for several statements in ONE
    thread hop. Under load each hop waits for a turn of the busy event loop, so the number of
    hops, not the statements, sets a group commit's latency (docs/decisions.md).

    In a transaction SQLAlchemy has begun, ``fn`` runs in it. In a group commit of an
    autocommit kind with no transaction begun, ``fn`` is atomic on its own: it runs between
    ``BEGIN IMMEDIATE`` and ``COMMIT`` in the same hop (rolled back if it raises). Anywhere
    else it refuses: sqlite3 would begin a transaction that SQLAlchemy does not know about.

    aiosqlite runs functions on its thread through ``Connection._execute`` (as SQLAlchemy's own
    adapter does with its queue): its one way to run several calls for one wake-up."""
    driver = await raw_driver(conn)
    autocommit_group = conn.info.get(AUTOCOMMIT_DRIVER) is driver
    try:
        if conn.in_transaction():
            result: T = await driver._execute(fn, driver._conn)
        elif autocommit_group:
            result = await driver._execute(_sqlite_atomic, driver._conn, fn)
        else:
            raise RuntimeError(
                "sqlite_run outside a transaction (begin one, or an autocommit group)"
            )
    except sqlite3.Error as exc:
        # As SQLAlchemy raises it (IntegrityError, OperationalError, ...), so that callers and
        # the app's handlers see one kind of database error whichever path ran the statement.
        raise DBAPIError.instance(None, None, exc, sqlite3.Error) from exc
    return result


def sqlite_write_lock(db: sqlite3.Connection) -> None:
    """Hold SQLite's write lock from here to the end of the transaction (on the driver's
    thread): what reads the table's largest rowid and then inserts above it needs, so that no
    other writer's rows land in between. Inside a transaction SQLAlchemy has begun, sqlite3
    has not begun one yet until its first write (it then begins a deferred one)."""
    if not db.in_transaction:
        db.execute("BEGIN IMMEDIATE")


def _sqlite_atomic(db: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    db.execute("BEGIN IMMEDIATE")
    try:
        result = fn(db)
    except BaseException:
        db.rollback()
        raise
    db.commit()
    return result


def _keeping(
    rows: Iterable[tuple[Any, ...]], kept: list[tuple[Any, ...]]
) -> Iterator[tuple[Any, ...]]:
    for row in rows:
        kept.append(row)
        yield row


def _json_rows(
    rows: Sequence[tuple[Any, ...]], json_index: Sequence[int]
) -> Sequence[tuple[Any, ...]]:
    """``rows`` with the values of the JSON columns at ``json_index`` serialised (None stays)."""
    if not json_index:
        return rows
    return [
        tuple(
            orjson.dumps(v).decode() if i in json_index and v is not None else v
            for i, v in enumerate(row)
        )
        for row in rows
    ]


def _sqlite_insert_all_new(
    db: sqlite3.Connection, sql: str, rows: Sequence[tuple[Any, ...]]
) -> bool:
    """Insert every row, or nothing: True when each row was new (on aiosqlite's thread)."""
    if not db.in_transaction:
        # SQLAlchemy has begun its transaction, the driver not yet (sqlite3 begins on the first
        # write): begin it, so that the savepoint below is not the outermost, which would commit.
        db.execute("BEGIN")
    db.execute("SAVEPOINT gati_insert_new")
    try:
        # Multi-row statements, not executemany (see gati.db.sqlite_rows).
        results = sqlite_rows.execute_rows(db.execute, sql, rows)
        assert results is not None, sql
        inserted = sum(cursor.rowcount for cursor in results)
    except BaseException:
        db.execute("ROLLBACK TO gati_insert_new")
        db.execute("RELEASE gati_insert_new")
        raise
    if inserted != len(rows):
        db.execute("ROLLBACK TO gati_insert_new")
    db.execute("RELEASE gati_insert_new")
    return inserted == len(rows)


def sqlite_insert_returning(
    db: sqlite3.Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    tail: str,
) -> list[tuple[Any, ...]]:
    """``INSERT INTO table (columns) VALUES (...), ... tail`` in as few multi-row statements as
    SQLite's parameter limit allows (on the driver's thread; see :func:`sqlite_run`). ``tail``:
    ``[ON CONFLICT (...) DO NOTHING] RETURNING a, b``; the RETURNING columns must hold integers
    or text (keys and ids: they come back through JSON).

    The statements run without their RETURNING clause, and the returned rows come back as ONE
    row of JSON: every row of a result, like each step of a statement, is a call into SQLite
    that gives up the GIL and waits to take it back, up to a switch interval while the event
    loop is busy (0.5 ms in ``gati serve``), so a 32-row RETURNING cost a group write ~15 ms
    instead of ~2 (``bench/errors/sqlite_gil.py``). The inserted rows are the ones with a
    rowid above the table's largest before the insert: SQLite gives a new row the largest
    rowid + 1, and the write lock is held from before that read (:func:`sqlite_write_lock`)."""
    conflict, returning = tail.rsplit(" RETURNING ", 1)
    sqlite_write_lock(db)
    width = len(columns)
    per_statement = max(1, SQLITE_MAX_VARIABLES // width)
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    row_marks = "(" + ", ".join("?" * width) + ")"
    (before,) = db.execute(f"SELECT max(rowid) FROM {table}").fetchone()
    inserted = 0
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        sql = head + ", ".join([row_marks] * len(chunk)) + conflict
        params = [value for row in chunk for value in row]
        inserted += db.execute(sql, params).rowcount
    if not inserted:
        return []
    (document,) = db.execute(
        f"SELECT json_group_array(json_array({returning})) FROM {table} "
        "WHERE ?1 IS NULL OR rowid > ?1",
        (before,),
    ).fetchone()
    records = [tuple(record) for record in orjson.loads(document)]
    if len(records) != inserted:
        raise RuntimeError(f"inserted {inserted} rows into {table} but found {len(records)}")
    return records


async def _driver_in_transaction(conn: AsyncConnection) -> Any | None:
    """asyncpg's own connection, when a statement sent on it straight is where SQLAlchemy's
    would go: in autocommit mode (a group commit of an autocommit kind), or inside a
    transaction SQLAlchemy's adapter has already begun. Otherwise None: the adapter begins its
    transactions lazily, with the first statement it sends, so a statement sent straight
    before that would run outside the transaction. Straight to asyncpg, a small group's insert
    costs the database call alone, not SQLAlchemy's cursor and result layers around it."""
    if conn.dialect.name != "postgresql":
        return None
    driver = conn.info.get(AUTOCOMMIT_DRIVER)
    if driver is not None:  # a group commit of an autocommit kind (gati.ingest.groupcommit)
        return driver
    raw = await conn.get_raw_connection()
    adapter = raw.dbapi_connection
    if getattr(adapter, "autocommit", False) or getattr(adapter, "_transaction", None) is not None:
        return raw.driver_connection
    return None


async def insert_new(
    conn: AsyncConnection,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
    *,
    key: Sequence[str],
    json_columns: Sequence[str] = (),
) -> set[tuple[Any, ...]] | None:
    """Insert ``rows`` (tuples in ``columns`` order) skipping existing keys; return inserted keys,
    or None when every row was inserted (their keys were all distinct and new).

    Values must already be in driver form: aware datetimes for PostgreSQL (``sqlite_timestamp``
    text for SQLite), dicts for JSON columns (serialised here). ``rows`` may be an iterator,
    consumed once: PostgreSQL's COPY sends rows as it takes them, so producing the later rows
    overlaps the database's work on the earlier ones. An exception it raises aborts the insert
    (nothing of it stays) and propagates.
    """
    key_index = [columns.index(k) for k in key]
    json_index = [columns.index(c) for c in json_columns]
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return await _insert_new_pg(conn, table, columns, rows, key, key_index, json_index)
    if dialect == "sqlite":
        rows = rows if isinstance(rows, Sequence) else list(rows)
        if not rows:
            return set()
        return await _insert_new_sqlite(conn, table, columns, rows, key, key_index, json_index)
    raise AssertionError(dialect)


async def _insert_new_pg(
    conn: AsyncConnection,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
    key: Sequence[str],
    key_index: list[int],
    json_index: list[int],
) -> set[tuple[Any, ...]] | None:
    if json_index and not isinstance(rows, Sequence):
        rows = list(rows)  # JSON columns are serialised over the whole list
    if isinstance(rows, Sequence):
        if not rows:
            return set()
        records: Sequence[tuple[Any, ...]] = _json_rows(rows, json_index)
        sent: Iterable[tuple[Any, ...]] = records
    else:  # an iterator: keep the rows as the COPY takes them, for the staging path below
        kept: list[tuple[Any, ...]] = []
        records = kept
        sent = _keeping(rows, kept)
    driver = await raw_driver(conn)
    # Fast path: COPY straight into the table inside a savepoint. New events (the common case)
    # cost exactly a COPY. Any duplicate (a retried batch, a repeated id) makes the COPY fail
    # with a unique violation; the savepoint is rolled back and the staging path below runs.
    try:
        async with conn.begin_nested():
            await driver.copy_records_to_table(table.name, records=sent, columns=list(columns))
        return None  # no unique violation: every row is new
    except asyncpg.UniqueViolationError:
        if not isinstance(sent, Sequence):
            # asyncpg sends every row before it reads the server's error, so nothing is left;
            # were it to stop early, the rows it had not taken are kept here for the stage.
            for _ in sent:
                pass
    stage = f"stage_{table.name}"
    # Through SQLAlchemy: the statement runs in the transaction the raw COPY below then joins.
    await conn.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table.name} INCLUDING DEFAULTS) "
        "ON COMMIT DELETE ROWS"
    )
    await driver.copy_records_to_table(stage, records=records, columns=list(columns))
    cols = ", ".join(columns)
    keys = ", ".join(key)
    inserted = await conn.exec_driver_sql(
        f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM {stage} "
        f"ON CONFLICT ({keys}) DO NOTHING RETURNING {keys}"
    )
    keys_inserted = {tuple(record) for record in inserted}
    await conn.exec_driver_sql(f"TRUNCATE {stage}")
    return keys_inserted


async def _insert_new_sqlite(
    conn: AsyncConnection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    key: Sequence[str],
    key_index: list[int],
    json_index: list[int],
) -> set[tuple[Any, ...]] | None:
    rows = _json_rows(rows, json_index)
    # Fast path, as on PostgreSQL: all the rows in multi-row statements inside a savepoint, in one
    # thread hop. New rows (the common case) cost exactly that; if any key was there already
    # (ON CONFLICT DO NOTHING made fewer changes than rows), the savepoint is rolled back and
    # the lookup path below runs.
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
        f"({', '.join('?' * len(columns))}) ON CONFLICT ({', '.join(key)}) DO NOTHING"
    )
    if not conn.in_transaction() and AUTOCOMMIT_DRIVER not in conn.info:
        await conn.begin()
    try:
        if await sqlite_run(conn, lambda db: _sqlite_insert_all_new(db, sql, rows)):
            return None
    except IntegrityError:
        pass  # e.g. a foreign key: the path below raises it again, with its statement
    # Keys already stored.
    wanted = {tuple(row[i] for i in key_index) for row in rows}
    existing: set[tuple[Any, ...]] = set()
    wanted_list = list(wanted)
    per_chunk = max(1, SQLITE_MAX_VARIABLES // len(key))
    if len(key) == 1:
        for start in range(0, len(wanted_list), per_chunk):
            chunk = wanted_list[start : start + per_chunk]
            marks = ",".join("?" * len(chunk))
            result = await conn.exec_driver_sql(
                f"SELECT {key[0]} FROM {table.name} WHERE {key[0]} IN ({marks})",
                tuple(k[0] for k in chunk),
            )
            existing.update((r[0],) for r in result)
    else:
        # Composite keys: filter on the leading columns' values, then compare whole keys.
        lead = key[:-1]
        last = key[-1]
        groups: dict[tuple[Any, ...], list[Any]] = {}
        for k in wanted_list:
            groups.setdefault(k[:-1], []).append(k[-1])
        for prefix, lasts in groups.items():
            for start in range(0, len(lasts), per_chunk):
                chunk = lasts[start : start + per_chunk]
                marks = ",".join("?" * len(chunk))
                cond = " AND ".join(f"{c} = ?" for c in lead)
                result = await conn.exec_driver_sql(
                    f"SELECT {last} FROM {table.name} WHERE {cond} AND {last} IN ({marks})",
                    (*prefix, *chunk),
                )
                existing.update((*prefix, r[0]) for r in result)
    seen: set[tuple[Any, ...]] = set()
    fresh: list[tuple[Any, ...]] = []
    for row in rows:
        k = tuple(row[i] for i in key_index)
        if k in existing or k in seen:
            continue
        seen.add(k)
        fresh.append(row)
    if fresh:
        marks = ", ".join("?" * len(columns))
        await conn.exec_driver_sql(
            f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", fresh
        )
    return seen


def pg_insert_select(
    dialect: Dialect,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    tail: str,
    first: int = 1,
) -> tuple[str, list[Any]]:
    """``INSERT INTO table (columns) SELECT ...{tail}`` for PostgreSQL and its parameters: the
    rows as one JSON document (``$first``) when every value has an exact JSON form, else one
    array per column (``$first...``). Also the body of a data-modifying CTE (``WITH ins AS
    (...)``): further parameters of such a statement are numbered from
    ``first + len(params)``."""
    plan = _pg_plan(dialect, table, columns, tail, first)
    document = _json_document(plan, rows)
    if document is not None and plan.json_sql is not None:
        return plan.json_sql, [document]
    return plan.unnest_sql, [list(column) for column in zip(*rows, strict=True)]


async def pg_fetch(conn: AsyncConnection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run one PostgreSQL statement straight on asyncpg where SQLAlchemy's would go (see
    :func:`_driver_in_transaction`), else through SQLAlchemy, which then opens the transaction
    with it (prepared once either way); the rows as tuples."""
    driver = await _driver_in_transaction(conn)
    if driver is not None:
        try:
            records = await driver.fetch(sql, *params)
        except asyncpg.IntegrityConstraintViolationError as exc:
            # As SQLAlchemy would raise it (callers tell a deleted project by it).
            raise IntegrityError(sql, None, exc) from exc
        return [tuple(record) for record in records]
    result = await conn.exec_driver_sql(sql, tuple(params))
    return [tuple(record) for record in result]


async def insert_new_returning(
    conn: AsyncConnection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    key: Sequence[str],
    json_columns: Sequence[str] = (),
    returning: Sequence[str] | None = None,
) -> set[tuple[Any, ...]]:
    """Like :func:`insert_new`, for SMALL batches (group commits of single events): ONE
    statement straight to the driver, ``INSERT ... ON CONFLICT DO NOTHING RETURNING key``.

    Under load every await on the driver waits for a turn of a busy event loop (and on aiosqlite
    for a thread hop), so the number of round trips, not the statement, sets a group commit's
    latency. PostgreSQL: ``INSERT ... SELECT FROM unnest($1::type[], ...)`` (one cached prepared
    statement whatever the row count); SQLite: a multi-row ``VALUES`` (one thread hop per
    ~30,000 values). Values in driver form, as for :func:`insert_new`. ``returning``: the
    columns returned of each inserted row (default ``key``)."""
    if not rows:
        return set()
    rows = _json_rows(rows, [columns.index(c) for c in json_columns])
    records = await _insert_returning(
        conn, table, columns, rows, returning=returning or key, conflict=key
    )
    return set(records)


async def insert_returning_ids(
    conn: AsyncConnection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> list[int]:
    """Insert SMALL batches (group commits) in one statement; the new ``id``s in ``rows`` order.

    ``id`` must be an autoincrement key. The rows are inserted in ``rows`` order, each taking a
    higher id than the one before it (ids are drawn one by one from one counter: SQLite's single
    writer, or a PostgreSQL sequence, whose concurrent users can only leave gaps), so the sorted
    ids are in input order; the order of RETURNING rows themselves is unspecified, hence the sort.
    Values in driver form, as for :func:`insert_new`."""
    if not rows:
        return []
    records = await _insert_returning(conn, table, columns, rows, returning=("id",))
    ids = sorted(int(record[0]) for record in records)
    if len(ids) != len(rows):
        raise RuntimeError(f"inserted {len(rows)} rows into {table.name} but got {len(ids)} ids")
    return ids


async def _insert_returning(
    conn: AsyncConnection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    returning: Sequence[str],
    conflict: Sequence[str] | None = None,
) -> list[tuple[Any, ...]]:
    """``INSERT ... [ON CONFLICT (conflict) DO NOTHING] RETURNING returning``, straight to the
    driver: no per-row parameter processing by SQLAlchemy (its bind processing of a multi-row
    insert cost more CPU than the database's own work)."""
    dialect = conn.dialect.name
    tail = f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING" if conflict else ""
    tail += f" RETURNING {', '.join(returning)}"
    if dialect == "postgresql":
        sql, params = pg_insert_select(conn.dialect, table, columns, rows, tail)
        return await pg_fetch(conn, sql, params)
    if dialect == "sqlite":
        return await sqlite_run(
            conn, lambda db: sqlite_insert_returning(db, table.name, columns, rows, tail)
        )
    raise AssertionError(dialect)
