"""Product-event validation: aliases, defaults, UTC, and errors that name the field."""

from datetime import UTC, datetime

import pytest

from gati.events.schemas import EventIn
from gati.events.validation import validate_event


def _ok(item: dict) -> EventIn:
    result = validate_event(item)
    assert isinstance(result, EventIn), result
    return result


def _errors(item: object) -> dict[str, str]:
    result = validate_event(item)
    assert isinstance(result, list), result
    return dict(result)


def test_minimal_event() -> None:
    event = _ok({"event_type": "signup"})
    assert event.type == "signup"
    assert event.timestamp is None  # the service stamps the receipt time
    assert event.properties == {}
    assert event.event_id is None and event.project is None


def test_name_alias() -> None:
    assert _ok({"name": "signup"}).type == "signup"
    assert _ok({"name": "signup", "event_type": "signup"}).type == "signup"
    assert "name" in _errors({"name": "a", "event_type": "b"})


def test_full_event() -> None:
    event = _ok(
        {
            "event_type": "purchase",
            "timestamp": "2024-01-15T14:00:00+02:00",
            "properties": {"plan": "pro", "amount": 12.5, "items": [1, 2]},
            "event_id": "evt-1",
            "project": "shop",
        }
    )
    assert event.timestamp == datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
    assert event.timestamp.tzinfo is UTC
    assert event.properties["items"] == [1, 2]
    assert event.event_id == "evt-1" and event.project == "shop"


def test_naive_timestamp_is_utc_and_unix_seconds_work() -> None:
    assert _ok({"name": "a", "timestamp": "2024-01-15T12:00:00"}).timestamp == datetime(
        2024, 1, 15, 12, tzinfo=UTC
    )
    assert _ok({"name": "a", "timestamp": 1705320000}).timestamp == datetime(
        2024, 1, 15, 12, tzinfo=UTC
    )


def test_integer_event_id_and_project_id() -> None:
    event = _ok({"name": "a", "event_id": 17, "project": 3})
    assert event.event_id == "17" and event.project == 3


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({}, "event_type"),
        ({"properties": {}}, "event_type"),
        ({"event_type": ""}, "event_type"),
        ({"event_type": "   "}, "event_type"),
        ({"event_type": "x" * 201}, "event_type"),
        ({"event_type": 5}, "event_type"),
        ({"event_type": "a", "timestamp": "yesterday"}, "timestamp"),
        ({"event_type": "a", "properties": [1]}, "properties"),
        ({"event_type": "a", "properties": "x"}, "properties"),
        ({"event_type": "a", "event_id": ""}, "event_id"),
        ({"event_type": "a", "event_id": "x" * 201}, "event_id"),
        ({"event_type": "a", "event_id": True}, "event_id"),
        ({"event_type": "a", "project": ""}, "project"),
        ({"event_type": "a", "project_key": "p", "message": "m"}, "project_key"),
        ({"event_type": "a", "user": "x"}, "user"),
    ],
)
def test_errors_name_the_field(item: dict, field: str) -> None:
    errors = _errors(item)
    assert field in errors, errors


def test_unknown_field_reason() -> None:
    assert "properties" in _errors({"event_type": "a", "plan": "pro"})["plan"]


def test_not_an_object() -> None:
    assert _errors([1]) == {"body": "must be a JSON object"}
