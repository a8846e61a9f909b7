"""Aggregation math: mergeable summaries, percentile sketches, and the query plan.

A *summary* of a set of values is ``count, sum, min, max`` (exact and mergeable) plus a
DDSketch (``ddsketch`` package, relative accuracy 1%) for percentiles. Summaries are what the
rollup job stores per (series, UTC hour) and what the aggregate endpoint merges with the raw
points that are not rolled up yet. See docs/decisions.md ("Metric percentiles").
"""

from __future__ import annotations

import bisect
import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

import numpy as np
import orjson
from ddsketch.ddsketch import BaseDDSketch
from ddsketch.mapping import LogarithmicMapping
from ddsketch.store import DenseStore

from gati.metrics.buckets import HOUR, QUARTER, BucketUnit, ceil_utc, iter_buckets

AggregateFunction = Literal["count", "sum", "avg", "min", "max", "p50", "p95", "p99"]
AGGREGATE_FUNCTIONS: tuple[str, ...] = get_args(AggregateFunction)
PERCENTILES: dict[str, float] = {"p50": 0.50, "p95": 0.95, "p99": 0.99}

# 1% relative accuracy: a reported p95 is within 1% of a value whose rank is exactly the 95th
# percentile. Changing it makes stored sketches unmergeable; it is a format constant.
SKETCH_RELATIVE_ACCURACY = 0.01
_MAPPING = LogarithmicMapping(SKETCH_RELATIVE_ACCURACY)


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
        """Format 2: ``_HEADER`` (format, zeros, number of positive and negative bins), then
        the positive keys (int32), their counts (int64), the negative keys and counts, all
        little-endian and sorted by key: ``merge_all`` reads them without a Python loop."""
        parts = [_HEADER.pack(_SKETCH_FORMAT, self.zero, len(self.positive), len(self.negative))]
        for bins in (self.positive, self.negative):
            keys = sorted(bins)
            parts.append(np.asarray(keys, dtype="<i4").tobytes())
            parts.append(np.asarray([bins[key] for key in keys], dtype="<i8").tobytes())
        return b"".join(parts)

    @classmethod
    def of_values(cls, values: np.ndarray) -> Sketch:
        """The sketch of an array of values, keys computed in numpy as ``ddsketch``'s
        ``LogarithmicMapping.key`` computes them (``ceil(log2(v) * multiplier) + offset``)."""
        positive = values[values > _MAPPING.min_possible]
        negative = -values[values < -_MAPPING.min_possible]
        return cls(
            positive=_key_counts(positive),
            negative=_key_counts(negative),
            zero=len(values) - len(positive) - len(negative),
        )

    @classmethod
    def merge_all(cls, encoded: Iterable[bytes]) -> Sketch:
        """One sketch of many encoded ones (``to_bytes``), merged in one vectorised pass."""
        zero = 0
        arrays: tuple[list[np.ndarray], ...] = ([], [], [], [])
        for data in encoded:
            zeros, *bins = _decode(data)
            zero += zeros
            for target, array in zip(arrays, bins, strict=True):
                target.append(array)
        return cls(
            positive=_sum_bins(arrays[0], arrays[1]),
            negative=_sum_bins(arrays[2], arrays[3]),
            zero=zero,
        )

    @classmethod
    def from_bytes(cls, data: bytes | None) -> Sketch:
        if not data:
            return cls()
        zero, positive_keys, positive_counts, negative_keys, negative_counts = _decode(data)
        return cls(
            positive=dict(zip(positive_keys.tolist(), positive_counts.tolist(), strict=True)),
            negative=dict(zip(negative_keys.tolist(), negative_counts.tolist(), strict=True)),
            zero=zero,
        )


# Format 1 (the first release) was JSON: ``[1, zeros, [key, count, ...], [key, count, ...]]``;
# rows in that format are still read. Format 2 is binary (``Sketch.to_bytes``).
_SKETCH_FORMAT = 2
_HEADER = struct.Struct("<BqII")


