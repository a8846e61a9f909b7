"""Aggregation math: mergeable summaries, percentile sketches, and the query plan.

A *summary* of a set of values is ``count, sum, min, max`` (exact and mergeable) plus a
DDSketch (``ddsketch`` package, relative accuracy 1%) for percentiles. Summaries are what the
rollup job stores per (series, UTC hour) and what the aggregate endpoint merges with the raw
points that are not rolled up yet. See docs/decisions.md ("Metric percentiles").
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

import orjson
from ddsketch.ddsketch import BaseDDSketch
from ddsketch.mapping import LogarithmicMapping
from ddsketch.store import DenseStore

from gati.metrics.buckets import HOUR, BucketUnit, ceil_utc, floor_utc, iter_buckets

AggregateFunction = Literal["count", "sum", "avg", "min", "max", "p50", "p95", "p99"]
AGGREGATE_FUNCTIONS: tuple[str, ...] = get_args(AggregateFunction)
PERCENTILES: dict[str, float] = {"p50": 0.50, "p95": 0.95, "p99": 0.99}

# 1% relative accuracy: a reported p95 is within 1% of a value whose rank is exactly the 95th
# percentile. Changing it makes stored sketches unmergeable; it is a format constant.
SKETCH_RELATIVE_ACCURACY = 0.01
_MAPPING = LogarithmicMapping(SKETCH_RELATIVE_ACCURACY)
_SKETCH_FORMAT = 1


@dataclass(slots=True)
class Sketch:
    """Sparse DDSketch bins: key -> count for positive and negative values, plus zeros.

    Stored sparse (only non-empty bins) so that a rollup row is small and merging is a dict sum;
    quantiles are answered by ``ddsketch`` itself from the merged bins.
    """

    positive: dict[int, int] = field(default_factory=dict)
    negative: dict[int, int] = field(default_factory=dict)
    zero: int = 0

    def add(self, value: float) -> None:
        if value > _MAPPING.min_possible:
            key = _MAPPING.key(value)
            self.positive[key] = self.positive.get(key, 0) + 1
        elif value < -_MAPPING.min_possible:
            key = _MAPPING.key(-value)
            self.negative[key] = self.negative.get(key, 0) + 1
        else:
            self.zero += 1

    def merge(self, other: Sketch) -> None:
        if not self.positive and not self.negative and not self.zero:
            # Empty: take over the bins of ``other`` (which the caller must not reuse).
            self.positive, self.negative, self.zero = other.positive, other.negative, other.zero
            return
        for target, source in ((self.positive, other.positive), (self.negative, other.negative)):
            for key, count in source.items():
                target[key] = target.get(key, 0) + count
        self.zero += other.zero

    @property
    def count(self) -> int:
        return sum(self.positive.values()) + sum(self.negative.values()) + self.zero

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """Values at ranks ``q * (count - 1)`` as ``ddsketch`` defines them (``key_at_rank``
        with ``lower=True``), in one pass over the sorted sparse bins; only the chosen bins are
        mapped back to values."""
        negatives = sum(self.negative.values())
        total = negatives + self.zero + sum(self.positive.values())
        if not total:
            return [None for _ in qs]
        wanted = sorted((q * (total - 1), index) for index, q in enumerate(qs))
        out: list[float | None] = [None] * len(qs)
        position = 0
        running = 0

        def walk(keys: Iterable[int], bins: dict[int, int], sign: float) -> None:
            nonlocal position, running
            for key in keys:
                running += bins[key]
                while position < len(wanted) and running > wanted[position][0]:
                    out[wanted[position][1]] = sign * _MAPPING.value(key)
                    position += 1
                if position == len(wanted):
                    return

        walk(sorted(self.negative, reverse=True), self.negative, -1.0)
        if position < len(wanted) and self.zero:
            running += self.zero
            while position < len(wanted) and running > wanted[position][0]:
                out[wanted[position][1]] = 0.0
                position += 1
        if position < len(wanted):
            walk(sorted(self.positive), self.positive, 1.0)
        return out

    def quantile(self, q: float) -> float | None:
        """The reference implementation: ``ddsketch`` itself (tests check ``quantiles`` against it)."""
        positive, negative = DenseStore(), DenseStore()
        for key, count in self.positive.items():
            positive.add(key, count)
        for key, count in self.negative.items():
            negative.add(key, count)
        sketch = BaseDDSketch(_MAPPING, positive, negative, float(self.zero))
        value = sketch.get_quantile_value(q)
        return None if value is None else float(value)

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            [_SKETCH_FORMAT, self.zero, _pairs(self.positive), _pairs(self.negative)]
        )

    @classmethod
    def from_bytes(cls, data: bytes | None) -> Sketch:
        if not data:
            return cls()
        version, zero, positive, negative = orjson.loads(data)
        if version != _SKETCH_FORMAT:
            raise ValueError(f"unknown sketch format {version}")
        return cls(
            positive=dict(zip(positive[::2], positive[1::2], strict=True)),
            negative=dict(zip(negative[::2], negative[1::2], strict=True)),
            zero=zero,
        )


def _pairs(bins: dict[int, int]) -> list[int]:
    flat: list[int] = []
    for key in sorted(bins):
        flat.append(key)
        flat.append(bins[key])
    return flat


@dataclass(slots=True)
class Summary:
    """count/sum/min/max (exact) and an optional percentile sketch of a set of values."""

    count: int = 0
    sum: float = 0.0
    min: float | None = None
    max: float | None = None
    sketch: Sketch | None = None

    @classmethod
    def of(cls, values: Iterable[float], *, with_sketch: bool = True) -> Summary:
        summary = cls(sketch=Sketch() if with_sketch else None)
        for value in values:
            summary.add(value)
        return summary

    def add(self, value: float) -> None:
        self.count += 1
        self.sum += value
        if self.min is None or value < self.min:
            self.min = value
        if self.max is None or value > self.max:
            self.max = value
        if self.sketch is not None:
            self.sketch.add(value)

    def merge_parts(
        self,
        count: int,
        total: float,
        minimum: float | None,
        maximum: float | None,
        sketch: Sketch | None = None,
    ) -> None:
        if not count:
            return
        self.count += count
        self.sum += total
        if minimum is not None and (self.min is None or minimum < self.min):
            self.min = minimum
        if maximum is not None and (self.max is None or maximum > self.max):
            self.max = maximum
        if self.sketch is not None and sketch is not None:
            self.sketch.merge(sketch)

    def merge(self, other: Summary) -> None:
        self.merge_parts(other.count, other.sum, other.min, other.max, other.sketch)

    def result(self, functions: Sequence[str]) -> dict[str, float | int | None]:
        wanted = [name for name in functions if name in PERCENTILES]
        percentiles: dict[str, float | None] = {}
        if wanted and self.count and self.sketch is not None:
            values = self.sketch.quantiles([PERCENTILES[name] for name in wanted])
            assert self.min is not None and self.max is not None
            for name, value in zip(wanted, values, strict=True):
                # Within 1% of the true value; never outside the exact range.
                percentiles[name] = None if value is None else min(max(value, self.min), self.max)
        out: dict[str, float | int | None] = {}
        for name in functions:
            if name == "count":
                out[name] = self.count
            elif name == "sum":
                out[name] = self.sum
            elif name == "avg":
                out[name] = self.sum / self.count if self.count else None
            elif name == "min":
                out[name] = self.min
            elif name == "max":
                out[name] = self.max
            elif name in PERCENTILES:
                out[name] = percentiles.get(name)
            else:
                raise ValueError(f"unknown aggregate function {name!r}")
        return out


def needs_sketch(functions: Iterable[str]) -> bool:
    return any(name in PERCENTILES for name in functions)


def parse_functions(raw: Iterable[str]) -> list[str]:
    """``["avg", "p95,max"]`` -> ``["avg", "p95", "max"]``; ``ValueError`` names a bad one."""
    out: list[str] = []
    for item in raw:
        for name in item.split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name not in AGGREGATE_FUNCTIONS:
                raise ValueError(
                    f"unknown function {name!r}; use one of {', '.join(AGGREGATE_FUNCTIONS)}"
                )
            if name not in out:
                out.append(name)
    return out


# --------------------------------------------------------------------------------------------
# Query plan: which parts of [start, end) come from hour rollups and which from raw points.


@dataclass(slots=True)
class QueryPlan:
    """Buckets of the answer, and how ``[start, end)`` is read.

    ``rollup_ranges``: unions of whole UTC hours that lie inside one bucket each; they are read
    from hour rollups plus the raw points not rolled up yet. ``raw_ranges``: everything else
    (partial hours at the range edges, hours cut by a local bucket boundary in zones with
    non-whole-hour offsets, and every minute bucket); read from raw points only.
    """

    start: datetime
    end: datetime
    buckets: list[tuple[datetime, datetime]]
    rollup_ranges: list[tuple[datetime, datetime]]
    raw_ranges: list[tuple[datetime, datetime]]
    _starts: list[datetime] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._starts = [start for start, _ in self.buckets]

    def bucket_index(self, instant: datetime) -> int | None:
        """Index of the bucket containing ``instant`` (None when outside the range)."""
        if instant < self.start or instant >= self.end:
            return None
        return bisect.bisect_right(self._starts, instant) - 1


class TooManyBuckets(ValueError):
    pass


def plan_query(
    start: datetime, end: datetime, unit: BucketUnit, tz: ZoneInfo, *, max_buckets: int
) -> QueryPlan:
    if end <= start:
        raise ValueError("end must be after start")
    buckets: list[tuple[datetime, datetime]] = []
    for bucket in iter_buckets(start, end, unit, tz):
        buckets.append(bucket)
        if len(buckets) > max_buckets:
            raise TooManyBuckets(
                f"the range has more than {max_buckets} {unit} buckets; "
                "use a larger bucket or a shorter range"
            )
    rollup: list[tuple[datetime, datetime]] = []
    if unit != "minute":
        split_hours = {
            floor_utc(boundary, HOUR)
            for _, boundary in buckets
            if floor_utc(boundary, HOUR) != boundary
        }
        hour = ceil_utc(start, HOUR)
        last = floor_utc(end, HOUR)
        while hour < last:
            if hour not in split_hours:
                if rollup and rollup[-1][1] == hour:
                    rollup[-1] = (rollup[-1][0], hour + HOUR)
                else:
                    rollup.append((hour, hour + HOUR))
            hour += HOUR
    raw: list[tuple[datetime, datetime]] = []
    cursor = start
    for low, high in rollup:
        if cursor < low:
            raw.append((cursor, low))
        cursor = high
    if cursor < end:
        raw.append((cursor, end))
    return QueryPlan(start=start, end=end, buckets=buckets, rollup_ranges=rollup, raw_ranges=raw)


def bucket_results(
    plan: QueryPlan,
    summaries: dict[int, Summary],
    functions: Sequence[str],
    tz: ZoneInfo,
) -> list[dict[str, Any]]:
    """One row per bucket in order, empty buckets included (count 0, other values null)."""
    rows: list[dict[str, Any]] = []
    empty = Summary()
    for index, (start, end) in enumerate(plan.buckets):
        summary = summaries.get(index, empty)
        rows.append(
            {
                "start": start.astimezone(tz).isoformat(),
                "end": end.astimezone(tz).isoformat(),
                **summary.result(functions),
            }
        )
    return rows


def exact_percentile(values: Sequence[float], q: float) -> float:
    """The value at rank ``floor(q * (n - 1))`` of the sorted values: the definition the sketch
    approximates (numpy's ``method="lower"``). Ground truth for tests and benchmarks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


__all__ = [
    "AGGREGATE_FUNCTIONS",
    "PERCENTILES",
    "QueryPlan",
    "Sketch",
    "Summary",
    "TooManyBuckets",
    "bucket_results",
    "needs_sketch",
    "parse_functions",
    "plan_query",
]
