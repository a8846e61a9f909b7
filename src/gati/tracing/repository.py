"""All SQL of agent tracing. Every query starts from the caller's projects."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    Select,
    Text,
    and_,
    case,
    cast,
    func,
    literal_column,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gati.db import dialect as d
from gati.db.bulk import insert_new
from gati.db.engine import dialect_name
from gati.db.types import sqlite_timestamp, utcnow
from gati.tracing.bounds import MAX_TOTAL
from gati.tracing.models import Agent, AgentMetric, Run, TraceEvent
from gati.tracing.schemas import TraceEventIn, event_data_text

EVENT_COLUMNS = (
    "project_id",
    "event_id",
    "run_id",
    "agent_name",
    "event_type",
    "timestamp",
    "parent_id",
    "latency_ms",
    "cost",
    "tokens_in",
    "tokens_out",
    "model",
    "data",
    "created_at",
)
_UPSERT_CHUNK = 400
MAX_INT32 = 2**31 - 1  # runs.event_count / error_count are 32-bit integers


def _capped_add(
    column: ColumnElement[Any], name: str, cap: int, *, real: bool = False
) -> ColumnElement[Any]:
    """``column + excluded.<name>`` stopping at ``cap`` (the added value is in 0..cap): the
    sum is never computed past the cap, so it cannot overflow the column on either database."""
    added = d.excluded(name)
    ceiling = literal_column(f"{cap}.0" if real else str(cap), Float if real else BigInteger)
    return case((column > ceiling - added, ceiling), else_=column + added)


def _cap(value: int, cap: int = MAX_TOTAL) -> int:
    return value if value <= cap else cap


def _cap_real(value: float) -> float:
    return value if value <= MAX_TOTAL else float(MAX_TOTAL)


@dataclass(slots=True)
class RunDelta:
    project_id: int
    run_id: str
    agent_name: str
    started_at: datetime
    ended_at: datetime
    events: int = 0
    errors: int = 0
    has_end: int = 0
    has_root: int = 0
    cost: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    environment: str | None = None
    run_metadata: dict[str, Any] | None = None


@dataclass(slots=True)
class AgentDelta:
    new_runs: int = 0
    events: int = 0
    cost: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0


@dataclass(slots=True)
class BucketDelta:
    runs: int = 0
    events: int = 0
    errors: int = 0
    cost: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    duration_ms: float = 0.0


async def insert_events(
    conn: AsyncConnection, *, project_id: int, events: Iterable[TraceEventIn]
) -> tuple[list[TraceEventIn], int]:
    """Store the events not stored yet; return those (duplicates by event_id are dropped) and
    how many there were in all. ``events`` is consumed once, as the rows are sent: on
    PostgreSQL a COPY sends the first rows while later events are still being produced."""
    now = utcnow()
    sqlite = conn.dialect.name == "sqlite"
    ts = sqlite_timestamp if sqlite else (lambda v: v)
    created = ts(now)
    seen: list[TraceEventIn] = []

    def rows() -> Iterator[tuple[Any, ...]]:
        for e in events:
            seen.append(e)
            yield (
                project_id,
                e.event_id,
                e.run_id,
                e.agent_name,
                e.event_type,
                ts(e.timestamp),
                e.parent_id,
                e.latency_ms,
                e.cost,
                e.tokens_in,
                e.tokens_out,
                e.model,
                event_data_text(e),
                created,
            )

    inserted = await insert_new(
        conn,
        TraceEvent.__table__,  # type: ignore[arg-type]
        EVENT_COLUMNS,
        rows(),
        key=("project_id", "event_id"),
    )
    if inserted is None or len(inserted) == len(seen):
        return seen, len(seen)
    fresh: list[TraceEventIn] = []
    taken: set[str] = set()
    for e in seen:
        if (project_id, e.event_id) in inserted and e.event_id not in taken:
            taken.add(e.event_id)
            fresh.append(e)
    return fresh, len(seen)


async def upsert_runs(conn: AsyncConnection, deltas: Sequence[RunDelta]) -> set[str]:
    """Add each run's batch totals (one row per run per batch). Returns the ids of new runs."""
    dialect = dialect_name(conn)
    table = Run.__table__
    c = table.c
    now = utcnow()
    new_runs: set[str] = set()
    x = d.excluded
    started = d.least(dialect, c.started_at, x("started_at"))
    ended = d.greatest(dialect, c.ended_at, x("ended_at"))
    errors = _capped_add(c.error_count, "error_count", MAX_INT32)
    has_end = d.greatest(dialect, c.has_end, x("has_end"))
    set_ = {
        # The first root event names the run's agent; until then the first event seen does.
        "agent_name": case(
            (and_(c.has_root == 0, x("has_root") > 0), x("agent_name")), else_=c.agent_name
        ),
        "has_root": d.greatest(dialect, c.has_root, x("has_root")),
        "started_at": started,
        "ended_at": ended,
        "total_duration_ms": d.interval_ms(dialect, ended, started),
        "total_cost": _capped_add(c.total_cost, "total_cost", MAX_TOTAL, real=True),
        "tokens_in": _capped_add(c.tokens_in, "tokens_in", MAX_TOTAL),
        "tokens_out": _capped_add(c.tokens_out, "tokens_out", MAX_TOTAL),
        "event_count": _capped_add(c.event_count, "event_count", MAX_INT32),
        "error_count": errors,
        "has_end": has_end,
        "status": case((errors > 0, "failed"), (has_end > 0, "completed"), else_="active"),
        "environment": func.coalesce(x("environment"), c.environment),
        "run_metadata": d.json_merge(dialect, c.run_metadata, x("run_metadata")),
        "updated_at": x("updated_at"),
    }
    # Rows are locked in key order, so concurrent batches touching the same runs cannot deadlock.
    deltas = sorted(deltas, key=lambda r: (r.project_id, r.run_id))
    for start in range(0, len(deltas), _UPSERT_CHUNK):
        chunk = deltas[start : start + _UPSERT_CHUNK]
        values = [
            {
                "project_id": r.project_id,
                "run_id": r.run_id,
                "agent_name": r.agent_name,
                "environment": r.environment,
                "status": "failed" if r.errors else ("completed" if r.has_end else "active"),
                "started_at": r.started_at,
                "ended_at": r.ended_at,
                "total_duration_ms": (r.ended_at - r.started_at).total_seconds() * 1000,
                "total_cost": _cap_real(r.cost),
                "tokens_in": _cap(r.tokens_in),
                "tokens_out": _cap(r.tokens_out),
                "event_count": r.events,
                "error_count": r.errors,
                "has_end": r.has_end,
                "has_root": r.has_root,
                "run_metadata": r.run_metadata,
                "created_at": now,
                "updated_at": now,
            }
            for r in chunk
        ]
        contributed = {r.run_id: r.events for r in chunk}
        stmt = d.upsert(
            dialect,
            table,  # type: ignore[arg-type]
            index_elements=("project_id", "run_id"),
            set_=set_,
        ).returning(c.run_id, c.event_count)
        for run_id, event_count in await conn.execute(stmt, values):
            # The run is new when its count is exactly this batch's contribution.
            if event_count == contributed[run_id]:
                new_runs.add(run_id)
    return new_runs


