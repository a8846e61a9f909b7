"""Which of the two shapes that share ``POST /api/v1/events`` a request body is.

The path is shared by two seeds:

* seed 004 (PulseBoard) product events: ``{"event_type" | "name", "timestamp", "properties",
  "event_id", "project"}``;
* seed 002 error reports: ``{"project_key", "message", "stack", "method", "path",
  "status_code", "timestamp"}``.

The rule (docs/events.md, docs/architecture.md), applied to the decoded JSON body before any
validation, looks only at which top-level keys are present, never at their values:

1. The body must be a JSON object (an array is pointed at ``/api/v1/events/batch``).
2. It has ``project_key`` **and** ``message`` and **neither** ``event_type`` nor ``name``:
   an **error report**, handed to the error-tracking service (``gati.errors.service``).
3. Everything else is a **product event**. Product events refuse unknown top-level fields, so a
   body that mixes both shapes (``event_type`` with ``project_key``/``message``) is a 422 naming
   the stray field rather than being stored as either; a half error report (only ``message``)
   gets a 422 that says what each shape needs.

Neither ``event_type`` nor ``name`` is a field of an error report and ``project_key`` is not a
field of a product event, so no valid body of one shape can be taken for the other.
"""

from __future__ import annotations

from enum import StrEnum

from gati.exceptions import AppError

PRODUCT_EVENT_MARKERS = ("event_type", "name")
ERROR_REPORT_MARKERS = ("project_key", "message")

MISSING_EVENT_TYPE = (
    "event_type: field required. A product event needs event_type (or name); "
    "an error report needs both project_key and message"
)


class EventBodyKind(StrEnum):
    PRODUCT_EVENT = "product_event"
    ERROR_REPORT = "error_report"


def classify_event_body(body: object) -> EventBodyKind:
    """Tell a seed-004 product event from a seed-002 error report (422 if not an object)."""
    if not isinstance(body, dict):
        if isinstance(body, list):
            raise AppError(
                422,
                "validation_error",
                "body: a JSON array was sent; POST /api/v1/events takes one event object, "
                "send lists to POST /api/v1/events/batch",
            )
        raise AppError(422, "validation_error", "body: must be a JSON object")
    if (
        "project_key" in body
        and "message" in body
        and "event_type" not in body
        and "name" not in body
    ):
        return EventBodyKind.ERROR_REPORT
    return EventBodyKind.PRODUCT_EVENT
