"""Request validation and response shapes for metrics.

Ingestion validates by hand (not one pydantic model per item) so that a batch reports every bad
item with its index and field while the good ones are stored.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, Field

from gati.db.types import checked_utc
from gati.ingest.batch import ItemError
from gati.ingest.nul import NUL_REASON

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.:\-]{1,200}$")
TAG_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
MAX_TAGS = 32
MAX_TAG_VALUE = 256
MAX_CLIENT_ID = 128
# Epoch numbers above this are milliseconds (as seconds it would be the year 5138).
_EPOCH_MS_THRESHOLD = 1e11
_MIN_TS = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_TS = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class MetricPointIn:
    name: str
    value: float
    ts: datetime
    tags: dict[str, str] = field(default_factory=dict)
    client_id: str | None = None
    # Set by the service: the project the point goes to.
    project_id: int = 0

    @property
    def tags_key(self) -> str:
        return tags_key(self.tags)


MAX_ABS_VALUE = 1e300


def tags_key(tags: dict[str, str]) -> str:
    return hashlib.sha256(orjson.dumps(tags, option=orjson.OPT_SORT_KEYS)).hexdigest()


def parse_timestamp(value: Any) -> datetime:
    """ISO 8601 (naive = UTC) or a number of seconds (milliseconds above 1e11) since the epoch."""
    if isinstance(value, bool):
        raise ValueError("must be an ISO 8601 string or a number of seconds since the epoch")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("must be finite")
        seconds = value / 1000 if abs(value) >= _EPOCH_MS_THRESHOLD else value
        try:
            parsed = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError("is out of range") from exc
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"is not an ISO 8601 date-time: {value[:40]!r}") from exc
        parsed = checked_utc(parsed)
    else:
        raise ValueError("must be an ISO 8601 string or a number of seconds since the epoch")
    if not (_MIN_TS <= parsed < _MAX_TS):
        raise ValueError("is out of range")
    return parsed


def validate_tags(
    raw: Any, index: int, errors: list[ItemError], where: str = "tags"
) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors.append(ItemError(index, where, "must be an object of tag names to values"))
        return {}
    if len(raw) > MAX_TAGS:
        errors.append(ItemError(index, where, f"has more than {MAX_TAGS} tags"))
        return {}
    tags: dict[str, str] = {}
    for key, value in raw.items():
        if not TAG_KEY_PATTERN.match(key):
            errors.append(
                ItemError(
                    index, f"{where}.{key}"[:100], "tag names are 1-64 of A-Z a-z 0-9 _ . : -"
                )
            )
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str):
            text = value
        elif isinstance(value, int | float) and math.isfinite(value):
            text = str(value)
        else:
            errors.append(ItemError(index, f"{where}.{key}", "must be a string, number or boolean"))
            continue
        if len(text) > MAX_TAG_VALUE:
            errors.append(
                ItemError(index, f"{where}.{key}", f"is longer than {MAX_TAG_VALUE} characters")
            )
            continue
        if "\x00" in text:
            errors.append(ItemError(index, f"{where}.{key}", NUL_REASON))
            continue
        tags[key] = text
    return tags


def validate_point(raw: Any, index: int, now: datetime) -> MetricPointIn | list[ItemError]:
    if not isinstance(raw, dict):
        return [ItemError(index, "", f"each point must be a JSON object, got {type(raw).__name__}")]
    errors: list[ItemError] = []
    name = raw.get("name")
    if name is None:
        errors.append(ItemError(index, "name", "is required"))
    elif not isinstance(name, str) or not NAME_PATTERN.match(name):
        errors.append(ItemError(index, "name", "must be 1-200 of A-Z a-z 0-9 _ . : -"))
    value = raw.get("value")
    number = 0.0
    if value is None:
        errors.append(ItemError(index, "value", "is required"))
    elif isinstance(value, bool) or not isinstance(value, int | float):
        errors.append(ItemError(index, "value", "must be a number"))
    else:
        number = float(value)
        if not math.isfinite(number):
            errors.append(ItemError(index, "value", "must be finite"))
        elif abs(number) > MAX_ABS_VALUE:
            # Sums of a series must stay within a double: PostgreSQL refuses an overflowing
            # sum, and two points near 1.8e308 made every aggregate of their series fail.
            errors.append(ItemError(index, "value", f"must be within ±{MAX_ABS_VALUE:g}"))
    ts = now
    raw_ts = raw.get("timestamp")
    if raw_ts is not None:
        try:
            ts = parse_timestamp(raw_ts)
        except ValueError as exc:
            errors.append(ItemError(index, "timestamp", str(exc)))
    tags = validate_tags(raw.get("tags"), index, errors)
    client_id = raw.get("id")
    if client_id is not None and (
        not isinstance(client_id, str) or not 0 < len(client_id) <= MAX_CLIENT_ID
    ):
        errors.append(ItemError(index, "id", f"must be a string of 1-{MAX_CLIENT_ID} characters"))
    elif client_id is not None and "\x00" in client_id:
        errors.append(ItemError(index, "id", NUL_REASON))
    if errors:
        return errors
    assert isinstance(name, str)
    return MetricPointIn(name=name, value=number, ts=ts, tags=tags, client_id=client_id)


def parse_tag_filters(raw: list[str]) -> dict[str, str]:
    """``["env:prod", "region:eu"]`` -> ``{"env": "prod", "region": "eu"}``; ValueError names one."""
    filters: dict[str, str] = {}
    for item in raw:
        key, sep, value = item.partition(":")
        if not sep or not TAG_KEY_PATTERN.match(key):
            raise ValueError(f"tag filter {item!r} must be NAME:VALUE")
        filters[key] = value
    return filters


# ---- responses -------------------------------------------------------------------------------


class MetricPointRead(BaseModel):
    id: int
    project_id: int
    name: str
    value: float
    timestamp: datetime
    tags: dict[str, str] = Field(default_factory=dict)
    client_id: str | None = None
    received_at: datetime | None = None


class MetricIngestResult(BaseModel):
    count: int = Field(description="Points stored by this request (duplicates not included)")
    failed: int
    duplicates: int = 0
    ids: list[int | None] = Field(description="Point id per input item (null when the item failed)")
    errors: list[dict[str, Any]]


class MetricPage(BaseModel):
    items: list[MetricPointRead]
    next_cursor: str | None = None


class AggregateBucket(BaseModel):
    start: str
    end: str
    count: int | None = None
    sum: float | None = None
    avg: float | None = None
    min: float | None = None
    max: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


class AggregateResponse(BaseModel):
    name: str
    project_ids: list[int]
    bucket: str
    tz: str
    start: datetime
    end: datetime
    functions: list[str]
    tags: dict[str, str]
    percentile_relative_accuracy: float
    buckets: list[dict[str, Any]]
