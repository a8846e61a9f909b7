"""The msgspec fast path of POST /api/events agrees with the item-by-item validator."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from gati.ingest.batch import ItemError
from gati.ingest.nul import NUL_REASON
from gati.tracing.schemas import (
    event_data,
    event_data_text,
    fast_validate,
    set_data_key,
    validate_event,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


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
