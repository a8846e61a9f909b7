"""validate_event's fast path (the common shape, built without pydantic's validation) agrees
with pydantic's validation of EventIn on every input: same event, or pydantic's errors."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from gati.events import validation
from gati.events.schemas import EventIn
from gati.events.validation import validate_event

TYPES: list[Any] = ["signup", "x" * 200, "x" * 201, "", "   ", " a ", 7, None, True, ["a"]]
IDS: list[Any] = ["e-1", "x" * 200, "x" * 201, "", 12, None, True, 1.5, {"a": 1}]
PROPERTIES: list[Any] = [{"plan": "pro", "n": [1, {"x": None}]}, {}, [], "a", None, 3]
PROJECTS: list[Any] = [3, "my-project", "x" * 200, "x" * 201, "", True, None, 2.5]
_ABSENT = object()


def _bodies() -> list[dict[str, Any]]:
    bodies = []
    for event_type, event_id, properties, project in itertools.product(
        [*TYPES, _ABSENT], [*IDS, _ABSENT], [*PROPERTIES, _ABSENT], [*PROJECTS, _ABSENT]
    ):
        body = {}
        for key, value in (
            ("event_type", event_type),
            ("event_id", event_id),
            ("properties", properties),
            ("project", project),
        ):
            if value is not _ABSENT:
                body[key] = value
        bodies.append(body)
    # Shapes the fast path leaves to pydantic.
    bodies += [
        {"event_type": "a", "timestamp": "2026-01-01T00:00:00Z"},
        {"name": "a"},
        {"event_type": "a", "name": "a"},
        {"event_type": "a", "unknown": 1},
    ]
    return bodies


def _pydantic(body: dict[str, Any]) -> EventIn | list[tuple[str, str]]:
    try:
        return validation._ADAPTER.validate_python(body)
    except validation.ValidationError as exc:
        return validation.describe_errors(exc)


def test_fast_path_and_pydantic_agree_on_every_combination() -> None:
    bodies = _bodies()
    fast_used = 0
    for body in bodies:
        expected = _pydantic(body)
        got = validate_event(body)
        if validation._fast(body) is not None:
            fast_used += 1
        if isinstance(expected, list):
            assert got == expected, body
        else:
            assert isinstance(got, EventIn), body
            assert (got.type, got.event_id, got.properties, got.project, got.timestamp) == (
                expected.type,
                expected.event_id,
                expected.properties,
                expected.project,
                expected.timestamp,
            ), body
            assert type(got.project) is type(expected.project), body
    # Many combinations took the fast path, and many did not.
    assert 100 < fast_used < len(bodies) - 100


@pytest.mark.parametrize(
    "body",
    [
        {"event_type": "a", "event_id": 12},  # an integer id becomes "12": pydantic's job
        {"event_type": "a", "timestamp": 1767225600},
        {"name": "a", "properties": {}},
    ],
)
def test_shapes_left_to_pydantic_still_validate(body: dict[str, Any]) -> None:
    assert validation._fast(body) is None
    event = validate_event(body)
    assert isinstance(event, EventIn) and event.type == "a"