async def runs_awaiting_root(
    conn: AsyncConnection, *, project_id: int, run_ids: Sequence[str]
) -> dict[str, tuple[str, datetime]]:
    """Stored runs among ``run_ids`` whose root event has not arrived: run_id → (agent, start).

    Locked on PostgreSQL (in key order) until the batch commits, so the agent a run is counted
    under cannot change between this read and the upsert.
    """
    if not run_ids:
        return {}
    stmt = (
        select(Run.run_id, Run.agent_name, Run.started_at)
        .where(Run.project_id == project_id, Run.run_id.in_(sorted(run_ids)), Run.has_root == 0)
        .order_by(Run.run_id)
    )
    if dialect_name(conn) == "postgresql":
        stmt = stmt.with_for_update()
    return {run_id: (agent, started) for run_id, agent, started in await conn.execute(stmt)}


async def upsert_agents(
    conn: AsyncConnection, *, project_id: int, deltas: dict[str, AgentDelta]
) -> None:
    dialect = dialect_name(conn)
    table = Agent.__table__
    c = table.c
    x = d.excluded
    now = utcnow()
    values = [
        {
            "project_id": project_id,
            "name": name,
            "description": f"Auto-created agent: {name}",
            "total_runs": a.new_runs,
            "total_events": a.events,
            "total_cost": _cap_real(a.cost),
            "tokens_in": _cap(a.tokens_in),
            "tokens_out": _cap(a.tokens_out),
            "created_at": now,
            "updated_at": now,
        }
        for name, a in sorted(deltas.items())
    ]
    set_ = {
        "total_runs": c.total_runs + x("total_runs"),  # may go down: a run moved agents
        "total_events": _capped_add(c.total_events, "total_events", MAX_TOTAL),
        "total_cost": _capped_add(c.total_cost, "total_cost", MAX_TOTAL, real=True),
        "tokens_in": _capped_add(c.tokens_in, "tokens_in", MAX_TOTAL),
        "tokens_out": _capped_add(c.tokens_out, "tokens_out", MAX_TOTAL),
        "updated_at": x("updated_at"),
    }
    for start in range(0, len(values), _UPSERT_CHUNK):
        stmt = d.upsert(dialect, table, index_elements=("project_id", "name"), set_=set_)  # type: ignore[arg-type]
        await conn.execute(stmt, values[start : start + _UPSERT_CHUNK])


