"""Trace event validation (hand-written for speed: 10,000 items per request) and response models."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
import orjson
from pydantic import AfterValidator, BaseModel

from gati.db.types import checked_utc
from gati.ids import uuid_str
from gati.ingest.batch import ItemError
from gati.ingest.depth import deeper_than
from gati.ingest.nul import NUL_REASON, nul_field
from gati.tracing.bounds import (
    BOUNDED_KEYS,
    MAX_COST,
    MAX_DATA_DEPTH,
    MAX_LATENCY_MS,
    MAX_TIMESTAMP,
    MAX_TOKENS,
    MIN_TIMESTAMP,
    TIMESTAMP_RANGE,
    in_time_range,
)

MAX_ID_LENGTH = 128
MAX_NAME_LENGTH = 200
MAX_TYPE_LENGTH = 100

END_EVENT_TYPES = frozenset({"agent_end", "run_end"})
ERROR_EVENT_TYPES = frozenset({"error", "agent_error", "run_error"})
ERROR_STATUSES = frozenset({"error", "failed", "failure"})

_NUMBER_TYPES = frozenset({int, float})  # not bool
_MIN_YEAR, _MAX_YEAR = MIN_TIMESTAMP.year, MAX_TIMESTAMP.year


@dataclass(slots=True)
class TraceEventIn:
    """One validated event of ``POST /api/events`` with the fields Gati indexes pulled out of ``data``.

    ``data`` is the event's ``data`` object, or None when the fast path kept it as the JSON text
    of the request (``data_json``): then nothing decodes it unless an enricher needs the dict
    (:func:`event_data`), and it is stored as sent.
    """

    event_id: str
    run_id: str
    agent_name: str
    event_type: str
    timestamp: datetime
    data: dict[str, Any] | None
    parent_id: str | None = None
    latency_ms: float | None = None
    cost: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    model: str | None = None
    environment: str | None = None
    run_metadata: dict[str, Any] | None = None
    is_error: bool = False
    is_end: bool = False
    data_json: str | None = None
    # ``data`` has a "cost" key and no "cost_source" key (pricing marks such a cost as the client's).
    cost_unmarked: bool = False


def event_data(event: TraceEventIn) -> dict[str, Any]:
    """The event's ``data`` as a dict (decoded from ``data_json`` the first time it is needed)."""
    if event.data is None:
        event.data = orjson.loads(event.data_json or "{}")
        event.data_json = None
    return event.data


def event_data_text(event: TraceEventIn) -> str:
    """The JSON text of the event's ``data``, as stored."""
    if event.data_json is not None:
        return event.data_json
    return orjson.dumps(event.data).decode()


@functools.lru_cache(maxsize=64)
def _json_pair(key: str, value: str) -> str:
    return orjson.dumps({key: value}).decode()[1:-1]


def set_data_key(event: TraceEventIn, key: str, value: str) -> None:
    """Add a key that ``data`` does not have, without decoding ``data_json``."""
    if event.data is None and event.data_json is not None and event.data_json.endswith("}"):
        body = event.data_json[:-1].rstrip()
        separator = "" if body.endswith("{") else ","
        event.data_json = f"{body}{separator}{_json_pair(key, value)}}}"
    else:
        event_data(event)[key] = value


@dataclass(slots=True)
class Validated:
    events: list[TraceEventIn] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)


class TimestampOutOfRange(ValueError):
    """A well-formed timestamp outside ``TIMESTAMP_RANGE``."""


def parse_timestamp(value: Any) -> datetime:
    """ISO 8601 (``Z`` or offset; naive = UTC) or a Unix epoch in seconds or milliseconds, in
    ``TIMESTAMP_RANGE`` (else :class:`TimestampOutOfRange`; other ``ValueError``: malformed)."""
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        else:
            try:
                parsed = parsed.astimezone(UTC)
            except OverflowError as exc:  # e.g. 9999-12-31T23:59:59-12:00 is in year 10000
                raise TimestampOutOfRange(f"{value!r} is out of range") from exc
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value
        try:
            parsed = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise TimestampOutOfRange(f"{value!r} is out of range") from exc
    else:
        raise ValueError("must be an ISO 8601 string or a Unix timestamp")
    if not in_time_range(parsed):
        raise TimestampOutOfRange(f"{value!r} is out of range")
    return parsed


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def number_errors(data: dict[str, Any], index: int) -> list[ItemError]:
    """A per-item error for each bounded key of ``data`` holding a number out of its range."""
    errors: list[ItemError] = []
    for key, (high, what) in BOUNDED_KEYS.items():
        value: Any = data.get(key)
        if type(value) in _NUMBER_TYPES and not 0 <= value <= high:
            shown = f"{high:.0f}" if isinstance(high, float) and high.is_integer() else high
            errors.append(
                ItemError(
                    index, f"data.{key}", f"must be {what} from 0 to {shown}, got {_show(value)}"
                )
            )
    return errors


