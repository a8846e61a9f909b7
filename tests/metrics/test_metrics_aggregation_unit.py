"""Mergeable summaries, percentile sketches and the rollup/raw query plan."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pytest

from gati.metrics.aggregation import (
    QueryPlan,
    Sketch,
    Summary,
    TooManyBuckets,
    bucket_results,
    exact_percentile,
    fold_points,
    parse_functions,
    plan_query,
)
from gati.metrics.buckets import HOUR, QUARTER, floor_utc, get_zone


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_summary_exact_functions() -> None:
    summary = Summary.of([3.0, -1.0, 10.0, 4.0])
    assert summary.result(["count", "sum", "avg", "min", "max"]) == {
        "count": 4,
        "sum": 16.0,
        "avg": 4.0,
        "min": -1.0,
        "max": 10.0,
    }


def test_empty_summary_has_nulls_but_zero_count() -> None:
    assert Summary().result(["count", "sum", "avg", "p95"]) == {
        "count": 0,
        "sum": 0.0,
        "avg": None,
        "p95": None,
    }


@pytest.mark.parametrize("q,name", [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")])
def test_merged_sketch_percentile_within_one_percent(q: float, name: str) -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(3, 1.2) for _ in range(20_000)] + [-5.0, 0.0]
    parts = [values[i::7] for i in range(7)]
    merged = Summary(sketch=Sketch())
    for part in parts:
        stored = Summary.of(part)
        assert stored.sketch is not None
        # Through the storage format, as the rollup table holds it.
        merged.merge_parts(
            stored.count,
            stored.sum,
            stored.min,
            stored.max,
            Sketch.from_bytes(stored.sketch.to_bytes()),
        )
    got = merged.result([name])[name]
    truth = exact_percentile(values, q)
    assert got is not None
    assert abs(got - truth) <= 0.0101 * abs(truth)
    assert merged.count == len(values)


def test_percentiles_of_negative_and_zero_values_and_clamped_to_range() -> None:
    summary = Summary.of([-100.0, -10.0, 0.0, 0.0, 1.0])
    result = summary.result(["p50", "p99"])
    assert result["p50"] == 0.0
    assert result["p99"] == 0.0  # rank floor(0.99 * 4) = 3 of the sorted values
    assert Summary.of([float(v) for v in range(1, 102)]).result(["p99"])["p99"] == pytest.approx(
        100.0, rel=0.01
    )
    single = Summary.of([42.0])
    assert single.result(["p50", "p99"]) == {"p50": 42.0, "p99": 42.0}


def test_sketch_bytes_round_trip_and_unknown_format() -> None:
    sketch = Sketch()
    for value in (1.5, -2.0, 0.0, 1e9, 1e-9):
        sketch.add(value)
    again = Sketch.from_bytes(sketch.to_bytes())
    assert again == sketch
    assert again.count == 5
    with pytest.raises(ValueError, match="format"):
        Sketch.from_bytes(b"[99,0,[],[]]")
    with pytest.raises(ValueError, match="format"):
        Sketch.from_bytes(b"\x07" + sketch.to_bytes()[1:])
    with pytest.raises(ValueError, match="length"):
        Sketch.from_bytes(sketch.to_bytes()[:-1])


def test_sketches_of_the_first_format_are_still_read() -> None:
    """Format 1 (JSON) rows written by the first release merge with format 2 ones."""
    old = orjson.dumps([1, 2, [10, 3, 12, 1], [5, 4]])
    assert Sketch.from_bytes(old) == Sketch(positive={10: 3, 12: 1}, negative={5: 4}, zero=2)
    new = Sketch(positive={10: 1, 11: 2}, zero=1)
    merged = Sketch.merge_all([old, new.to_bytes()])
    assert merged == Sketch(positive={10: 4, 11: 2, 12: 1}, negative={5: 4}, zero=3)


def test_merge_all_equals_merging_one_by_one() -> None:
    rng = random.Random(3)
    parts = []
    for _ in range(30):
        part = Sketch()
        for _ in range(rng.randrange(0, 200)):
            part.add(rng.choice([0.0, rng.lognormvariate(2, 2), -rng.lognormvariate(1, 1)]))
        parts.append(part)
    expected = Sketch()
    for part in parts:
        expected.merge(Sketch.from_bytes(part.to_bytes()))
    merged = Sketch.merge_all(part.to_bytes() for part in parts)
    assert merged == expected and merged.count == sum(part.count for part in parts)
    assert Sketch.merge_all([]) == Sketch()
    with pytest.raises(ValueError, match="format"):
        Sketch.merge_all([b"[99,0,[],[]]"])


def test_sketch_of_an_array_equals_adding_each_value() -> None:
    rng = random.Random(11)
    values = [0.0, 1e-320, -1e-320, 1.0, -1.0, 1e300, -1e300, 2.0**-20]
    values += [rng.lognormvariate(0, 5) * rng.choice([1, -1]) for _ in range(20_000)]
    values += [float(i) / 7 for i in range(-500, 500)]
    one_by_one = Sketch()
    for value in values:
        one_by_one.add(value)
    assert Sketch.of_values(np.array(values)) == one_by_one


@pytest.mark.parametrize("step", [HOUR, QUARTER])
def test_fold_points_equals_summing_point_by_point(step: timedelta) -> None:
    rng = random.Random(5)
    base = utc(2024, 3, 10)
    points: list[tuple[int, datetime, float]] = []
    for _ in range(3000):  # dense: one numpy pass per group
        offset = timedelta(seconds=rng.uniform(0, 3 * 3600))
        points.append((1, base + offset, rng.lognormvariate(1, 2) * rng.choice([1, -1, 0])))
    for i in range(60):  # sparse series and points on and just before step boundaries
        edge = base + step * i
        points.append((2 + i % 7, edge, float(i)))
        points.append((2 + i % 7, edge - timedelta(microseconds=1), -float(i)))
    folded = fold_points(
        np.array([s for s, _, _ in points]),
        np.array([t.timestamp() for _, t, _ in points]),
        np.array([v for _, _, v in points]),
        step.total_seconds(),
    )
    expected: dict[tuple[int, float], Summary] = {}
    for series, ts, value in points:
        key = (series, floor_utc(ts, step).timestamp())
        expected.setdefault(key, Summary(sketch=Sketch())).add(value)
    assert folded.keys() == expected.keys()
    for key, summary in expected.items():
        got = folded[key]
        assert (got.count, got.min, got.max, got.sketch) == (
            summary.count,
            summary.min,
            summary.max,
            summary.sketch,
        )
        assert got.sum == pytest.approx(summary.sum)


def test_parse_functions() -> None:
    assert parse_functions(["avg", "p95, max", "avg"]) == ["avg", "p95", "max"]
    with pytest.raises(ValueError, match="p42"):
        parse_functions(["p42"])


def test_plan_uses_hour_rollups_for_whole_hours_quarters_and_raw_for_edges() -> None:
    tz = get_zone("UTC")
    plan = plan_query(utc(2024, 1, 1, 0, 20), utc(2024, 1, 2, 5, 50), "day", tz, max_buckets=100)
    assert plan.rollup_ranges == [(utc(2024, 1, 1, 1), utc(2024, 1, 2, 5))]
    assert plan.quarter_ranges == [
        (utc(2024, 1, 1, 0, 30), utc(2024, 1, 1, 1)),
        (utc(2024, 1, 2, 5), utc(2024, 1, 2, 5, 45)),
    ]
    assert plan.raw_ranges == [
        (utc(2024, 1, 1, 0, 20), utc(2024, 1, 1, 0, 30)),
        (utc(2024, 1, 2, 5, 45), utc(2024, 1, 2, 5, 50)),
    ]
    assert len(plan.buckets) == 2


def assert_plan_covers_once_and_never_straddles(plan: QueryPlan) -> None:
    """Every part of the range is read exactly once, and no rollup row spans two buckets."""
    parts = sorted(plan.rollup_ranges + plan.quarter_ranges + plan.raw_ranges)
    assert parts[0][0] == plan.start and parts[-1][1] == plan.end
    for (_, high), (low, _) in itertools.pairwise(parts):
        assert high == low
    for ranges, step in ((plan.rollup_ranges, HOUR), (plan.quarter_ranges, QUARTER)):
        for low, high in ranges:
            cursor = low
            while cursor < high:
                index = plan.bucket_index(cursor)
                assert index is not None
                start, end = plan.buckets[index]
                assert start <= cursor and cursor + step <= end
                cursor += step


def test_plan_reads_quarter_rollups_for_hours_cut_by_half_hour_zone_boundaries() -> None:
    tz = get_zone("Asia/Kolkata")
    plan = plan_query(utc(2024, 1, 1), utc(2024, 1, 4), "day", tz, max_buckets=100)
    # Local midnight is 18:30 UTC: the 18:00 UTC hour of each day comes from quarter hours.
    assert (utc(2024, 1, 1, 18), utc(2024, 1, 1, 19)) in plan.quarter_ranges
    assert len(plan.quarter_ranges) == 3
    assert plan.raw_ranges == []
    assert_plan_covers_once_and_never_straddles(plan)


@pytest.mark.parametrize(
    "zone,unit", [("Asia/Kolkata", "hour"), ("Asia/Kathmandu", "hour"), ("Asia/Kathmandu", "week")]
)
def test_plan_of_sub_hour_offsets_reads_no_raw_points(zone: str, unit: str) -> None:
    plan = plan_query(
        utc(2024, 1, 1),
        utc(2024, 2, 1),
        unit,
        get_zone(zone),
        max_buckets=1000,  # type: ignore[arg-type]
    )
    assert plan.raw_ranges == []
    assert plan.quarter_ranges
    assert_plan_covers_once_and_never_straddles(plan)


def test_plan_reads_raw_points_where_a_boundary_cuts_a_quarter() -> None:
    # Until 1942 Asia/Kolkata (Calcutta) kept +05:53:20: local midnight cuts a quarter hour.
    plan = plan_query(
        utc(1900, 1, 1), utc(1900, 1, 4), "day", get_zone("Asia/Kolkata"), max_buckets=10
    )
    assert plan.raw_ranges
    assert all(high - low == QUARTER for low, high in plan.raw_ranges[1:-1])
    assert_plan_covers_once_and_never_straddles(plan)


def test_plan_minute_buckets_read_raw_only() -> None:
    plan = plan_query(
        utc(2024, 1, 1), utc(2024, 1, 1, 2), "minute", get_zone("UTC"), max_buckets=200
    )
    assert plan.rollup_ranges == [] and plan.quarter_ranges == []
    assert plan.raw_ranges == [(utc(2024, 1, 1), utc(2024, 1, 1, 2))]
    assert len(plan.buckets) == 120


def test_plan_refuses_too_many_buckets_and_empty_range() -> None:
    with pytest.raises(TooManyBuckets):
        plan_query(utc(2024, 1, 1), utc(2024, 2, 1), "minute", get_zone("UTC"), max_buckets=1000)
    with pytest.raises(ValueError):
        plan_query(utc(2024, 1, 1), utc(2024, 1, 1), "hour", get_zone("UTC"), max_buckets=10)


def test_bucket_results_label_in_zone_and_include_empty_buckets() -> None:
    tz = get_zone("America/New_York")
    plan = plan_query(utc(2024, 11, 3, 4), utc(2024, 11, 3, 8), "hour", tz, max_buckets=10)
    index = plan.bucket_index(utc(2024, 11, 3, 6, 10))
    assert index is not None
    rows = bucket_results(plan, {index: Summary.of([2.0, 4.0])}, ["count", "avg"], tz)
    assert [row["start"] for row in rows] == [
        "2024-11-03T00:00:00-04:00",
        "2024-11-03T01:00:00-04:00",
        "2024-11-03T01:00:00-05:00",
        "2024-11-03T02:00:00-05:00",
    ]
    assert rows[2]["count"] == 2 and rows[2]["avg"] == 3.0
    assert rows[0] == {
        "start": "2024-11-03T00:00:00-04:00",
        "end": "2024-11-03T01:00:00-04:00",
        "count": 0,
        "avg": None,
    }
    assert plan.bucket_index(utc(2024, 11, 3, 8)) is None


def test_one_pass_quantiles_match_ddsketch() -> None:
    rng = random.Random(3)
    sketch = Sketch()
    for _ in range(5000):
        sketch.add(rng.choice([-1, 1]) * rng.lognormvariate(1, 2) if rng.random() > 0.05 else 0.0)
    qs = [0.0, 0.01, 0.05, 0.5, 0.95, 0.99, 1.0]
    assert sketch.quantiles(qs) == [sketch.quantile(q) for q in qs]
    assert Sketch().quantiles([0.5]) == [None]
