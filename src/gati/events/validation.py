"""Validate decoded product events and explain failures as (field, reason) pairs."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from gati.events.schemas import (
    MAX_EVENT_ID_LENGTH,
    MAX_EVENT_TYPE_LENGTH,
    MAX_PROJECT_REF_LENGTH,
    EventIn,
)

_ADAPTER: TypeAdapter[EventIn] = TypeAdapter(EventIn)
_VALUE_ERROR_PREFIX = "Value error, "


def describe_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """Pydantic's errors as ``(field, reason)``; model-level messages name their field."""
    out: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in err.get("loc", ()))
        msg = str(err.get("msg", "invalid"))
        if msg.startswith(_VALUE_ERROR_PREFIX):
            msg = msg[len(_VALUE_ERROR_PREFIX) :]
        if err.get("type") == "extra_forbidden":
            msg = "unknown field; custom data goes in properties"
        if not loc and ": " in msg:
            loc, msg = msg.split(": ", 1)
        out.append((loc or "body", msg))
    return out


# The shape nearly every event has: these keys only, each of the type below. Such an event is
# checked here against EventIn's rules and built without pydantic's validation (its five
# Python-level validators cost ~9 µs per event, the largest step of a single-event request);
# anything else -- other keys, a timestamp or name to parse, an integer event_id, any
# violation -- goes through pydantic, which stays the authority on errors.
# tests/events/test_events_validation_fast_path.py checks that both agree.
_FAST_KEYS = frozenset({"event_type", "event_id", "properties", "project"})


def _fast(item: dict[str, Any]) -> EventIn | None:
    if not _FAST_KEYS.issuperset(item):
        return None
    event_type = item.get("event_type")
    if (
        type(event_type) is not str
        or not 0 < len(event_type) <= MAX_EVENT_TYPE_LENGTH
        or not event_type.strip()
    ):
        return None
    event_id = item.get("event_id")
    if event_id is not None and (
        type(event_id) is not str or not 0 < len(event_id) <= MAX_EVENT_ID_LENGTH
    ):
        return None
    properties = item.get("properties", _NO_PROPERTIES)
    if properties is _NO_PROPERTIES:
        properties = {}
    elif type(properties) is not dict:
        return None
    project = item.get("project")
    if project is not None and not (
        (type(project) is str and 0 < len(project) <= MAX_PROJECT_REF_LENGTH)
        or type(project) is int
    ):
        return None
    return EventIn.model_construct(
        event_type=event_type,
        name=None,
        timestamp=None,
        properties=properties,
        event_id=event_id,
        project=project,
    )


_NO_PROPERTIES: Any = object()


def validate_event(item: Any) -> EventIn | list[tuple[str, str]]:
    """The validated event, or why it is not one."""
    if not isinstance(item, dict):
        return [("body", "must be a JSON object")]
    fast = _fast(item)
    if fast is not None:
        return fast
    try:
        return _ADAPTER.validate_python(item)
    except ValidationError as exc:
        return describe_errors(exc)