def data_too_deep(data: dict[str, Any]) -> bool:
    """``data`` (a decoded object) nested deeper than ``MAX_DATA_DEPTH``: orjson writes it (in C)
    and a text with few brackets cannot be deep; only the rest is walked."""
    try:
        text = orjson.dumps(data)
    except TypeError:  # deeper than orjson writes (or not JSON at all): walk it
        return deeper_than(data, MAX_DATA_DEPTH)
    if text.count(b"{") + text.count(b"[") <= MAX_DATA_DEPTH:
        return False
    return deeper_than(data, MAX_DATA_DEPTH)


# A JSON text this short cannot nest deeper than MAX_DATA_DEPTH (each level takes 2 brackets).
_SHALLOW_CHARS = 2 * MAX_DATA_DEPTH + 1


def _data_text_too_deep(text: str) -> bool:
    """The fast path's check of ``data`` kept as JSON text: True when it is (or may be) nested
    deeper than ``MAX_DATA_DEPTH`` — the item-by-item path then decides. Callers first rule out
    texts too short, or with too few brackets, to nest that deep."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return True
    return deeper_than(value, MAX_DATA_DEPTH)


DEPTH_REASON = f"is nested deeper than {MAX_DATA_DEPTH} levels"


def _text(
    raw: dict[str, Any], key: str, index: int, limit: int, errors: list[ItemError]
) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        errors.append(ItemError(index, key, "is required"))
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "event_type":
        value = str(value)
    if not isinstance(value, str):
        errors.append(ItemError(index, key, f"must be a string, got {type(value).__name__}"))
        return None
    if len(value) > limit:
        errors.append(ItemError(index, key, f"is longer than {limit} characters"))
        return None
    return value


def validate_event(
    raw: Any, index: int, now: datetime, *, check_nul: bool = True
) -> TraceEventIn | list[ItemError]:
    if not isinstance(raw, dict):
        return [ItemError(index, "", f"each event must be a JSON object, got {type(raw).__name__}")]
    errors: list[ItemError] = []
    event_type = _text(raw, "event_type", index, MAX_TYPE_LENGTH, errors)
    run_id = _text(raw, "run_id", index, MAX_ID_LENGTH, errors)
    agent_name = _text(raw, "agent_name", index, MAX_NAME_LENGTH, errors)
    event_id = raw.get("event_id")
    if event_id is None or event_id == "":
        event_id = uuid_str()
    elif not isinstance(event_id, str) or len(event_id) > MAX_ID_LENGTH:
        errors.append(
            ItemError(index, "event_id", f"must be a string of at most {MAX_ID_LENGTH} characters")
        )
    ts_raw = raw.get("timestamp")
    timestamp = now
    if ts_raw is not None:
        try:
            timestamp = parse_timestamp(ts_raw)
        except TimestampOutOfRange:
            errors.append(
                ItemError(index, "timestamp", f"is out of range: must be {TIMESTAMP_RANGE}")
            )
        except (ValueError, TypeError, OverflowError, OSError) as exc:
            errors.append(ItemError(index, "timestamp", f"is not a valid timestamp ({exc})"))
    data = raw.get("data")
    fields = _NO_FIELDS
    if data is None:
        data = {}
    elif not isinstance(data, dict):
        errors.append(ItemError(index, "data", f"must be a JSON object, got {type(data).__name__}"))
    elif data:
        if data_too_deep(data):
            errors.append(ItemError(index, "data", DEPTH_REASON))
        else:
            try:
                fields = msgspec.convert(data, _DataFields)
            except msgspec.ValidationError as exc:  # a bounded number out of its range
                errors.extend(number_errors(data, index) or [ItemError(index, "data", str(exc))])
    if not errors and check_nul:
        where = nul_field(raw)  # walks with a stack of its own: any depth is fine
        if where is not None:
            errors.append(ItemError(index, where, NUL_REASON))
    if errors:
        return errors
    assert event_type is not None and run_id is not None and agent_name is not None
    return _event(
        str(event_id),
        run_id,
        agent_name,
        event_type,
        timestamp,
        fields,
        raw.get("environment"),
        data,
    )


# A bounded key of ``data``: a number in its range, or any other JSON value (ignored). msgspec
# checks the range in C on both paths (decode on the fast path, convert item by item).
_NotANumber = str | bool | None | list[Any] | dict[str, Any]
_Tokens = (
    Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKENS)]
    | Annotated[float, msgspec.Meta(ge=0, le=MAX_TOKENS)]
    | _NotANumber
)
_Latency = (
    Annotated[int, msgspec.Meta(ge=0, le=MAX_LATENCY_MS)]
    | Annotated[float, msgspec.Meta(ge=0, le=MAX_LATENCY_MS)]
    | _NotANumber
)
_Cost = (
    Annotated[int, msgspec.Meta(ge=0, le=int(MAX_COST))]
    | Annotated[float, msgspec.Meta(ge=0, le=MAX_COST)]
    | _NotANumber
)


class _DataFields(msgspec.Struct):
    """The keys of ``data`` that Gati reads (any others are skipped, in C, when decoding)."""

    parent_run_id: Any = None
    parent_event_id: Any = None
    status: Any = None
    environment: Any = None
    run_metadata: Any = None
    metadata: Any = None
    model: Any = None
    latency_ms: _Latency = None
    duration_ms: _Latency = None
    cost: _Cost | msgspec.UnsetType = msgspec.UNSET
    total_cost: _Cost = None
    tokens_in: _Tokens = None
    input_tokens: _Tokens = None
    prompt_tokens: _Tokens = None
    tokens_out: _Tokens = None
    output_tokens: _Tokens = None
    completion_tokens: _Tokens = None
    # Read by pricing only: bounded like the others.
    tokens_cache_read: _Tokens = None
    cache_read_tokens: _Tokens = None
    cached_tokens: _Tokens = None
    tokens_cache_creation: _Tokens = None
    cache_creation_tokens: _Tokens = None
    cache_write_tokens: _Tokens = None
    tokens_reasoning: _Tokens = None
    reasoning_tokens: _Tokens = None
    cost_source: Any = msgspec.UNSET


_DECODE_FIELDS = msgspec.json.Decoder(_DataFields)
_NO_FIELDS = _DataFields()


def _num(value: Any, *more: Any) -> float | None:
    """The first value that is a JSON number, as a float."""
    if type(value) in _NUMBER_TYPES:
        return float(value)
    for value in more:
        if type(value) in _NUMBER_TYPES:
            return float(value)
    return None


def _event(
    event_id: str,
    run_id: str,
    agent_name: str,
    event_type: str,
    timestamp: datetime,
    f: _DataFields,
    top_environment: Any,
    data: dict[str, Any] | None,
    data_json: str | None = None,
) -> TraceEventIn:
    """A valid event with the fields Gati indexes pulled out of ``data`` (both validation paths:
    ``f`` holds the keys of ``data`` that matter, ``data`` or ``data_json`` the whole object)."""
    parent = f.parent_run_id or f.parent_event_id
    parent_id = str(parent)[:MAX_ID_LENGTH] if parent not in (None, "") else None
    if parent_id == event_id:
        parent_id = None  # an event cannot be its own parent
    status = f.status
    is_error = event_type in ERROR_EVENT_TYPES or (
        isinstance(status, str) and status.lower() in ERROR_STATUSES
    )
    environment = f.environment or top_environment
    metadata = f.run_metadata
    if metadata is None and event_type == "agent_start":
        metadata = f.metadata
    model = f.model
    tokens_in = _num(f.tokens_in, f.input_tokens, f.prompt_tokens)
    tokens_out = _num(f.tokens_out, f.output_tokens, f.completion_tokens)
    cost = f.cost
    return TraceEventIn(  # positional: this runs for every event of every batch
        event_id,
        run_id,
        agent_name,
        event_type,
        timestamp,
        data,
        parent_id,
        _num(f.latency_ms, f.duration_ms),
        _num(cost, f.total_cost),
        int(tokens_in) if tokens_in is not None else None,
        int(tokens_out) if tokens_out is not None else None,
        str(model)[:MAX_NAME_LENGTH] if model is not None and model != "" else None,
        str(environment)[:100] if isinstance(environment, (str, int)) else None,
        metadata if isinstance(metadata, dict) else None,
        is_error,
        event_type in END_EVENT_TYPES,
        data_json,
        cost is not msgspec.UNSET and f.cost_source is msgspec.UNSET,
    )


_EMPTY_DATA = msgspec.Raw(b"{}")
_NULL_DATA = msgspec.Raw(b"null")


# Fast path: a batch whose every event is well-formed is decoded and type-checked by msgspec (in C)
# straight from the request bytes; anything unusual (a wrong type, a missing field, numbers as ids,
# an empty or oversized string) returns None and the batch goes through ``validate_event`` one item
# at a time, which names each problem. Both paths build events with ``_event``.
class _FastEvent(msgspec.Struct):
    event_type: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TYPE_LENGTH)]
    run_id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
    agent_name: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_LENGTH)]
    # RFC 3339 strings are parsed in C; other ISO 8601 forms fail here and take the slow path.
    timestamp: datetime | float | None = None
    # Kept as the request's JSON text: decoded once more only for the keys in _DataFields.
    data: msgspec.Raw = _EMPTY_DATA
    event_id: Annotated[str, msgspec.Meta(max_length=MAX_ID_LENGTH)] | None = None
    environment: Any = None


class _FastBatch(msgspec.Struct):
    events: list[_FastEvent]


_DECODE_BATCH = msgspec.json.Decoder(_FastBatch)
_DECODE_LIST = msgspec.json.Decoder(list[_FastEvent])


class NotWellFormed(Exception):
    """An event of a batch the fast path started on is not well-formed: the caller gives up the
    fast path (and what it wrote) and takes the item-by-item one."""


_FAST_ERRORS = (msgspec.DecodeError, ValueError, OverflowError, OSError, RecursionError)
# msgspec.ValidationError is a DecodeError; OverflowError, OSError: epoch timestamps;
# RecursionError: msgspec reading JSON nested ~1,000 levels deep.


def fast_items(body: bytes) -> list[_FastEvent] | None:
    """The events of a batch, decoded and type-checked in one msgspec call; None when the batch
    must take the item-by-item path (a wrong type anywhere, no events, maybe a NUL character)."""
    if b"\\u0000" in body or b"\x00" in body:
        return None  # maybe a NUL character: the slow path finds which events have one
    try:
        if body.lstrip()[:1] == b"[":
            items = _DECODE_LIST.decode(body)
        else:
            items = _DECODE_BATCH.decode(body).events
    except _FAST_ERRORS:
        return None
    return items or None


def fast_events(items: Sequence[_FastEvent], now: datetime) -> Iterator[TraceEventIn]:
    """The events of :func:`fast_items`, validated one at a time as they are consumed (so that a
    COPY can send the first while the rest are checked); :class:`NotWellFormed` at the first
    that needs the item-by-item path."""
    decode_fields = _DECODE_FIELDS.decode
    for e in items:
        try:
            ts = e.timestamp
            if ts is None:
                timestamp = now
            elif isinstance(ts, float):
                timestamp = parse_timestamp(ts)  # out of range: a ValueError
            else:
                tz = ts.tzinfo
                timestamp = (
                    ts
                    if tz is UTC
                    else ts.replace(tzinfo=UTC)
                    if tz is None
                    else ts.astimezone(UTC)
                )
                if not _MIN_YEAR <= timestamp.year < _MAX_YEAR:  # in_time_range, inline
                    raise NotWellFormed
            raw = e.data
            if raw == _NULL_DATA:
                raw = _EMPTY_DATA
            text = str(raw, "utf-8")  # UnicodeDecodeError (a ValueError): slow path
            if (  # nested too deep, or maybe: the slow path decides (inline: the common case)
                len(text) > _SHALLOW_CHARS
                and text.count("{") + text.count("[") > MAX_DATA_DEPTH
                and _data_text_too_deep(text)
            ):
                raise NotWellFormed
            event = _event(
                e.event_id or uuid_str(),
                e.run_id,
                e.agent_name,
                e.event_type,
                timestamp,
                decode_fields(raw),  # fails (slow path) unless data is an object in bounds
                e.environment,
                None,
                text,
            )
        except _FAST_ERRORS as exc:
            raise NotWellFormed from exc
        yield event


# A datetime query parameter or body field, converted to UTC (naive = UTC); one that is not a
# date in UTC (9999-12-31T23:59:59-12:00) is a 422 naming it, not an OverflowError in a query.
UtcDatetime = Annotated[datetime, AfterValidator(checked_utc)]


class IngestResponse(BaseModel):
    status: str
    message: str
    count: int
    failed: int
    duplicates: int = 0
    errors: list[dict[str, Any]] = []


class AgentRead(BaseModel):
    name: str
    description: str | None
    created_at: datetime
    project_id: int


class AgentDetail(AgentRead):
    total_runs: int
    total_events: int
    total_cost: float
    avg_cost: float
    tokens_in: int
    tokens_out: int


class RunRead(BaseModel):
    run_id: str
    agent_name: str
    environment: str | None
    status: str
    total_duration_ms: float
    total_cost: float
    tokens_in: int
    tokens_out: int
    event_count: int
    error_count: int
    started_at: datetime
    ended_at: datetime
    run_metadata: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    project_id: int


class RunPage(BaseModel):
    agent_name: str
    runs: list[RunRead]
    total: int
    limit: int
    offset: int
    has_more: bool


class EventRead(BaseModel):
    event_id: str
    run_id: str
    agent_name: str
    event_type: str
    timestamp: datetime
    parent_run_id: str | None
    latency_ms: float | None
    cost: float | None
    tokens_in: int | None
    tokens_out: int | None
    model: str | None
    data: dict[str, Any]
