"""Metrics rules: ingestion (validate, write, then cache + publish), queries, the rollup job."""

from __future__ import annotations

import base64
import binascii
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gati.db.dialect import max_committed_id, snapshot_connection
from gati.db.engine import Database
from gati.exceptions import AppError
from gati.json import isoformat_z
from gati.live.hub import LiveHub, metric_topic
from gati.live.runtime import Realtime
from gati.metrics import repository
from gati.metrics.aggregation import (
    SKETCH_RELATIVE_ACCURACY,
    Sketch,
    Summary,
    TooManyBuckets,
    append_range,
    bucket_results,
    fold_points,
    needs_sketch,
    plan_query,
)
from gati.metrics.buckets import HOUR, BucketUnit, get_zone
from gati.metrics.schemas import ItemError, MetricPointIn

log = logging.getLogger(__name__)

ROLLUP_CHUNK = 50_000
# Stored with each hour rollup (columns of ``metric_rollups``).
STORED_PERCENTILES = ("p50", "p95", "p99")


# ---- ingestion --------------------------------------------------------------------------------


# Series ids by (project, name, tags key): a series row never changes once created, so the
# writer only asks the database for series it has not seen (cleared on any write error).
# One cache per database engine (tests and tools open several databases in one process).
SERIES_CACHE_SIZE = 100_000
_series_caches: weakref.WeakKeyDictionary[Any, dict[tuple[int, str, str], int]] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True, slots=True)
class WriteResult:
    id: int
    duplicate: bool
    # The point as the API shows it, when the group commit's after-commit hook built it.
    payload: dict[str, Any] | None = None


async def write_points(conn: AsyncConnection, points: Sequence[MetricPointIn]) -> list[WriteResult]:
    """Store a batch in the caller's transaction (group commit or one request's list).

    Idempotent on (project, client ``id``): a point whose id is already stored (or repeated in
    the batch) is not stored again; its result points at the stored row.
    """
    results: list[WriteResult | None] = [None] * len(points)
    with_ids = {(p.project_id, p.client_id) for p in points if p.client_id is not None}
    known = await repository.existing_client_ids(conn, with_ids) if with_ids else {}
    fresh: list[int] = []
    first_of: dict[tuple[int, str], int] = {}
    for index, point in enumerate(points):
        if point.client_id is not None:
            key = (point.project_id, point.client_id)
            if key in known:
                results[index] = WriteResult(known[key], True)
                continue
            if key in first_of:
                continue  # resolved below, after the first occurrence is inserted
            first_of[key] = index
        fresh.append(index)
    chosen = [points[i] for i in fresh]
    keys = [(p.project_id, p.name, p.tags_key) for p in chosen]
    _series_ids = _series_caches.setdefault(conn.sync_engine, {})
    missing = {key: p.tags for key, p in zip(keys, chosen, strict=True) if key not in _series_ids}
    try:
        if missing:
            found = await repository.ensure_series(conn, missing)
            if len(_series_ids) + len(found) > SERIES_CACHE_SIZE:
                _series_ids.clear()
            _series_ids.update(found)
        series = {key: _series_ids[key] for key in keys}
        ids = await repository.insert_points(conn, chosen, [series[key] for key in keys])
    except Exception:
        _series_ids.clear()  # e.g. a series deleted with its project: resolve again on retry
        raise
    for index, point_id in zip(fresh, ids, strict=True):
        results[index] = WriteResult(point_id, False)
    for index, point in enumerate(points):
        if results[index] is None:
            assert point.client_id is not None
            first = results[first_of[(point.project_id, point.client_id)]]
            assert first is not None
            results[index] = WriteResult(first.id, True)
    return [r for r in results if r is not None]


def point_payload(point: MetricPointIn, point_id: int) -> dict[str, Any]:
    return {
        "id": point_id,
        "project_id": point.project_id,
        "name": point.name,
        "value": point.value,
        "timestamp": isoformat_z(point.ts),
        "tags": point.tags,
    }


