"""Metrics HTTP API on SQLite and PostgreSQL: ingest, list, get, latest, aggregate, isolation."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select, update

from gati.db.engine import Database
from gati.metrics.aggregation import exact_percentile
from gati.metrics.buckets import bucket_start, get_zone
from gati.metrics.models import MetricQuarterRollup, MetricRollup, MetricRollupState
from gati.metrics.repository import QUARTER_STATE
from gati.metrics.service import roll_up
from tests.metrics.factories import make_user

MakeApp = Callable[..., Any]


async def test_ingest_one_point_then_read_it_back(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/metrics",
        json={
            "name": "cpu",
            "value": 0.75,
            "timestamp": "2024-05-01T12:00:00Z",
            "tags": {"host": "a"},
        },
    )
    assert response.status_code == 201, response.text
    point = response.json()
    assert point["value"] == 0.75 and point["tags"] == {"host": "a"}
    assert point["timestamp"] == "2024-05-01T12:00:00Z"
    fetched = await client.get(f"/api/v1/metrics/{point['id']}")
    assert fetched.status_code == 200
    assert fetched.json()["name"] == "cpu"
    assert fetched.json()["timestamp"] == "2024-05-01T12:00:00Z"
    missing = await client.get(f"/api/v1/metrics/{point['id'] + 1000}")
    assert missing.status_code == 404
    assert missing.json()["error"] == "metric_not_found"


async def test_list_reports_per_item_errors_and_stores_the_valid_ones(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/v1/metrics",
        json=[
            {"name": "cpu", "value": 1},
            {"name": "cpu"},
            {"name": "bad name!", "value": 1},
            {"name": "cpu", "value": "high"},
            {"name": "cpu", "value": 2, "timestamp": "yesterday"},
            {"name": "cpu", "value": 3, "tags": {"k": {"nested": 1}}},
            {"name": "mem", "value": 4, "timestamp": 1714564800},
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == 2 and body["failed"] == 5
    assert [e["field"] for e in body["errors"]] == ["value", "name", "value", "timestamp", "tags.k"]
    assert [e["index"] for e in body["errors"]] == [1, 2, 3, 4, 5]
    assert body["ids"][0] is not None and body["ids"][6] is not None and body["ids"][1] is None
    mem = await client.get(f"/api/v1/metrics/{body['ids'][6]}")
    assert mem.json()["timestamp"] == "2024-05-01T12:00:00Z"  # epoch seconds accepted


async def test_invalid_single_point_and_bodies_are_4xx(client: httpx.AsyncClient) -> None:
    bad = await client.post("/api/v1/metrics", json={"name": "cpu", "value": True})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("value")
    assert (await client.post("/api/v1/metrics", json=[])).status_code == 422
    assert (await client.post("/api/v1/metrics", json="cpu")).status_code == 422
    none_valid = await client.post("/api/v1/metrics", json=[{"value": 1}])
    assert none_valid.status_code == 422
    assert none_valid.json()["errors"][0]["field"] == "name"
    garbage = await client.post(
        "/api/v1/metrics", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert garbage.status_code == 400


async def test_client_ids_make_retries_idempotent(client: httpx.AsyncClient) -> None:
    batch = [{"name": "req", "value": i, "id": f"p-{i}"} for i in range(5)] + [
        {"name": "req", "value": 99, "id": "p-0"}
    ]
    first = await client.post("/api/v1/metrics", json=batch)
    assert first.json()["count"] == 5 and first.json()["duplicates"] == 1
    again = await client.post("/api/v1/metrics", json=batch)
    assert again.json()["count"] == 0 and again.json()["duplicates"] == 6
    assert again.json()["ids"][:5] == first.json()["ids"][:5]
    single = await client.post("/api/v1/metrics", json={"name": "req", "value": 1, "id": "p-3"})
    assert single.status_code == 200 and single.json()["duplicate"] is True
    listed = await client.get("/api/v1/metrics", params={"name": "req", "limit": 100})
    assert len(listed.json()["items"]) == 5


async def test_concurrent_single_points_share_commits_and_all_are_stored(
    client: httpx.AsyncClient,
) -> None:
    responses = await asyncio.gather(
        *[client.post("/api/v1/metrics", json={"name": "gc", "value": i}) for i in range(60)]
    )
    assert all(r.status_code == 201 for r in responses)
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 60
    listed = await client.get("/api/v1/metrics", params={"name": "gc", "limit": 1000})
    assert {item["id"] for item in listed.json()["items"]} == ids
    # Each acknowledged id is the row holding that request's value (ids of a shared
    # multi-row INSERT are matched back to their requests in order).
    answered = {r.json()["id"]: r.json()["value"] for r in responses}
    stored = {item["id"]: item["value"] for item in listed.json()["items"]}
    assert stored == answered
    assert sorted(answered.values()) == [float(i) for i in range(60)]


async def test_batch_ids_are_in_input_order(client: httpx.AsyncClient) -> None:
    values = random.Random(7).sample(range(100_000), 300)
    batch = [
        {"name": "order", "value": v, "tags": {"shard": str(v % 3)}, "id": f"o-{v}"} for v in values
    ]
    response = await client.post("/api/v1/metrics", json=batch)
    assert response.status_code == 200, response.text
    ids = response.json()["ids"]
    assert len(set(ids)) == 300
    for point_id, value in list(zip(ids, values, strict=True))[::37]:
        fetched = (await client.get(f"/api/v1/metrics/{point_id}")).json()
        assert fetched["value"] == value and fetched["client_id"] == f"o-{value}"


async def test_single_point_ingest_checks_credentials(
    make_app: MakeApp, make_project: Callable[..., Any], production_settings: dict[str, Any]
) -> None:
    mine, theirs = await make_project("mine"), await make_project("theirs")
    point = {"name": "auth", "value": 1}
    async with make_app(**production_settings) as client:
        anonymous = await client.post("/api/v1/metrics", json=point)
        assert anonymous.status_code == 401
        assert anonymous.json()["error"] == "authentication_required"
        unknown = await client.post(
            "/api/v1/metrics", json=point, headers={"X-API-Key": "sk_not_a_real_key"}
        )
        assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_key"
        public = {"Authorization": f"Bearer {mine['public_key']}"}
        stored = await client.post("/api/v1/metrics", json=point, headers=public)
        assert stored.status_code == 201 and stored.json()["project_id"] == mine["id"]
        elsewhere = await client.post(
            "/api/v1/metrics", params={"project": theirs["id"]}, json=point, headers=public
        )
        assert elsewhere.status_code == 404
        named = await client.post(
            "/api/v1/metrics", params={"project": mine["slug"]}, json=point, headers=public
        )
        assert named.status_code == 201 and named.json()["project_id"] == mine["id"]


async def test_list_filters_and_cursor_pagination(client: httpx.AsyncClient) -> None:
    base = datetime(2024, 3, 1, tzinfo=UTC)
    points = [
        {
            "name": "lat",
            "value": i,
            "timestamp": (base + timedelta(minutes=i % 7)).isoformat(),
            "tags": {"env": "prod" if i % 2 else "dev", "region": "eu"},
        }
        for i in range(25)
    ]
    await client.post("/api/v1/metrics", json=[*points, {"name": "other", "value": 1}])
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"name": "lat", "tag": ["env:prod"], "limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/metrics", params=params)).json()
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 12 and len({p["id"] for p in seen}) == 12
    assert all(p["tags"]["env"] == "prod" for p in seen)
    keys = [(p["timestamp"], p["id"]) for p in seen]
    assert keys == sorted(keys, reverse=True)
    ranged = await client.get(
        "/api/v1/metrics",
        params={
            "name": "lat",
            "start": (base + timedelta(minutes=2)).isoformat(),
            "end": (base + timedelta(minutes=3)).isoformat(),
        },
    )
    assert {p["value"] for p in ranged.json()["items"]} == {2.0, 9.0, 16.0, 23.0}
    bad_cursor = await client.get("/api/v1/metrics", params={"cursor": "zzz"})
    assert bad_cursor.status_code == 400
    bad_tag = await client.get("/api/v1/metrics", params={"tag": "noseparator"})
    assert bad_tag.status_code == 422 and "tag" in bad_tag.json()["detail"]


async def test_latest_is_newest_by_timestamp_and_survives_a_cold_cache(
    make_app: MakeApp,
) -> None:
    async with make_app() as client:
        await client.post(
            "/api/v1/metrics",
            json={"name": "temp", "value": 20, "timestamp": "2024-01-01T10:00:00Z"},
        )
        await client.post(
            "/api/v1/metrics",
            json={"name": "temp", "value": 5, "timestamp": "2024-01-01T09:00:00Z"},
        )
        latest = await client.get("/api/v1/metrics/latest/temp")
        assert latest.status_code == 200 and latest.json()["value"] == 20
        assert (await client.get("/api/v1/metrics/latest/nothing")).status_code == 404
    async with make_app() as fresh:  # new process-local cache: read from the database
        latest = await fresh.get("/api/v1/metrics/latest/temp")
        assert latest.json()["value"] == 20


@pytest.mark.redis
async def test_latest_cache_in_redis_is_shared_between_apps(
    make_app: MakeApp, redis_url: str, redis_prefix: str
) -> None:
    async with (
        make_app(redis_url=redis_url, redis_prefix=redis_prefix) as a,
        make_app(redis_url=redis_url, redis_prefix=redis_prefix) as b,
    ):
        await a.post(
            "/api/v1/metrics", json={"name": "q", "value": 3, "timestamp": "2024-01-01T00:00:00Z"}
        )
        realtime = b.app.state.realtime  # type: ignore[attr-defined]
        cached = await realtime.latest.get(b.app.state.default_project_id, "q")  # type: ignore[attr-defined]
        assert cached is not None and cached["value"] == 3
        assert (await b.get("/api/v1/metrics/latest/q")).json()["value"] == 3
        health = await b.get("/health")
        assert health.status_code == 200 and health.json()["redis"] == "connected"


def brute_force(
    points: list[tuple[datetime, float]],
    tz_name: str,
    unit: str,
    start: datetime,
    end: datetime,
) -> dict[str, list[float]]:
    tz = get_zone(tz_name)
    buckets: dict[str, list[float]] = {}
    for ts, value in points:
        if start <= ts < end:
            key = bucket_start(ts, unit, tz).astimezone(tz).isoformat()  # type: ignore[arg-type]
            buckets.setdefault(key, []).append(value)
    return buckets


async def assert_aggregate_exact(
    client: httpx.AsyncClient,
    points: list[tuple[datetime, float]],
    *,
    tz: str,
    unit: str,
    start: datetime,
    end: datetime,
) -> None:
    response = await client.get(
        "/api/v1/metrics/aggregate/load",
        params={
            "function": "count,sum,avg,min,max,p50,p95,p99",
            "bucket": unit,
            "tz": tz,
            "start": start.isoformat(),
            "end": end.isoformat(),
        },
    )
    assert response.status_code == 200, response.text
    truth = brute_force(points, tz, unit, start, end)
    got = {row["start"]: row for row in response.json()["buckets"]}
    assert {k for k, row in got.items() if row["count"]} == set(truth)
    for key, values in truth.items():
        row = got[key]
        assert row["count"] == len(values)
        assert row["sum"] == pytest.approx(sum(values))
        assert row["min"] == min(values) and row["max"] == max(values)
        assert row["avg"] == pytest.approx(sum(values) / len(values))
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            exact = exact_percentile(values, q)
            assert abs(row[name] - exact) <= 0.0101 * abs(exact), (key, name)


async def post_points(client: httpx.AsyncClient, points: list[tuple[datetime, float]]) -> None:
    for start in range(0, len(points), 500):
        chunk = points[start : start + 500]
        response = await client.post(
            "/api/v1/metrics",
            json=[{"name": "load", "value": v, "timestamp": ts.isoformat()} for ts, v in chunk],
        )
        assert response.json()["count"] == len(chunk)


@pytest.mark.parametrize(
    "tz,unit",
    [
        ("America/New_York", "day"),
        ("America/New_York", "hour"),
        ("Asia/Kolkata", "day"),
        ("Asia/Kathmandu", "hour"),
        ("Europe/Berlin", "week"),
        ("UTC", "hour"),
    ],
)
async def test_aggregate_is_exact_before_during_and_after_rollups(
    client: httpx.AsyncClient, db: Database, tz: str, unit: str
) -> None:
    rng = random.Random(42)
    # Around the US fall-back change (3 Nov 2024), in random order (late points included).
    start = datetime(2024, 11, 1, 20, 17, tzinfo=UTC)
    end = datetime(2024, 11, 5, 3, 41, tzinfo=UTC)
    span = (end - start).total_seconds()
    points = [
        (
            start + timedelta(seconds=rng.uniform(-3600, span + 3600)),
            round(rng.lognormvariate(2, 1), 3),
        )
        for _ in range(1500)
    ]
    first, second = points[:900], points[900:]
    await post_points(client, first)
    await assert_aggregate_exact(client, first, tz=tz, unit=unit, start=start, end=end)  # raw only
    assert await roll_up(db) == 900
    await post_points(client, second)  # tail on top of rollups, some in rolled-up hours
    await assert_aggregate_exact(client, points, tz=tz, unit=unit, start=start, end=end)
    assert await roll_up(db) == 600
    assert await roll_up(db) == 0  # nothing new: a second run folds nothing
    await assert_aggregate_exact(client, points, tz=tz, unit=unit, start=start, end=end)


async def test_aggregate_stays_exact_while_a_lagging_rollup_level_catches_up(
    client: httpx.AsyncClient, db: Database
) -> None:
    """A database upgraded from hour-only rollups: quarter rollups empty, their watermark 0,
    hour rollups without stored percentiles. Answers are exact before and after the catch-up."""
    rng = random.Random(7)
    start = datetime(2024, 3, 1, 0, 0, tzinfo=UTC)
    end = start + timedelta(days=2)
    points = [
        (start + timedelta(seconds=rng.uniform(0, 2 * 86400)), round(rng.uniform(1, 100), 2))
        for _ in range(800)
    ]
    await post_points(client, points)
    assert await roll_up(db) == 800
    async with db.connection() as conn:
        await conn.execute(delete(MetricQuarterRollup))
        await conn.execute(
            update(MetricRollupState)
            .where(MetricRollupState.name == QUARTER_STATE)
            .values(watermark=0)
        )
        await conn.execute(update(MetricRollup).values(p50=None, p95=None, p99=None))
    for tz, unit in (("Asia/Kolkata", "day"), ("UTC", "hour")):
        await assert_aggregate_exact(client, points, tz=tz, unit=unit, start=start, end=end)
    assert await roll_up(db, chunk=300) == 800  # the quarter level folds what it missed
    async with db.connection() as conn:
        quarters = (await conn.execute(select(func.sum(MetricQuarterRollup.count)))).scalar_one()
        hours = (await conn.execute(select(func.sum(MetricRollup.count)))).scalar_one()
    assert quarters == 800 and hours == 800  # and the hour level folded nothing twice
    for tz, unit in (("Asia/Kolkata", "day"), ("UTC", "hour")):
        await assert_aggregate_exact(client, points, tz=tz, unit=unit, start=start, end=end)


async def test_aggregate_filters_by_tags_and_validates_parameters(
    client: httpx.AsyncClient,
) -> None:
    await client.post(
        "/api/v1/metrics",
        json=[
            {
                "name": "rt",
                "value": 10,
                "timestamp": "2024-01-01T00:10:00Z",
                "tags": {"env": "prod"},
            },
            {
                "name": "rt",
                "value": 30,
                "timestamp": "2024-01-01T00:20:00Z",
                "tags": {"env": "prod"},
            },
            {
                "name": "rt",
                "value": 1000,
                "timestamp": "2024-01-01T00:30:00Z",
                "tags": {"env": "dev"},
            },
        ],
    )
    window = {"start": "2024-01-01T00:00:00Z", "end": "2024-01-01T01:00:00Z", "bucket": "hour"}
    prod = await client.get(
        "/api/v1/metrics/aggregate/rt",
        params={**window, "tag": "env:prod", "function": ["avg", "max"]},
    )
    assert prod.json()["buckets"] == [
        {
            "start": "2024-01-01T00:00:00+00:00",
            "end": "2024-01-01T01:00:00+00:00",
            "avg": 20.0,
            "max": 30.0,
        }
    ]
    for params, code in [
        ({"function": "p42"}, "invalid_function"),
        ({"tz": "Mars/Base"}, "invalid_tz"),
        ({"bucket": "minute", "start": "2020-01-01T00:00:00Z"}, "too_many_buckets"),
        ({"start": "2024-01-02T00:00:00Z"}, "invalid_range"),
    ]:
        response = await client.get("/api/v1/metrics/aggregate/rt", params={**window, **params})
        assert response.status_code == 422, params
        assert response.json()["error"] == code
    bad_bucket = await client.get(
        "/api/v1/metrics/aggregate/rt", params={**window, "bucket": "year"}
    )
    assert bad_bucket.status_code == 422


async def test_rollups_from_two_concurrent_schedulers_fold_each_point_once(
    client: httpx.AsyncClient, database_url: str
) -> None:
    base = datetime(2024, 2, 1, tzinfo=UTC)
    points = [(base + timedelta(seconds=37 * i), float(i % 13)) for i in range(2000)]
    await post_points(client, points)
    first, second = Database(database_url), Database(database_url)
    try:
        folded = await asyncio.gather(roll_up(first, chunk=300), roll_up(second, chunk=300))
    finally:
        await first.dispose()
        await second.dispose()
    assert sum(folded) == 2000
    response = await client.get(
        "/api/v1/metrics/aggregate/load",
        params={
            "bucket": "day",
            "start": base.isoformat(),
            "end": (base + timedelta(days=2)).isoformat(),
            "function": "count,sum",
        },
    )
    rows = [row for row in response.json()["buckets"] if row["count"]]
    assert sum(row["count"] for row in rows) == 2000
    assert sum(row["sum"] for row in rows) == pytest.approx(sum(v for _, v in points))


async def test_tenants_cannot_read_each_others_metrics(
    make_app: MakeApp,
    make_project: Callable[..., Any],
    db: Database,
    production_settings: dict[str, Any],
) -> None:
    mine, theirs = await make_project("mine"), await make_project("theirs")
    owner = await make_user(db, project_ids=[mine["id"]], secret=production_settings["secret_key"])
    async with make_app(**production_settings) as client:
        their_key = {"Authorization": f"Bearer {theirs['secret_key']}"}
        my_token = {"Authorization": f"Bearer {owner.token()}"}
        stored = await client.post(
            "/api/v1/metrics", json={"name": "secret", "value": 1}, headers=their_key
        )
        assert stored.status_code == 201
        point_id = stored.json()["id"]
        assert (
            await client.get(f"/api/v1/metrics/{point_id}", headers=my_token)
        ).status_code == 404
        assert (await client.get("/api/v1/metrics", headers=my_token)).json()["items"] == []
        assert (
            await client.get("/api/v1/metrics/latest/secret", headers=my_token)
        ).status_code == 404
        agg = await client.get("/api/v1/metrics/aggregate/secret", headers=my_token)
        assert all(row["count"] == 0 for row in agg.json()["buckets"])
        named = await client.get(
            "/api/v1/metrics", params={"project": theirs["id"]}, headers=my_token
        )
        assert named.status_code == 404
        write_other = await client.post(
            "/api/v1/metrics",
            params={"project": theirs["id"]},
            json={"name": "x", "value": 1},
            headers=my_token,
        )
        assert write_other.status_code == 404
        assert (
            await client.get(f"/api/v1/metrics/{point_id}", headers=their_key)
        ).status_code == 200
        anonymous = await client.get("/api/v1/metrics")
        assert anonymous.status_code == 401
        public = await client.get(
            "/api/v1/metrics", headers={"Authorization": f"Bearer {theirs['public_key']}"}
        )
        assert public.status_code == 403


async def test_rate_limits_answer_429_with_retry_after(make_app: MakeApp) -> None:
    async with make_app(
        rate_limit_ingest="1/minute;burst=3", rate_limit_read="1/minute;burst=2"
    ) as client:
        statuses = [
            (await client.post("/api/v1/metrics", json={"name": "r", "value": 1})).status_code
            for _ in range(4)
        ]
        assert statuses == [201, 201, 201, 429]
        limited = await client.post("/api/v1/metrics", json={"name": "r", "value": 1})
        assert limited.json()["error"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        reads = [(await client.get("/api/v1/metrics")).status_code for _ in range(3)]
        assert reads == [200, 200, 429]


@pytest.mark.redis
async def test_rate_limits_are_shared_through_redis(
    make_app: MakeApp, redis_url: str, redis_prefix: str
) -> None:
    settings = {
        "redis_url": redis_url,
        "redis_prefix": redis_prefix,
        "rate_limit_read": "1/minute;burst=2",
    }
    async with make_app(**settings) as a, make_app(**settings) as b:
        assert (await a.get("/api/v1/metrics")).status_code == 200
        assert (await b.get("/api/v1/metrics")).status_code == 200
        third = await a.get("/api/v1/metrics")
        assert third.status_code == 429 and "retry-after" in third.headers


async def test_health_reports_redis_down(make_app: MakeApp) -> None:
    async with make_app(redis_url="redis://127.0.0.1:1/0") as client:
        health = await client.get("/health")
        assert health.status_code == 503
        assert health.json()["redis"] == "disconnected"
        # Ingestion still works without Redis (cache and publish failures are logged).
        stored = await client.post("/api/v1/metrics", json={"name": "x", "value": 1})
        assert stored.status_code == 201
