"""Validate decoded product events and explain failures as (field, reason) pairs."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from gati.events.schemas import EventIn
from gati.ingest.depth import deeper_than
from gati.ingest.nul import NUL_REASON, nul_field

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


def validate_event(item: Any) -> EventIn | list[tuple[str, str]]:
    """The validated event, or why it is not one."""
    if not isinstance(item, dict):
        return [("body", "must be a JSON object")]
    try:
        event = _ADAPTER.validate_python(item)
    except ValidationError as exc:
        return describe_errors(exc)
    if deeper_than(event.properties, MAX_PROPERTY_DEPTH):
        return [("properties", f"is nested deeper than {MAX_PROPERTY_DEPTH} levels")]
    where = nul_field(item)
    if where is not None:
        return [(where, NUL_REASON)]
    return event


# Deep enough for any real property tree; orjson (storage, answers) stops at 255 levels.
MAX_PROPERTY_DEPTH = 32