async def after_group_commit(
    realtime: Realtime, points: list[MetricPointIn], results: list[WriteResult]
) -> list[WriteResult]:
    """The group committer's hook for single points: one cache update and one publish per
    topic for the whole group; each request gets its point's payload with its result."""
    payloads = [point_payload(p, r.id) for p, r in zip(points, results, strict=True)]
    await after_commit(realtime, points, results, payloads)
    return [
        WriteResult(r.id, r.duplicate, payload)
        for r, payload in zip(results, payloads, strict=True)
    ]


async def after_commit(
    realtime: Realtime,
    points: Sequence[MetricPointIn],
    results: Sequence[WriteResult],
    payloads: Sequence[dict[str, Any]] | None = None,
) -> None:
    """Latest cache, then live publish: only for points this request newly stored, after commit.
    Failures are logged, never raised: the points are committed and acknowledged.

    ``payloads``: the points' :func:`point_payload` if the caller already built them."""
    if payloads is None:
        stored = [(p, point_payload(p, r.id)) for p, r in zip(points, results, strict=True)]
    else:
        stored = list(zip(points, payloads, strict=True))
    stored = [item for item, r in zip(stored, results, strict=True) if not r.duplicate]
    if not stored:
        return
    try:
        await realtime.latest.update_many(
            (p.project_id, p.name, p.ts.timestamp(), payload) for p, payload in stored
        )
    except Exception:
        log.exception("metrics: latest cache update failed")
    await publish_points(realtime.hub, stored)


async def publish_points(
    hub: LiveHub, payloads: Sequence[tuple[MetricPointIn, dict[str, Any]]]
) -> None:
    by_topic: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for point, payload in payloads:
        by_topic.setdefault((point.project_id, point.name), []).append(payload)
    for (project_id, name), items in by_topic.items():
        try:
            await hub.publish(
                metric_topic(project_id, name),
                {"type": "metric", "project_id": project_id, "name": name, "points": items},
            )
        except Exception:
            log.exception("metrics: live publish failed for %s/%s", project_id, name)


def summarize_errors(errors: Sequence[ItemError]) -> list[dict[str, Any]]:
    return [error.as_dict() for error in errors]


# ---- queries ----------------------------------------------------------------------------------


