"""The bounds of what one trace event may carry, and of the totals kept from many
(docs/tracing.md, "Bounds"). Shared by both validation paths of ``POST /api/events``, OTLP
decoding and pricing. Pure constants: no I/O.

An event outside them is refused with a per-item error naming the field (OTLP keeps the span
and leaves the value unused, see docs/otlp.md). A total never overflows: it stops at
``MAX_TOTAL``.
"""

from __future__ import annotations

from datetime import UTC, datetime

# One token count: the largest integer every JSON reader (JavaScript included) keeps exact.
MAX_TOKENS = 2**53 - 1
# One latency / duration: 10 years of 365.25 days, in milliseconds.
MAX_LATENCY_MS = 315_576_000_000
# One event's cost.
MAX_COST = 1e9
# Accepted timestamps: [MIN_TIMESTAMP, MAX_TIMESTAMP), UTC. PostgreSQL stores Python's first and
# last instants as -infinity / infinity, OTLP times start at the Unix epoch, and an event's end
# (timestamp + latency of at most 10 years) must still be a date.
MIN_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIMESTAMP = datetime(9000, 1, 1, tzinfo=UTC)
TIMESTAMP_RANGE = "from 1970-01-01T00:00:00Z to before 9000-01-01T00:00:00Z (UTC)"
# ``data`` (an object: level 1) nested deeper than this is refused: stored data must stay
# writable and readable by every JSON codec on the way (orjson stops at 255 levels).
MAX_DATA_DEPTH = 128
# Every total kept from many events (per run, agent and rollup bucket: tokens, events, cost,
# durations) stops here instead of overflowing its column, and so does every sum a read returns.
MAX_TOTAL = 2**53 - 1

# Keys of ``data`` read as token counts (the Gati name first, then common aliases): the indexed
# tokens_in / tokens_out, and the other counts pricing reads.
TOKEN_KEYS: dict[str, tuple[str, ...]] = {
    "input": ("tokens_in", "input_tokens", "prompt_tokens"),
    "output": ("tokens_out", "output_tokens", "completion_tokens"),
    "cache_read": ("tokens_cache_read", "cache_read_tokens", "cached_tokens"),
    "cache_write": ("tokens_cache_creation", "cache_creation_tokens", "cache_write_tokens"),
    "reasoning": ("tokens_reasoning", "reasoning_tokens"),
}
_DURATION = "a duration in milliseconds (at most 10 years)"
# Every bounded key of ``data``: its highest value (the lowest is 0) and what it is.
BOUNDED_KEYS: dict[str, tuple[float, str]] = {
    **{key: (MAX_TOKENS, "a token count") for keys in TOKEN_KEYS.values() for key in keys},
    "latency_ms": (MAX_LATENCY_MS, _DURATION),
    "duration_ms": (MAX_LATENCY_MS, _DURATION),
    "cost": (MAX_COST, "a cost"),
    "total_cost": (MAX_COST, "a cost"),
}


def in_time_range(value: datetime) -> bool:
    """Whether a UTC datetime is in [MIN_TIMESTAMP, MAX_TIMESTAMP) (the bounds are years)."""
    return MIN_TIMESTAMP.year <= value.year < MAX_TIMESTAMP.year