async def upsert_agent_metrics(
    conn: AsyncConnection,
    *,
    project_id: int,
    deltas: dict[tuple[str, str, datetime], BucketDelta],
) -> None:
    dialect = dialect_name(conn)
    table = AgentMetric.__table__
    c = table.c
    x = d.excluded
    values = [
        {
            "project_id": project_id,
            "agent_name": agent,
            "period": period,
            "bucket_start": bucket,
            "runs": b.runs,
            "events": b.events,
            "errors": b.errors,
            "cost": _cap_real(b.cost),
            "tokens_in": _cap(b.tokens_in),
            "tokens_out": _cap(b.tokens_out),
            "duration_ms": _cap_real(b.duration_ms),
        }
        for (agent, period, bucket), b in sorted(deltas.items())
    ]
    set_: dict[str, ColumnElement[Any]] = {
        "runs": c.runs + x("runs"),  # may go down: a run moved agents
        **{
            name: _capped_add(getattr(c, name), name, MAX_TOTAL)
            for name in ("events", "errors", "tokens_in", "tokens_out")
        },
        **{
            name: _capped_add(getattr(c, name), name, MAX_TOTAL, real=True)
            for name in ("cost", "duration_ms")
        },
    }
    for start in range(0, len(values), _UPSERT_CHUNK):
        stmt = d.upsert(
            dialect,
            table,  # type: ignore[arg-type]
            index_elements=("project_id", "agent_name", "period", "bucket_start"),
            set_=set_,
        )
        await conn.execute(stmt, values[start : start + _UPSERT_CHUNK])


# ---------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------


def _real_sum(column: Any) -> ColumnElement[Any]:
    """SUM of a total as a double, never NULL: a sum of 64-bit integers can overflow (SQLite
    fails with "integer overflow"); a double cannot, and is exact up to ``MAX_TOTAL``."""
    return func.coalesce(func.sum(cast(column, Float)), 0.0)


def capped_int(value: Any) -> int:
    """A count or token total as returned by a read: at most ``MAX_TOTAL``."""
    if value is None:
        return 0
    return int(value) if value <= MAX_TOTAL else MAX_TOTAL


def capped_real(value: Any) -> float:
    """A cost or duration total as returned by a read: at most ``MAX_TOTAL``."""
    if value is None:
        return 0.0
    number = float(value)
    return number if number <= MAX_TOTAL else float(MAX_TOTAL)


async def list_agents(session: AsyncSession, *, project_ids: Sequence[int]) -> list[Agent]:
    stmt = (
        select(Agent)
        .where(Agent.project_id.in_(project_ids))
        .order_by(Agent.name, Agent.project_id)
    )
    return list((await session.execute(stmt)).scalars())


async def get_agents_by_name(
    session: AsyncSession, *, project_ids: Sequence[int], name: str
) -> list[Agent]:
    stmt = select(Agent).where(Agent.project_id.in_(project_ids), Agent.name == name)
    return list((await session.execute(stmt)).scalars())