def _decode(data: bytes) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(zeros, positive keys, positive counts, negative keys, negative counts) of an encoded
    sketch; ``ValueError`` for an unknown format or a length that does not match."""
    if data[:1] == b"[":
        version, zero, positive, negative = orjson.loads(data)
        if version != 1:
            raise ValueError(f"unknown sketch format {version}")
        pos = np.asarray(positive, dtype=np.int64).reshape(-1, 2)
        neg = np.asarray(negative, dtype=np.int64).reshape(-1, 2)
        return zero, pos[:, 0], pos[:, 1], neg[:, 0], neg[:, 1]
    if data[:1] != bytes([_SKETCH_FORMAT]) or len(data) < _HEADER.size:
        raise ValueError(f"unknown sketch format {data[:1]!r}")
    _, zero, n_positive, n_negative = _HEADER.unpack_from(data)
    if len(data) != _HEADER.size + 12 * (n_positive + n_negative):
        raise ValueError("corrupt sketch: its length does not match its header")
    offset = _HEADER.size
    arrays: list[np.ndarray] = []
    for count in (n_positive, n_negative):
        arrays.append(np.frombuffer(data, dtype="<i4", count=count, offset=offset))
        offset += 4 * count
        arrays.append(np.frombuffer(data, dtype="<i8", count=count, offset=offset))
        offset += 8 * count
    return zero, arrays[0], arrays[1], arrays[2], arrays[3]


_LOG2 = math.log(2)


def _key_counts(values: np.ndarray) -> dict[int, int]:
    if not len(values):
        return {}
    # math.log(v, 2) is log(v) / log(2): the same two steps, so the same keys.
    logs = np.log(values) / _LOG2 * _MAPPING._multiplier
    keys = (np.ceil(logs) + _MAPPING._offset).astype(np.int64)
    unique, counts = np.unique(keys, return_counts=True)
    return dict(zip(unique.tolist(), counts.tolist(), strict=True))


def _sum_bins(keys: list[np.ndarray], counts: list[np.ndarray]) -> dict[int, int]:
    """Bins of many sketches (keys repeating) -> ``{key: total count}``, in numpy: merging a
    day of hour sketches is ~6,000 bins, too many for a Python loop per bin."""
    if not keys:
        return {}
    all_keys = np.concatenate(keys).astype(np.int64)
    if not len(all_keys):
        return {}
    all_counts = np.concatenate(counts).astype(np.int64)
    order = np.argsort(all_keys, kind="stable")
    all_keys, all_counts = all_keys[order], all_counts[order]
    starts = np.flatnonzero(np.concatenate(([True], all_keys[1:] != all_keys[:-1])))
    totals = np.add.reduceat(all_counts, starts)
    return dict(zip(all_keys[starts].tolist(), totals.tolist(), strict=True))


@dataclass(slots=True)
class Summary:
    """count/sum/min/max (exact) and an optional percentile sketch of a set of values."""

    count: int = 0
    sum: float = 0.0
    min: float | None = None
    max: float | None = None
    sketch: Sketch | None = None
    # Percentiles known already (an hour rollup's stored ones): used instead of the sketch.
    quantiles: dict[str, float | None] | None = None

    @classmethod
    def of(cls, values: Iterable[float], *, with_sketch: bool = True) -> Summary:
        summary = cls(sketch=Sketch() if with_sketch else None)
        for value in values:
            summary.add(value)
        return summary

    def add(self, value: float) -> None:
        self.quantiles = None
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
        self.quantiles = None
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
        if self.quantiles is not None:
            percentiles = self.quantiles
        elif wanted and self.count and self.sketch is not None:
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


# Below this many values, a group's sketch is built value by value (numpy's fixed cost per call
# is higher than a few dict updates).
_NUMPY_GROUP_MIN = 16


def fold_points(
    series: np.ndarray, instants: np.ndarray, values: np.ndarray, step_seconds: float
) -> dict[tuple[int, float], Summary]:
    """Summaries (with sketches) of points grouped by (series id, start of their UTC step in
    epoch seconds), vectorised: the rollup job folds tens of thousands of points per chunk.

    ``instants`` are epoch seconds (``datetime.timestamp()``, exact to the microsecond); the
    floor of ``instant / step`` puts a point one microsecond before a step boundary in the
    step before it (tested)."""
    if not len(values):
        return {}
    buckets = np.floor(instants / step_seconds) * step_seconds
    order = np.lexsort((buckets, series))
    series, buckets, values = series[order], buckets[order], values[order]
    change = (series[1:] != series[:-1]) | (buckets[1:] != buckets[:-1])
    starts = np.flatnonzero(np.concatenate(([True], change)))
    ends = np.append(starts[1:], len(values))
    sums = np.add.reduceat(values, starts)
    lows = np.minimum.reduceat(values, starts)
    highs = np.maximum.reduceat(values, starts)
    out: dict[tuple[int, float], Summary] = {}
    groups = zip(
        series[starts].tolist(),
        buckets[starts].tolist(),
        starts.tolist(),
        ends.tolist(),
        sums.tolist(),
        lows.tolist(),
        highs.tolist(),
        strict=True,
    )
    for series_id, bucket, start, end, total, low, high in groups:
        chunk = values[start:end]
        if end - start < _NUMPY_GROUP_MIN:
            out[(series_id, bucket)] = Summary.of(chunk.tolist())
        else:
            sketch = Sketch.of_values(chunk)
            out[(series_id, bucket)] = Summary(end - start, total, low, high, sketch)
    return out


def needs_sketch(functions: Iterable[str]) -> bool:
    return any(name in PERCENTILES for name in functions)


def parse_functions(raw: Iterable[str]) -> list[str]:
    """``["avg", "p95,max"]`` -> ``["avg", "p95", "max"]``; ``ValueError`` names a bad one."""
    out: list[str] = []
    for item in raw:
        if not isinstance(item, str):
            raise ValueError(f"functions are names (strings), got {type(item).__name__}")
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
# Query plan: which parts of [start, end) come from hour rollups, which from quarter-hour rollups
# and which from raw points.


@dataclass(slots=True)
class QueryPlan:
    """Buckets of the answer, and how ``[start, end)`` is read.

    ``rollup_ranges``: unions of whole UTC hours that lie inside one bucket each, read from hour
    rollups. ``quarter_ranges``: unions of whole UTC quarter hours that lie inside one bucket
    each but whose hour does not (an hour cut by local midnight in Asia/Kolkata, or every hour of
    hour buckets there; the partial hours at the range edges), read from quarter-hour rollups.
    Both are merged with the raw points not rolled up yet. ``raw_ranges``: everything else
    (partial quarters at the edges, quarters cut by a bucket boundary, which only historical
    local-mean-time offsets and minute buckets do); read from raw points only.
    """

    start: datetime
    end: datetime
    buckets: list[tuple[datetime, datetime]]
    rollup_ranges: list[tuple[datetime, datetime]]
    raw_ranges: list[tuple[datetime, datetime]]
    quarter_ranges: list[tuple[datetime, datetime]] = field(default_factory=list)
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


def append_range(ranges: list[tuple[datetime, datetime]], low: datetime, high: datetime) -> None:
    """Append ``[low, high)``, extending the last range when they touch."""
    if ranges and ranges[-1][1] == low:
        ranges[-1] = (ranges[-1][0], high)
    else:
        ranges.append((low, high))


def _whole_steps(
    low: datetime, high: datetime, step: timedelta, boundaries: list[datetime]
) -> tuple[list[tuple[datetime, datetime]], list[tuple[datetime, datetime]]]:
    """Split ``[low, high)`` into unions of whole ``step`` intervals that no boundary cuts, and
    the rest (in order)."""
    whole: list[tuple[datetime, datetime]] = []
    rest: list[tuple[datetime, datetime]] = []
    cursor = low
    current = ceil_utc(low, step)
    while current + step <= high:
        cut = bisect.bisect_right(boundaries, current)
        if cut < len(boundaries) and boundaries[cut] < current + step:
            current += step  # a bucket boundary inside this step: leave it to the rest
            continue
        if cursor < current:
            append_range(rest, cursor, current)
        append_range(whole, current, current + step)
        current += step
        cursor = current
    if cursor < high:
        append_range(rest, cursor, high)
    return whole, rest


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
    if unit == "minute":  # every hour and quarter is cut by a bucket boundary
        return QueryPlan(start, end, buckets, rollup_ranges=[], raw_ranges=[(start, end)])
    boundaries = [bucket_end for _, bucket_end in buckets[:-1]]
    hours, rest = _whole_steps(start, end, HOUR, boundaries)
    quarters: list[tuple[datetime, datetime]] = []
    raw: list[tuple[datetime, datetime]] = []
    for low, high in rest:
        whole, leftover = _whole_steps(low, high, QUARTER, boundaries)
        quarters.extend(whole)
        raw.extend(leftover)
    return QueryPlan(
        start, end, buckets, rollup_ranges=hours, raw_ranges=raw, quarter_ranges=quarters
    )


def bucket_results(
    plan: QueryPlan,
    summaries: dict[int, Summary],
    functions: Sequence[str],
    tz: ZoneInfo,
) -> list[dict[str, Any]]:
    """One row per bucket in order, empty buckets included (count 0, other values null)."""
    rows: list[dict[str, Any]] = []
    empty = Summary()
    label = plan.buckets[0][0].astimezone(tz).isoformat() if plan.buckets else ""
    for index, (_, end) in enumerate(plan.buckets):
        summary = summaries.get(index, empty)
        end_label = end.astimezone(tz).isoformat()  # buckets are contiguous: the next start
        rows.append({"start": label, "end": end_label, **summary.result(functions)})
        label = end_label
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
    "fold_points",
    "needs_sketch",
    "parse_functions",
    "plan_query",
]
