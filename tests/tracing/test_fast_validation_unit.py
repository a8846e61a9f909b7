"""The msgspec fast path of POST /api/events agrees with the item-by-item validator."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from gati.tracing.schemas import fast_validate, validate_event

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