def _runs_filter(
    stmt: Select[Any],
    *,
    project_ids: Sequence[int],
    agent_name: str,
    status: str | None,
    environment: str | None,
) -> Select[Any]:
    stmt = stmt.where(Run.project_id.in_(project_ids), Run.agent_name == agent_name)
    if status:
        stmt = stmt.where(Run.status == status)
    if environment:
        stmt = stmt.where(Run.environment == environment)
    return stmt


async def list_runs(
    session: AsyncSession,
    *,
    project_ids: Sequence[int],
    agent_name: str,
    status: str | None,
    environment: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Run], int]:
    filters = {
        "project_ids": project_ids,
        "agent_name": agent_name,
        "status": status,
        "environment": environment,
    }
    page = _runs_filter(select(Run), **filters).order_by(  # type: ignore[arg-type]
        Run.started_at.desc(), Run.run_id
    )
    runs = list((await session.execute(page.limit(limit).offset(offset))).scalars())
    total = (
        await session.execute(_runs_filter(select(func.count()).select_from(Run), **filters))  # type: ignore[arg-type]
    ).scalar_one()
    return runs, int(total)


async def run_status_counts(
    session: AsyncSession, *, project_ids: Sequence[int], agent_name: str
) -> dict[str, int]:
    stmt = (
        select(Run.status, func.count())
        .where(Run.project_id.in_(project_ids), Run.agent_name == agent_name)
        .group_by(Run.status)
    )
    return {status: int(n) for status, n in await session.execute(stmt)}


async def run_duration_stats(
    session: AsyncSession, *, project_ids: Sequence[int], agent_name: str | None = None
) -> tuple[float, float]:
    """(sum, average) of total_duration_ms over runs."""
    stmt = select(_real_sum(Run.total_duration_ms), func.avg(Run.total_duration_ms))
    stmt = stmt.where(Run.project_id.in_(project_ids))
    if agent_name is not None:
        stmt = stmt.where(Run.agent_name == agent_name)
    total, avg = (await session.execute(stmt)).one()
    return capped_real(total), capped_real(avg)


