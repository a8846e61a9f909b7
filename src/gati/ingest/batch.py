"""Shared pieces of batch ingestion endpoints: the batch envelope and per-item errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gati.exceptions import AppError


@dataclass(frozen=True, slots=True)
class ItemError:
    """One refused item of a batch: its position, the field at fault and why."""

    index: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


def batch_items(body: Any) -> list[Any]:
    """The items of ``{"events": [...]}`` or of a bare JSON array; a 422 naming the problem else."""
    if isinstance(body, dict) and "events" in body:
        events = body["events"]
    elif isinstance(body, list):
        events = body
    else:
        raise AppError(
            422, "events_required", 'The body must be {"events": [...]} (or a JSON array of events)'
        )
    if not isinstance(events, list):
        raise AppError(422, "events_required", "events: must be a JSON array")
    if not events:
        raise AppError(422, "empty_batch", "events: is empty; send at least one event")
    return events
