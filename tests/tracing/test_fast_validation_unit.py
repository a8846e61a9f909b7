"""The msgspec fast path of POST /api/events agrees with the item-by-item validator."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from gati.ingest.batch import ItemError
from gati.ingest.nul import NUL_REASON
from gati.tracing import pricing
from gati.tracing.bounds import BOUNDED_KEYS, MAX_DATA_DEPTH, TIMESTAMP_RANGE, TOKEN_KEYS
from gati.tracing.schemas import (
    NotWellFormed,
    TraceEventIn,
    event_data,
    event_data_text,
    fast_events,
    fast_items,
    set_data_key,
    validate_event,
)
from gati.tracing.service import validate_batch

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def fast_validate(body: bytes, now: datetime) -> list[TraceEventIn] | None:
    """Every event of a well-formed batch by the fast path, or None (the item-by-item path)."""
    items = fast_items(body)
    if items is None:
        return None
    try:
        return list(fast_events(items, now))
    except NotWellFormed:
        return None


def _event(**over: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "e-1",
        "event_type": "llm_call",
        "run_id": "run-1",
        "agent_name": "planner",
        "timestamp": "2026-11-20T10:00:00Z",
        "data": {
            "model": "gpt-4o",
            "tokens_in": 12,
            "prompt_tokens": 99,
            "cost": 0.5,
            "latency_ms": 120,
            "parent_run_id": "root",
            "status": "FAILED",
            "environment": "prod",
            "run_metadata": {"k": 1},
            "nested": {"a": [1, 2, {"b": None}]},
        },
    }
    event.update(over)
    return event


VALID = [
    _event(),
    _event(event_id=None, timestamp=None),  # server-side id and time
    _event(timestamp=1763632800123),  # epoch milliseconds
    _event(timestamp=1763632800.5),  # epoch seconds
    _event(timestamp="2026-11-20T10:00:00+02:00"),
    _event(data=None),
    _event(event_type="agent_start", data={"metadata": {"user": "u"}}, environment="staging"),
    _event(event_type="agent_end", data={"parent_event_id": "e-1"}),  # own parent: dropped
    _event(timestamp="2026-11-20T10:00:00"),  # naive = UTC
    _event(timestamp="2026-11-20T10:00:00.123456-05:30"),
    _event(data={}),
    _event(data={"cost": 1, "cost_source": "estimate", "total_cost": 3}),
    _event(data={"total_cost": 2, "input_tokens": 5.7, "completion_tokens": True}),
    _event(data={"cost": None, "model": "", "parent_run_id": "", "parent_event_id": 42}),
    _event(data={"model": {"id": 1}, "status": ["failed"], "environment": 7}),
    _event(data={"metadata": {"a": 1}, "duration_ms": 5}, event_type="agent_start"),
]


@pytest.mark.parametrize("shape", ["object", "array"])
def test_well_formed_batches_match_the_item_by_item_validator(shape: str) -> None:
    body = orjson.dumps(VALID if shape == "array" else {"events": VALID})
    fast = fast_validate(body, NOW)
    assert fast is not None
    slow = [validate_event(raw, i, NOW) for i, raw in enumerate(VALID)]
    assert len(fast) == len(slow)
    for got, want in zip(fast, slow, strict=True):
        assert not isinstance(want, list)
        g, w = asdict(got), asdict(want)
        # The fast path keeps data as the request's JSON text; the slow path has the dict.
        assert g.pop("data") is None and w.pop("data_json") is None
        assert orjson.loads(g.pop("data_json")) == w.pop("data")
        if VALID[fast.index(got)]["event_id"] is None:  # both generate a fresh UUID
            assert len(g.pop("event_id")) == len(w.pop("event_id")) == 36
        assert g == w


@pytest.mark.parametrize(
    "bad",
    [
        _event(event_type=""),
        _event(run_id=7),  # numbers as ids are accepted, but by the slow path
        _event(agent_name=None),
        _event(event_type=5),
        _event(timestamp="yesterday"),
        _event(timestamp=True),
        _event(data=[1, 2]),
        _event(event_id="x" * 129),
        _event(agent_name="a" * 201),
        "not an object",
    ],
)
def test_anything_unusual_takes_the_item_by_item_path(bad: Any) -> None:
    assert fast_validate(orjson.dumps({"events": [_event(), bad]}), NOW) is None


@pytest.mark.parametrize(
    "body", [b"", b"{", b"{}", b'{"events": []}', b"[]", b'{"events": {}}', b"null", b"42"]
)
def test_malformed_bodies_take_the_item_by_item_path(body: bytes) -> None:
    assert fast_validate(body, NOW) is None


def test_data_is_kept_as_sent_and_decoded_only_on_demand() -> None:
    body = b'{"events": [{"event_type": "llm_call", "run_id": "r", "agent_name": "a", "data": { "cost" : 0.25 , "x": [1, 2] } }]}'
    (event,) = fast_validate(body, NOW) or []
    assert event.data_json == '{ "cost" : 0.25 , "x": [1, 2] }'
    assert event.cost == 0.25 and event.cost_unmarked
    assert event_data_text(event) == '{ "cost" : 0.25 , "x": [1, 2] }'
    set_data_key(event, "cost_source", "client")
    assert event.data is None  # still not decoded
    assert orjson.loads(event_data_text(event)) == {
        "cost": 0.25,
        "x": [1, 2],
        "cost_source": "client",
    }
    assert event_data(event) == {"cost": 0.25, "x": [1, 2], "cost_source": "client"}
    assert event.data_json is None  # the dict is now the one copy
    set_data_key(event, "k", "v")
    assert orjson.loads(event_data_text(event))["k"] == "v"


@pytest.mark.parametrize("data", [b"{}", b"{ }", b"null"])
def test_a_key_added_to_empty_data_makes_valid_json(data: bytes) -> None:
    body = b'[{"event_type": "t", "run_id": "r", "agent_name": "a", "data": ' + data + b"}]"
    (event,) = fast_validate(body, NOW) or []
    set_data_key(event, "k", "v")
    assert orjson.loads(event_data_text(event)) == {"k": "v"}


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"a": "x\x00y"}, "data.a"),
        ({"a\x00": 1}, "data.a\\u0000"),
        ({"a": [1, {"b": ["\x00"]}]}, "data.a[1].b[0]"),
        ({"a": "a\\u0000b"}, None),  # a backslash, then "u0000": plain text
        ({"a": "clean", "n": None, "f": 1.5, "l": [True]}, None),
        ({"a": 2**70, "b": "\x00"}, "data.b"),  # not serialisable by orjson: walked instead
        ({"a": 2**70, "b": "clean"}, None),
        ({"a": 2**70, "b": ("x", "\x00")}, "data.b[1]"),  # tuples too (built in Python, by OTLP)
    ],
)
def test_nul_characters_are_found_anywhere_and_named(value: Any, field: str | None) -> None:
    result = validate_event({**_event(), "data": value}, 0, NOW)
    if field is None:
        assert not isinstance(result, list)
    else:
        assert result == [ItemError(0, field, NUL_REASON)]


# --- bounds: both paths refuse (fast: None) or accept (same event) alike ---------------------


def _paths(event: dict[str, Any]) -> tuple[Any, Any]:
    """(fast path result, item-by-item result) for a request body of one event, each path
    reading the body as the endpoint does (the item-by-item path: after orjson.loads)."""
    body = json.dumps([event]).encode()  # orjson writes neither 2**64 nor 300 levels
    return fast_validate(body, NOW), validate_event(orjson.loads(body)[0], 0, NOW)


def _agree(event: dict[str, Any]) -> list[ItemError] | None:
    """Both paths give the same answer: the errors (fast path: None) or equal events."""
    fast, slow = _paths(event)
    if isinstance(slow, list):
        assert fast is None, (event, slow)
        return slow
    assert fast is not None and len(fast) == 1, (event, slow)
    got, want = asdict(fast[0]), asdict(slow)
    assert orjson.loads(got.pop("data_json")) == want.pop("data")
    assert got.pop("data") is None and want.pop("data_json") is None
    assert got == want
    return None


def _numbers() -> list[tuple[str, Any, bool]]:
    cases: list[tuple[str, Any, bool]] = []
    for key, (high, _) in BOUNDED_KEYS.items():
        top = int(high)
        cases += [
            (key, 0, True),
            (key, 0.0, True),
            (key, top, True),
            (key, float(top), True),
            (key, 12.75, True),
            (key, "1e400", True),  # not a number: ignored by the indexed fields
            (key, True, True),
            (key, -1, False),
            (key, -0.5, False),
            (key, top + 1, False),
            (key, float(top) * 2, False),
            (key, 2**63, False),
            (key, 2**64, False),
            (key, 2**70, False),
            (key, -(2**63) - 1, False),
            (key, 1e308, False),
        ]
    return cases


@pytest.mark.parametrize(("key", "value", "valid"), _numbers())
def test_bounded_numbers_agree_on_both_paths(key: str, value: Any, valid: bool) -> None:
    errors = _agree(_event(data={"model": "m", key: value}))
    if valid:
        assert errors is None
    else:
        assert errors is not None and [(e.field, e.index) for e in errors] == [(f"data.{key}", 0)]
        assert errors[0].message.startswith("must be ") and "got" in errors[0].message


def test_every_bounded_number_is_named_at_once() -> None:
    data = {key: -1 for key in BOUNDED_KEYS}
    result = validate_event(_event(data=data), 3, NOW)
    assert isinstance(result, list)
    assert [e.field for e in result] == [f"data.{key}" for key in BOUNDED_KEYS]
    assert {e.index for e in result} == {3}


def test_the_pricing_token_keys_are_all_bounded() -> None:
    assert set(BOUNDED_KEYS) >= {key for keys in TOKEN_KEYS.values() for key in keys}
    assert pricing.TOKEN_KEYS is TOKEN_KEYS


@pytest.mark.parametrize(
    ("timestamp", "valid"),
    [
        ("1970-01-01T00:00:00Z", True),
        ("1970-01-01T01:00:00+01:00", True),
        ("8999-12-31T23:59:59.999999Z", True),
        ("8999-12-31T23:59:59.999999", True),
        (0, True),
        (32503680000, True),  # 3000-01-01 in epoch seconds
        (253402300799000, False),  # 9999-12-31 in epoch milliseconds
        ("1969-12-31T23:59:59.999999Z", False),
        ("1970-01-01T00:59:59+01:00", False),
        ("9000-01-01T00:00:00Z", False),
        ("8999-12-31T23:59:59-00:01", False),
        ("0001-01-01T00:00:00Z", False),
        ("0001-01-01T00:00:00+14:00", False),
        ("9999-12-31T23:59:59-12:00", False),
        ("9999-12-31T23:59:59.999999Z", False),
        (-1, False),
        (1e20, False),
        (2**70, False),
        (-(2**70), False),
    ],
)
def test_timestamp_range_agrees_on_both_paths(timestamp: Any, valid: bool) -> None:
    errors = _agree(_event(timestamp=timestamp))
    if valid:
        assert errors is None
    else:
        assert errors == [ItemError(0, "timestamp", f"is out of range: must be {TIMESTAMP_RANGE}")]


def _nested(depth: int) -> Any:
    value: Any = 1
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


@pytest.mark.parametrize(
    ("data", "valid"),
    [
        ({"deep": _nested(MAX_DATA_DEPTH - 1)}, True),  # data itself is level 1
        ({"deep": _nested(MAX_DATA_DEPTH)}, False),
        ({"deep": _nested(300)}, False),  # deeper than orjson writes
        ({"wide": [[{"a": []}] for _ in range(500)]}, True),  # many brackets, shallow
        ({"text": "{[" * 500}, True),  # brackets inside strings do not nest
        ({"text": "{" * 300, "deep": _nested(MAX_DATA_DEPTH - 1)}, True),
    ],
)
def test_data_depth_agrees_on_both_paths(data: dict[str, Any], valid: bool) -> None:
    errors = _agree(_event(data=data))
    if valid:
        assert errors is None
    else:
        assert errors == [ItemError(0, "data", f"is nested deeper than {MAX_DATA_DEPTH} levels")]


@pytest.mark.parametrize("depth", [600, 2000, 5000])
def test_deep_bodies_take_the_item_by_item_path_without_recursion_errors(depth: int) -> None:
    deep = b'{"a":' * depth + b"1" + b"}" * depth
    event = b'{"event_type": "t", "run_id": "r", "agent_name": "a", "data": %s}' % deep
    for body in (
        b'{"events": [' + event + b"]}",
        b'{"events": [{"event_type": "t", "run_id": "r", "agent_name": "a", "x": %s}]}' % deep,
        b'{"events": [{"event_type": "t", "run_id": "r", "agent_name": "a", '
        b'"environment": %s}]}' % deep,
        deep,
        b"[" * depth + b"]" * depth,
    ):
        result = fast_validate(body, NOW)  # never raises
        if result is not None:  # msgspec skipped the deep member Gati does not read
            assert b'"x"' in body or b'"environment"' in body
            assert [e.environment for e in result] == [None]


def _deep_dict(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"k": value}
    return value


def test_item_by_item_checks_survive_members_nested_beyond_their_reach() -> None:
    """A member Gati does not read is not stored, whatever its depth; the NUL and size checks
    still look at it: past what orjson writes the size check falls back to msgspec, past the
    stack it refuses the event (the NUL check walks with a stack of its own)."""
    ok = {**_event(), "extra": _deep_dict(300)}
    assert not isinstance(validate_event(ok, 0, NOW, check_nul=True), list)
    assert validate_batch([ok], max_event_bytes=10_000).errors == []
    assert "MAX_EVENT_SIZE_MB" in validate_batch([ok], max_event_bytes=100).errors[0].message
    too_deep = {**_event(), "extra": _deep_dict(5000)}
    assert not isinstance(validate_event(too_deep, 0, NOW, check_nul=True), list)
    assert validate_batch([too_deep], max_event_bytes=10**6).errors == [
        ItemError(0, "", "event is nested too deeply to be measured")
    ]
    with_nul = {**_event(), "extra": {"k": _deep_dict(5000), "z": "\x00"}}
    assert validate_event(with_nul, 0, NOW) == [ItemError(0, "extra.z", NUL_REASON)]