async def get_run(session: AsyncSession, *, project_ids: Sequence[int], run_id: str) -> Run | None:
    stmt = (
        select(Run)
        .where(Run.project_id.in_(project_ids), Run.run_id == run_id)
        .order_by(Run.project_id)
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


EVENT_READ_COLUMNS = (
    TraceEvent.event_id,
    TraceEvent.run_id,
    TraceEvent.agent_name,
    TraceEvent.event_type,
    TraceEvent.timestamp,
    TraceEvent.parent_id,
    TraceEvent.latency_ms,
    TraceEvent.cost,
    TraceEvent.tokens_in,
    TraceEvent.tokens_out,
    TraceEvent.model,
    TraceEvent.data,
)


# ``data`` as its JSON text: responses embed it as-is instead of parsing and re-serialising it.
EVENT_READ_COLUMNS_RAW = (*EVENT_READ_COLUMNS[:-1], cast(TraceEvent.data, Text).label("data"))


# What the execution tree shows of each event (fewer columns to decode for 10,000-event runs).
TRACE_COLUMNS = (
    TraceEvent.event_id,
    TraceEvent.event_type,
    TraceEvent.timestamp,
    TraceEvent.parent_id,
    TraceEvent.latency_ms,
    TraceEvent.cost,
    cast(TraceEvent.data, Text).label("data"),
)


async def list_run_events(session: AsyncSession, *, project_id: int, run_id: str) -> Sequence[Any]:
    """Events of a run in order; ``data`` is JSON text (wrap it in ``orjson.Fragment``)."""
    stmt = (
        select(*EVENT_READ_COLUMNS_RAW)
        .where(TraceEvent.project_id == project_id, TraceEvent.run_id == run_id)
        .order_by(TraceEvent.timestamp, TraceEvent.event_id)
    )
    # Core execution: no ORM loading machinery for 10,000+ plain rows.
    return (await (await session.connection()).execute(stmt)).all()


_TRACE_SQL_PG = (
    "SELECT event_id, event_type, timestamp, parent_id, latency_ms, cost, data::text "
    "FROM trace_events WHERE project_id = $1 AND run_id = $2 ORDER BY timestamp, event_id"
)


async def list_run_trace_rows(
    session: AsyncSession, *, project_id: int, run_id: str
) -> Sequence[Sequence[Any]]:
    """The run's events as positional rows in ``TRACE_COLUMNS`` order, oldest first.

    On PostgreSQL straight from asyncpg (its C codecs give aware UTC datetimes): for a
    10,000-event run this skips SQLAlchemy's per-row result processing, a third of the fetch.
    """
    conn = await session.connection()
    if dialect_name(conn) == "postgresql":
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        return await driver.fetch(_TRACE_SQL_PG, project_id, run_id)
    stmt = (
        select(*TRACE_COLUMNS)
        .where(TraceEvent.project_id == project_id, TraceEvent.run_id == run_id)
        .order_by(TraceEvent.timestamp, TraceEvent.event_id)
    )
    return (await conn.execute(stmt)).all()


async def get_event(
    session: AsyncSession, *, project_ids: Sequence[int], event_id: str
) -> TraceEvent | None:
    stmt = (
        select(TraceEvent)
        .where(TraceEvent.project_id.in_(project_ids), TraceEvent.event_id == event_id)
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_children(session: AsyncSession, *, project_id: int, parent_id: str) -> Sequence[Any]:
    stmt = (
        select(*EVENT_READ_COLUMNS_RAW)
        .where(TraceEvent.project_id == project_id, TraceEvent.parent_id == parent_id)
        .order_by(TraceEvent.timestamp, TraceEvent.event_id)
    )
    return (await session.execute(stmt)).all()


async def agent_totals(session: AsyncSession, *, project_ids: Sequence[int]) -> dict[str, Any]:
    stmt = select(
        func.count(func.distinct(Agent.name)),
        func.coalesce(func.sum(Agent.total_runs), 0),
        _real_sum(Agent.total_events),
        _real_sum(Agent.total_cost),
        _real_sum(Agent.tokens_in),
        _real_sum(Agent.tokens_out),
    ).where(Agent.project_id.in_(project_ids))
    agents, runs, events, cost, tin, tout = (await session.execute(stmt)).one()
    return {
        "total_agents": int(agents),
        "total_runs": int(runs),
        "total_events": capped_int(events),
        "total_cost": capped_real(cost),
        "total_tokens_in": capped_int(tin),
        "total_tokens_out": capped_int(tout),
    }


async def top_agents(
    session: AsyncSession, *, project_ids: Sequence[int], by: str, limit: int
) -> list[tuple[str, float]]:
    column: ColumnElement[Any] = (
        _real_sum(Agent.total_cost) if by == "cost" else func.sum(Agent.total_runs)
    )
    stmt = (
        select(Agent.name, column.label("value"))
        .where(Agent.project_id.in_(project_ids))
        .group_by(Agent.name)
        .order_by(column.desc(), Agent.name)
        .limit(limit)
    )
    return [(name, value) for name, value in await session.execute(stmt)]


async def list_agent_metrics(
    session: AsyncSession,
    *,
    project_ids: Sequence[int],
    agent_name: str,
    period: str,
    since: datetime | None,
    until: datetime | None,
) -> Sequence[Any]:
    stmt = select(
        AgentMetric.bucket_start,
        func.sum(AgentMetric.runs),
        _real_sum(AgentMetric.events),
        _real_sum(AgentMetric.errors),
        _real_sum(AgentMetric.cost),
        _real_sum(AgentMetric.tokens_in),
        _real_sum(AgentMetric.tokens_out),
        _real_sum(AgentMetric.duration_ms),
    ).where(
        AgentMetric.project_id.in_(project_ids),
        AgentMetric.agent_name == agent_name,
        AgentMetric.period == period,
    )
    if since is not None:
        stmt = stmt.where(AgentMetric.bucket_start >= since)
    if until is not None:
        stmt = stmt.where(AgentMetric.bucket_start < until)
    stmt = stmt.group_by(AgentMetric.bucket_start).order_by(AgentMetric.bucket_start)
    return (await session.execute(stmt)).all()
