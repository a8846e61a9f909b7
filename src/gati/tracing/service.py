"""Rules of agent tracing: batch ingestion with derived totals, and the read models."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import orjson
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gati.db.engine import Database
from gati.db.types import utcnow
from gati.exceptions import AppError, not_found
from gati.tracing import repository
from gati.tracing.repository import AgentDelta, BucketDelta, RunDelta, capped_int, capped_real
from gati.tracing.schemas import (
    ItemError,
    NotWellFormed,
    TraceEventIn,
    Validated,
    fast_events,
    fast_items,
    validate_event,
)

Enricher = Callable[
    [AsyncConnection, int, Sequence[TraceEventIn] | None], Awaitable[Callable[[TraceEventIn], None]]
]
_ENRICHERS: list[Enricher] = []


def register_enricher(enricher: Enricher) -> None:
    """Hook run on every batch, inside its transaction, before insert (e.g. cost from a price
    table): ``await enricher(conn, project_id, events)`` returns the function applied to each
    event just before it is stored; ``events`` is the batch when it is a list (None when the
    events are produced as they are stored)."""
    if enricher not in _ENRICHERS:
        _ENRICHERS.append(enricher)


@dataclass(frozen=True)
class WriteResult:
    stored: int
    duplicates: int


def validate_batch(
    raw_events: Sequence[Any],
    *,
    now: datetime | None = None,
    max_event_bytes: int | None = None,
    check_nul: bool = True,
) -> Validated:
    """Each event validated; ``check_nul=False`` when the caller knows no string has a NUL
    character (a JSON body without ``\\u0000``), which saves looking through every string."""
    now = now or utcnow()
    result = Validated()
    for index, raw in enumerate(raw_events):
        if max_event_bytes is not None:
            size = _json_size(raw)
            if size is None:
                result.errors.append(
                    ItemError(index, "", "event is nested too deeply to be measured")
                )
                continue
            if size > max_event_bytes:
                result.errors.append(
                    ItemError(
                        index,
                        "",
                        f"event is larger than MAX_EVENT_SIZE_MB ({max_event_bytes} bytes)",
                    )
                )
                continue
        out = validate_event(raw, index, now, check_nul=check_nul)
        if isinstance(out, list):
            result.errors.extend(out)
        else:
            result.events.append(out)
    return result


def _json_size(raw: Any) -> int | None:
    """Bytes of ``raw`` as compact JSON; None when no encoder here can write it (nesting of
    about 1,000 levels: orjson stops at 255, msgspec at Python's recursion limit)."""
    try:
        return len(orjson.dumps(raw))
    except TypeError:
        pass
    try:
        return len(msgspec.json.encode(raw))
    except (RecursionError, TypeError, ValueError):
        return None


def _buckets(ts: datetime) -> tuple[datetime, datetime, datetime]:
    """UTC hour, day and month starts of a timestamp."""
    hour = ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    day = hour.replace(hour=0)
    return hour, day, day.replace(day=1)


PERIODS = ("hourly", "daily", "monthly")


async def write_events(
    conn: AsyncConnection, *, project_id: int, events: Iterable[TraceEventIn]
) -> WriteResult:
    """Store a batch and update runs, agents and per-agent rollups once per batch.

    Only newly stored events count towards totals, so a retried batch changes nothing and late
    events add to the right runs and buckets. Shared by ``POST /api/events`` and OTLP ingestion.
    ``events`` may be an iterator (the fast path validates each event as the COPY takes it); an
    exception it raises leaves nothing of the batch stored and propagates.
    """
    if isinstance(events, Sequence) and not events:
        return WriteResult(0, 0)
    known = events if isinstance(events, Sequence) else None
    enrich = [await enricher(conn, project_id, known) for enricher in _ENRICHERS]
    if enrich:
        events = _enriched(events, enrich)
    # One pass over the events as the insert takes them (so it overlaps the COPY): per-run and
    # per-(agent, hour) deltas; agents and the daily and monthly buckets are sums of the hours,
    # added up after the insert. Only new events count: if the insert dropped duplicates, the
    # pass is made again over the new ones.
    runs: dict[str, RunDelta] = {}
    hours: dict[tuple[str, int, int, int, int], BucketDelta] = {}
    fresh, total = await repository.insert_events(
        conn, project_id=project_id, events=_tallied(events, project_id, runs, hours)
    )
    if not fresh:
        return WriteResult(0, total)
    if len(fresh) < total:
        runs.clear()
        hours.clear()
        for _ in _tallied(fresh, project_id, runs, hours):
            pass
    agents: dict[str, AgentDelta] = {}
    buckets: dict[tuple[str, str, datetime], BucketDelta] = {}
    for (agent_name, year, month, day, hour), h in hours.items():
        agent = agents.get(agent_name)
        if agent is None:
            agent = agents[agent_name] = AgentDelta()
        agent.events += h.events
        agent.cost += h.cost
        agent.tokens_in += h.tokens_in
        agent.tokens_out += h.tokens_out
        for period, start in zip(
            PERIODS, _buckets(datetime(year, month, day, hour, tzinfo=UTC)), strict=True
        ):
            b = buckets.get((agent_name, period, start))
            if b is None:
                b = buckets[(agent_name, period, start)] = BucketDelta()
            b.events += h.events
            b.errors += h.errors
            b.cost += h.cost
            b.tokens_in += h.tokens_in
            b.tokens_out += h.tokens_out
            b.duration_ms += h.duration_ms
    # A run first seen through a child span moves to its root's agent when the root arrives.
    awaiting = await repository.runs_awaiting_root(
        conn, project_id=project_id, run_ids=[r.run_id for r in runs.values() if r.has_root]
    )
    new_runs = await repository.upsert_runs(conn, list(runs.values()))

    def count_run(agent_name: str, started_at: datetime, n: int) -> None:
        agents.setdefault(agent_name, AgentDelta()).new_runs += n
        for period, bucket in zip(PERIODS, _buckets(started_at), strict=True):
            buckets.setdefault((agent_name, period, bucket), BucketDelta()).runs += n

    for run_id in new_runs:
        run = runs[run_id]
        count_run(run.agent_name, run.started_at, 1)
    for run_id, (old_agent, started_at) in awaiting.items():
        new_agent = runs[run_id].agent_name
        if new_agent != old_agent:
            count_run(old_agent, started_at, -1)
            count_run(new_agent, started_at, 1)
    await repository.upsert_agents(conn, project_id=project_id, deltas=agents)
    await repository.upsert_agent_metrics(conn, project_id=project_id, deltas=buckets)
    return WriteResult(len(fresh), total - len(fresh))


def _tallied(
    events: Iterable[TraceEventIn],
    project_id: int,
    runs: dict[str, RunDelta],
    hours: dict[tuple[str, int, int, int, int], BucketDelta],
) -> Iterator[TraceEventIn]:
    """``events``, each added to its run's and its (agent, hour)'s deltas as it passes."""
    for e in events:
        ts = e.timestamp
        if ts.tzinfo is not UTC:
            ts = ts.astimezone(UTC)
        cost = e.cost or 0.0
        tin = e.tokens_in or 0
        tout = e.tokens_out or 0
        latency = e.latency_ms or 0.0
        end = ts + timedelta(0, 0, 0, latency) if latency else ts  # positional: milliseconds
        run = runs.get(e.run_id)
        if run is None:
            run = runs[e.run_id] = RunDelta(project_id, e.run_id, e.agent_name, ts, end)
        else:
            if ts < run.started_at:
                run.started_at = ts
            if end > run.ended_at:
                run.ended_at = end
        if e.parent_id is None and not run.has_root:
            run.has_root = 1
            run.agent_name = e.agent_name
        run.events += 1
        run.errors += e.is_error
        run.has_end |= e.is_end
        run.cost += cost
        run.tokens_in += tin
        run.tokens_out += tout
        if e.environment:
            run.environment = e.environment
        if e.run_metadata:
            run.run_metadata = {**(run.run_metadata or {}), **e.run_metadata}
        # Cheaper than ts.replace(minute=0, ...), which costs ~1.4 µs.
        key = (e.agent_name, ts.year, ts.month, ts.day, ts.hour)
        b = hours.get(key)
        if b is None:
            b = hours[key] = BucketDelta()
        b.events += 1
        b.errors += e.is_error
        b.cost += cost
        b.tokens_in += tin
        b.tokens_out += tout
        b.duration_ms += latency
        yield e


def _enriched(
    events: Iterable[TraceEventIn], enrich: Sequence[Callable[[TraceEventIn], None]]
) -> Iterator[TraceEventIn]:
    for event in events:
        for apply in enrich:
            apply(event)
        yield event


async def ingest_batch(
    db: Database,
    *,
    project_id: int,
    raw_events: Sequence[Any],
    max_batch_size: int,
    max_event_bytes: int | None,
    check_nul: bool = True,
) -> dict[str, Any]:
    """Validate each item (naming every problem), store the valid ones, answer the seed's shape."""
    check_batch_size(len(raw_events), max_batch_size)
    validated = validate_batch(raw_events, max_event_bytes=max_event_bytes, check_nul=check_nul)
    return await store_validated(
        db,
        project_id=project_id,
        events=validated.events,
        accepted=len(validated.events),
        errors=validated.errors,
        total=len(raw_events),
    )


async def ingest_well_formed(
    db: Database, *, project_id: int, body: bytes, max_batch_size: int
) -> dict[str, Any] | None:
    """The fast path of ``POST /api/events``: None unless every event of ``body`` is well-formed
    (then the caller takes :func:`ingest_batch`, which reports each problem). Each event is
    validated as the COPY takes it, so PostgreSQL stores the first events while the later ones
    are checked; one that is not well-formed aborts the batch's transaction (nothing stays)."""
    items = fast_items(body)
    if items is None:
        return None
    check_batch_size(len(items), max_batch_size)
    try:
        return await store_validated(
            db,
            project_id=project_id,
            events=fast_events(items, utcnow()),
            accepted=len(items),
            errors=(),
            total=len(items),
        )
    except NotWellFormed:
        return None


def check_batch_size(count: int, max_batch_size: int) -> None:
    if count > max_batch_size:
        raise AppError(
            413,
            "batch_too_large",
            f"The batch has {count} events; MAX_BATCH_SIZE is {max_batch_size}. Split it.",
        )


async def store_validated(
    db: Database,
    *,
    project_id: int,
    events: Iterable[TraceEventIn],
    accepted: int,
    errors: Sequence[ItemError],
    total: int,
) -> dict[str, Any]:
    """Store the ``accepted`` valid events of a batch of ``total`` (``errors`` name the others)."""
    result = WriteResult(0, 0)
    if accepted:
        async with db.connection() as conn:
            result = await write_events(conn, project_id=project_id, events=events)
    failed = total - accepted
    if accepted == 0 and failed:
        raise AppError(
            422,
            "no_valid_events",
            f"None of the {failed} events is valid; see errors",
            extra={"count": 0, "failed": failed, "errors": [e.as_dict() for e in errors]},
        )
    return {
        "status": "success" if failed == 0 else "partial",
        "message": f"Ingested {accepted} events"
        + (f", {failed} failed validation" if failed else "")
        + (f", {result.duplicates} duplicates ignored" if result.duplicates else ""),
        "count": accepted,
        "failed": failed,
        "duplicates": result.duplicates,
        "errors": [e.as_dict() for e in errors],
    }


# ---------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------


def _event_dict(row: Any) -> dict[str, Any]:
    return {
        "event_id": row.event_id,
        "run_id": row.run_id,
        "agent_name": row.agent_name,
        "event_type": row.event_type,
        "timestamp": row.timestamp,
        "parent_run_id": row.parent_id,
        "latency_ms": row.latency_ms,
        "cost": row.cost,
        "tokens_in": row.tokens_in,
        "tokens_out": row.tokens_out,
        "model": row.model,
        "data": orjson.Fragment(row.data),
    }


async def list_agents(session: AsyncSession, *, project_ids: Sequence[int]) -> list[dict[str, Any]]:
    return [
        {
            "name": a.name,
            "description": a.description,
            "created_at": a.created_at,
            "project_id": a.project_id,
        }
        for a in await repository.list_agents(session, project_ids=project_ids)
    ]


async def get_agent(
    session: AsyncSession, *, project_ids: Sequence[int], name: str
) -> dict[str, Any]:
    agents = await repository.get_agents_by_name(session, project_ids=project_ids, name=name)
    if not agents:
        raise not_found("agent", repr(name))
    runs = sum(a.total_runs for a in agents)
    cost = capped_real(sum(a.total_cost for a in agents))
    return {
        "name": name,
        "description": agents[0].description,
        "total_runs": runs,
        "total_events": capped_int(sum(a.total_events for a in agents)),
        "total_cost": cost,
        "avg_cost": cost / runs if runs else 0.0,
        "tokens_in": capped_int(sum(a.tokens_in for a in agents)),
        "tokens_out": capped_int(sum(a.tokens_out for a in agents)),
        "created_at": min(a.created_at for a in agents),
        "project_id": agents[0].project_id,
    }


def run_dict(run: Any) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "agent_name": run.agent_name,
        "environment": run.environment,
        "status": run.status,
        "total_duration_ms": run.total_duration_ms,
        "total_cost": run.total_cost,
        "tokens_in": run.tokens_in,
        "tokens_out": run.tokens_out,
        "event_count": run.event_count,
        "error_count": run.error_count,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "run_metadata": run.run_metadata,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "project_id": run.project_id,
    }