def encode_cursor(ts: datetime, point_id: int) -> str:
    micros = int((ts - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
    raw = orjson.dumps([1, micros, point_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, micros, point_id = orjson.loads(raw)
        if version != 1 or not isinstance(micros, int) or not isinstance(point_id, int):
            raise ValueError("unknown cursor")
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros), point_id
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise AppError(400, "invalid_cursor", "cursor: not a cursor returned by this API") from exc


def point_read(row: repository.PointRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "project_id": row.project_id,
        "name": row.name,
        "value": row.value,
        "timestamp": row.ts,
        "tags": row.tags,
        "client_id": row.client_id,
        "received_at": row.received_at,
    }


async def list_points(
    session: AsyncSession,
    *,
    project_ids: Sequence[int],
    name: str | None,
    tags: dict[str, str],
    start: datetime | None,
    end: datetime | None,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    after = decode_cursor(cursor) if cursor else None
    rows = await repository.list_points(
        session,
        project_ids=project_ids,
        name=name,
        tags=tags,
        start=start,
        end=end,
        after=after,
        limit=limit + 1,
    )
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].ts, page[-1].id) if len(rows) > limit else None
    return {"items": [point_read(row) for row in page], "next_cursor": next_cursor}


async def get_point(
    session: AsyncSession, *, project_ids: Sequence[int], point_id: int
) -> dict[str, Any]:
    row = await repository.get_point(session, project_ids=project_ids, point_id=point_id)
    if row is None:
        raise AppError(
            404,
            "metric_not_found",
            f"Metric point {point_id} does not exist or is not visible to you",
        )
    return point_read(row)


async def latest(
    session: AsyncSession,
    realtime: Realtime,
    *,
    project_ids: Sequence[int],
    name: str,
    tags: dict[str, str],
) -> dict[str, Any]:
    """The newest point of ``name``: from the cache per project, the database on a miss."""
    candidates: list[dict[str, Any]] = []
    if not tags:
        for project_id in project_ids:
            cached = await realtime.latest.get(project_id, name)
            if cached is None:
                row = await repository.latest_point(
                    session, project_ids=[project_id], name=name, tags={}
                )
                if row is None:
                    continue
                cached = {
                    "id": row.id,
                    "project_id": row.project_id,
                    "name": row.name,
                    "value": row.value,
                    "timestamp": isoformat_z(row.ts),
                    "tags": row.tags,
                }
                await realtime.latest.update_many([(project_id, name, row.ts.timestamp(), cached)])
            candidates.append(cached)
    else:
        row = await repository.latest_point(session, project_ids=project_ids, name=name, tags=tags)
        if row is not None:
            candidates.append(
                {
                    "id": row.id,
                    "project_id": row.project_id,
                    "name": row.name,
                    "value": row.value,
                    "timestamp": isoformat_z(row.ts),
                    "tags": row.tags,
                }
            )
    if not candidates:
        raise AppError(
            404, "metric_not_found", f"No point of metric {name!r} in the projects visible to you"
        )
    return max(candidates, key=lambda c: (c["timestamp"], c["id"]))


def hour_ranges(hours: Sequence[datetime]) -> list[tuple[datetime, datetime]]:
    """Whole UTC hours as the fewest ``[start, end)`` ranges."""
    ranges: list[tuple[datetime, datetime]] = []
    for hour in sorted(set(hours)):
        append_range(ranges, hour, hour + HOUR)
    return ranges


def _stored_quantiles(
    parts: list[repository.AggregateRow],
) -> tuple[float | None, float | None, float | None] | None:
    """The stored percentiles of a bucket made of one hour rollup that has them, else None."""
    if len(parts) != 1 or parts[0].kind != 0:
        return None
    quantiles = parts[0].quantiles
    return quantiles if quantiles is not None and quantiles[0] is not None else None


def _summarize(
    parts: list[repository.AggregateRow],
    sketches: dict[tuple[int, datetime], bytes],
    with_values: bool,
) -> Summary:
    """One bucket's summary from its rollup rows and its raw points (grouped by minute)."""
    summary = Summary()
    for row in parts:
        summary.merge_parts(row.count, row.sum, row.min, row.max)
    if not with_values:
        return summary
    stored = _stored_quantiles(parts)
    if stored is not None:
        p50, p95, p99 = stored
        summary.quantiles = {"p50": p50, "p95": p95, "p99": p99}
        return summary
    encoded: list[bytes] = []
    values: list[float] = []
    for row in parts:
        if row.kind == 1:
            values.extend(row.values or ())
        else:
            encoded.append(row.sketch or sketches[(row.series_id, row.start)])
    summary.sketch = Sketch.merge_all(encoded)
    # Tens of thousands of raw points can be in the not-yet-rolled-up tail: keyed in numpy.
    summary.sketch.merge(Sketch.of_values(np.asarray(values, dtype=np.float64)))
    return summary


async def aggregate(
    db: Database,
    *,
    project_ids: Sequence[int],
    name: str,
    tags: dict[str, str],
    functions: list[str],
    unit: BucketUnit,
    tz_name: str,
    start: datetime,
    end: datetime,
    max_buckets: int,
) -> dict[str, Any]:
    try:
        tz = get_zone(tz_name)
    except ValueError as exc:
        raise AppError(422, "invalid_tz", f"tz: {exc}") from exc
    if end <= start:
        raise AppError(422, "invalid_range", "end: must be after start")
    try:
        plan = plan_query(start, end, unit, tz, max_buckets=max_buckets)
    except TooManyBuckets as exc:
        raise AppError(422, "too_many_buckets", f"bucket: {exc}") from exc
    with_values = needs_sketch(functions)
    async with snapshot_connection(db.read_engine, db.dialect) as conn:
        series_ids = await repository.aggregate_series(
            conn, project_ids=project_ids, name=name, tags=tags
        )
        rows = await repository.aggregate_rows(
            conn, series_ids=series_ids, plan=plan, with_values=with_values
        )
        by_bucket: dict[int, list[repository.AggregateRow]] = {}
        for row in rows:
            index = plan.bucket_index(max(row.start, plan.start))
            if index is not None:
                by_bucket.setdefault(index, []).append(row)
        sketches: dict[tuple[int, datetime], bytes] = {}
        if with_values:
            # An hour bucket made of one hour rollup answers from the quantiles stored with
            # it; the hour rollups of every other bucket are merged, so their sketches are read.
            merged_hours = [
                row.start
                for parts in by_bucket.values()
                for row in parts
                if row.kind == 0 and row.sketch is None and _stored_quantiles(parts) is None
            ]
            if merged_hours:
                sketches = await repository.rollup_sketches(
                    conn, series_ids, hour_ranges(merged_hours)
                )
    summaries = {
        index: _summarize(parts, sketches, with_values) for index, parts in by_bucket.items()
    }
    return {
        "name": name,
        "project_ids": list(project_ids),
        "bucket": unit,
        "tz": tz_name,
        "start": start,
        "end": end,
        "functions": functions,
        "tags": tags,
        "percentile_relative_accuracy": SKETCH_RELATIVE_ACCURACY,
        "buckets": bucket_results(plan, summaries, functions, tz),
    }


# ---- rollup job -------------------------------------------------------------------------------


async def rollup_upper_bound(db: Database) -> int | None:
    """The highest point id below which every point is committed for good (None: try later)."""
    try:
        async with db.connection() as conn:
            return await max_committed_id(conn, "metric_points")
    except DBAPIError as exc:
        log.warning("metrics rollup: inserts did not pause in time (%s); next run", exc)
        return None


async def roll_up(db: Database, *, chunk: int = ROLLUP_CHUNK) -> int:
    """Fold every committed point not yet rolled up into the hour and quarter-hour rollups;
    returns the points read (each is folded into every level that had not folded it).

    Each chunk runs in one transaction that locks the watermark rows, merges the chunk into
    ``metric_rollups`` and ``metric_quarter_rollups`` and advances the watermarks: running it
    twice (or from two schedulers at once) never folds a point twice, and a crash loses nothing
    (the chunk is rolled back). A level whose watermark lags (quarter hours added to a database
    with hour rollups) catches up from the points the other level has folded already.
    """
    upper = await rollup_upper_bound(db)
    if upper is None:
        return 0
    folded = 0
    while True:
        async with db.connection() as conn:
            watermarks = await repository.lock_watermarks(conn)
            low = min(watermarks.values())
            if low >= upper:
                return folded
            points = await repository.points_after(conn, after_id=low, upto_id=upper, limit=chunk)
            new_watermark = points[-1][0] if len(points) == chunk else upper
            ids = np.fromiter((p[0] for p in points), dtype=np.int64, count=len(points))
            series = np.fromiter((p[1] for p in points), dtype=np.int64, count=len(points))
            instants = np.fromiter((p[2].timestamp() for p in points), np.float64, len(points))
            values = np.fromiter((p[3] for p in points), dtype=np.float64, count=len(points))
            for level, step in repository.ROLLUP_LEVELS:
                if watermarks[level] >= new_watermark:
                    continue
                new = ids > watermarks[level]
                summaries = fold_points(
                    series[new], instants[new], values[new], step.total_seconds()
                )
                await _merge_into_rollups(conn, level, summaries)
                await repository.set_watermark(conn, level, new_watermark)
            folded += len(points)
            if new_watermark >= upper:
                return folded


async def _merge_into_rollups(
    conn: AsyncConnection, level: str, folded: dict[tuple[int, float], Summary]
) -> None:
    """Merge summaries keyed (series id, epoch seconds) into the level's stored rollups."""
    summaries = {
        (series_id, datetime.fromtimestamp(bucket, UTC)): summary
        for (series_id, bucket), summary in folded.items()
    }
    stored = await repository.load_rollups(conn, level, list(summaries))
    rows = []
    for (series_id, bucket), summary in summaries.items():
        previous = stored.get((series_id, bucket))
        if previous is not None:
            count, total, low, high, sketch = previous
            summary.merge_parts(count, total, low, high, Sketch.from_bytes(sketch))
        assert summary.sketch is not None
        row: dict[str, Any] = {
            "series_id": series_id,
            "bucket_start": bucket,
            "count": summary.count,
            "sum": summary.sum,
            "min": summary.min,
            "max": summary.max,
            "sketch": summary.sketch.to_bytes(),
        }
        if level == repository.ROLLUP_STATE:
            row.update(summary.result(STORED_PERCENTILES))
        rows.append(row)
    await repository.save_rollups(conn, level, rows)
