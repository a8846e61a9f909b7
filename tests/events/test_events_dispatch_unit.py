"""The rule that tells a seed-004 product event from a seed-002 error report."""

import pytest

from gati.events.dispatch import EventBodyKind, classify_event_body
from gati.events.schemas import EventIn
from gati.events.validation import validate_event
from gati.exceptions import AppError

SEED_002_REPORT = {
    "project_key": "my-project",
    "message": "Error message",
    "stack": "Error: message\n    at ...",
    "method": "GET",
    "path": "/api/users/:id",
    "status_code": 500,
    "timestamp": "2024-01-15T12:00:00Z",
}


@pytest.mark.parametrize(
    "body",
    [
        SEED_002_REPORT,
        {"project_key": "p", "message": "m"},
        {"project_key": None, "message": None},  # values do not matter; errors service validates
    ],
)
def test_error_reports(body: dict) -> None:
    assert classify_event_body(body) is EventBodyKind.ERROR_REPORT


@pytest.mark.parametrize(
    "body",
    [
        {"event_type": "signup"},
        {"name": "signup"},
        {"event_type": "x", "properties": {"message": "m", "project_key": "k"}},
        {"event_type": "x", "project_key": "p", "message": "m"},
        {"name": "x", "project_key": "p", "message": "m"},
        {"message": "only a message"},
        {"project_key": "p"},
        {},
    ],
)
def test_product_events(body: dict) -> None:
    assert classify_event_body(body) is EventBodyKind.PRODUCT_EVENT


def test_mixed_shape_is_refused_naming_the_stray_field() -> None:
    result = validate_event({"event_type": "x", "project_key": "p", "message": "m"})
    assert isinstance(result, list)
    assert {field for field, _ in result} == {"project_key", "message"}


def test_seed_002_report_is_never_a_valid_product_event() -> None:
    # The two shapes are disjoint: were the rule bypassed, the report would still be refused.
    assert not isinstance(validate_event(SEED_002_REPORT), EventIn)


def test_seed_004_event_is_never_an_error_report() -> None:
    event = {"event_type": "signup", "timestamp": "2024-01-15T12:00:00Z", "properties": {}}
    assert classify_event_body(event) is EventBodyKind.PRODUCT_EVENT
    assert isinstance(validate_event(event), EventIn)


def test_array_points_to_batch() -> None:
    with pytest.raises(AppError) as info:
        classify_event_body([{"event_type": "x"}])
    assert info.value.status == 422
    assert "/api/v1/events/batch" in info.value.detail


@pytest.mark.parametrize("body", ["text", 3, None, True])
def test_not_an_object(body: object) -> None:
    with pytest.raises(AppError) as info:
        classify_event_body(body)
    assert info.value.status == 422
    assert info.value.detail.startswith("body:")