async def list_agent_runs(
    session: AsyncSession,
    *,
    project_ids: Sequence[int],
    name: str,
    status: str | None,
    environment: str | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    if not await repository.get_agents_by_name(session, project_ids=project_ids, name=name):
        raise not_found("agent", repr(name))
    runs, total = await repository.list_runs(
        session,
        project_ids=project_ids,
        agent_name=name,
        status=status,
        environment=environment,
        limit=limit,
        offset=offset,
    )
    return {
        "agent_name": name,
        "runs": [run_dict(r) for r in runs],
        "total": total,
        "limit": limit,
        "offset": offset,
        "has_more": offset + len(runs) < total,
    }


async def agent_metrics(
    session: AsyncSession,
    *,
    project_ids: Sequence[int],
    name: str,
    period: str,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, Any]:
    agent = await get_agent(session, project_ids=project_ids, name=name)
    statuses = await repository.run_status_counts(session, project_ids=project_ids, agent_name=name)
    total_duration, avg_duration = await repository.run_duration_stats(
        session, project_ids=project_ids, agent_name=name
    )
    series = await repository.list_agent_metrics(
        session, project_ids=project_ids, agent_name=name, period=period, since=since, until=until
    )
    runs = agent["total_runs"]
    return {
        "agent_name": name,
        "total_runs": runs,
        "completed_runs": statuses.get("completed", 0),
        "failed_runs": statuses.get("failed", 0),
        "active_runs": statuses.get("active", 0),
        "success_rate": statuses.get("completed", 0) / runs if runs else 0.0,
        "total_events": agent["total_events"],
        "total_cost": agent["total_cost"],
        "avg_cost": agent["avg_cost"],
        "total_tokens_in": agent["tokens_in"],
        "total_tokens_out": agent["tokens_out"],
        "total_duration_ms": total_duration,
        "avg_duration_ms": avg_duration,
        "period": period,
        "series": [
            {
                "bucket_start": bucket,
                "runs": int(runs_n or 0),
                "events": capped_int(events),
                "errors": capped_int(errors),
                "cost": capped_real(cost),
                "tokens_in": capped_int(tin),
                "tokens_out": capped_int(tout),
                "duration_ms": capped_real(duration),
            }
            for bucket, runs_n, events, errors, cost, tin, tout, duration in series
        ],
    }


async def get_run(session: AsyncSession, *, project_ids: Sequence[int], run_id: str) -> Any:
    run = await repository.get_run(session, project_ids=project_ids, run_id=run_id)
    if run is None:
        raise not_found("run", repr(run_id))
    return run


async def run_timeline(
    session: AsyncSession, *, project_ids: Sequence[int], run_id: str
) -> dict[str, Any]:
    run = await get_run(session, project_ids=project_ids, run_id=run_id)
    events = await repository.list_run_events(session, project_id=run.project_id, run_id=run_id)
    return {
        "run_id": run_id,
        "agent_name": run.agent_name,
        "event_count": len(events),
        "events": [_event_dict(e) for e in events],
    }


def build_tree(rows: Sequence[Any]) -> tuple[list[int], list[list[int]], list[int], list[float]]:
    """Roots, children lists, depths (roots = 1) and subtree costs; iterative, cycle-safe.

    ``rows`` are positional, in ``repository.TRACE_COLUMNS`` order (event_id, event_type,
    timestamp, parent_id, latency_ms, cost, data).

    An event whose parent is missing (or itself) is a root. Each event has one parent, so a walk
    from the roots never revisits a node; events left unreached sit on a parent cycle: each such
    component is broken at its first event, which becomes a root. No event is ever dropped.
    """
    n = len(rows)
    index = {row[0]: i for i, row in enumerate(rows)}
    parent = [-1] * n
    children: list[list[int]] = [[] for _ in range(n)]
    roots: list[int] = []
    for i, row in enumerate(rows):
        p = index.get(row[3], -1) if row[3] else -1
        if p < 0 or p == i:
            roots.append(i)
        else:
            parent[i] = p
            children[p].append(i)
    depth = [0] * n
    order: list[int] = []

    def walk(start: int) -> None:
        depth[start] = 1
        stack = [start]
        while stack:
            node = stack.pop()
            order.append(node)
            kids = children[node]
            if kids:
                level = depth[node] + 1
                for kid in kids:
                    depth[kid] = level
                stack.extend(reversed(kids))

    for root in roots:
        walk(root)
    if len(order) < n:
        for i in range(n):
            if depth[i] == 0:
                children[parent[i]].remove(i)
                parent[i] = -1
                roots.append(i)
                walk(i)
    cost = [float(row[5] or 0.0) for row in rows]
    for node in reversed(order):
        p = parent[node]
        if p >= 0:
            cost[p] += cost[node]
    return roots, children, depth, cost


async def run_trace_json(
    session: AsyncSession, *, project_ids: Sequence[int], run_id: str
) -> bytes:
    """The execution tree as JSON bytes, written iteratively (a 1,000-deep chain is fine)."""
    run = await get_run(session, project_ids=project_ids, run_id=run_id)
    rows = await repository.list_run_trace_rows(session, project_id=run.project_id, run_id=run_id)
    roots, children, depth, cost = build_tree(rows)
    dumps = orjson.dumps
    utc_z = orjson.OPT_UTC_Z
    fragment = orjson.Fragment
    out: list[bytes] = [b"["]
    close = -1
    # Pre-order walk with explicit close markers; ``first`` tracks comma placement per level.
    stack: list[int] = list(reversed(roots))
    first = [True]
    while stack:
        node = stack.pop()
        if node == close:
            out.append(b"]}")
            first.pop()
            continue
        if first[-1]:
            first[-1] = False
        else:
            out.append(b",")
        event_id, event_type, timestamp, parent_id, latency_ms, event_cost, data = rows[node]
        head = dumps(
            {
                "event_id": event_id,
                "event_type": event_type,
                "timestamp": timestamp,
                "parent_run_id": parent_id,
                "depth": depth[node],
                "latency_ms": latency_ms,
                "cost": event_cost,
                "total_cost": cost[node],
                "data": fragment(data),
            },
            option=utc_z,
        )
        out.append(head[:-1])
        kids = children[node]
        if kids:
            out.append(b',"children":[')
            first.append(True)
            stack.append(close)
            stack.extend(reversed(kids))
        else:
            out.append(b',"children":[]}')
    out.append(b"]")
    header = orjson.dumps(
        {
            "run_id": run_id,
            "agent_name": run.agent_name,
            "status": run.status,
            "event_count": len(rows),
            "total_cost": run.total_cost,
            "total_duration_ms": run.total_duration_ms,
        }
    )
    return header[:-1] + b',"execution_tree":' + b"".join(out) + b"}"


async def event_children(
    session: AsyncSession, *, project_ids: Sequence[int], event_id: str
) -> dict[str, Any]:
    event = await repository.get_event(session, project_ids=project_ids, event_id=event_id)
    if event is None:
        raise not_found("event", repr(event_id))
    rows = await repository.list_children(session, project_id=event.project_id, parent_id=event_id)
    return {
        "event_id": event_id,
        "run_id": event.run_id,
        "children": [_event_dict(r) for r in rows],
        "count": len(rows),
    }


async def metrics_summary(
    session: AsyncSession, *, project_ids: Sequence[int], top: int = 5
) -> dict[str, Any]:
    totals = await repository.agent_totals(session, project_ids=project_ids)
    total_duration, _ = await repository.run_duration_stats(session, project_ids=project_ids)
    runs = totals["total_runs"]
    return {
        **totals,
        "avg_cost_per_run": totals["total_cost"] / runs if runs else 0.0,
        "total_duration_hours": total_duration / 3_600_000,
        "top_agents_by_cost": [
            {"agent_name": name, "cost": capped_real(value)}
            for name, value in await repository.top_agents(
                session, project_ids=project_ids, by="cost", limit=top
            )
        ],
        "top_agents_by_runs": [
            {"agent_name": name, "runs": int(value)}
            for name, value in await repository.top_agents(
                session, project_ids=project_ids, by="runs", limit=top
            )
        ],
    }
