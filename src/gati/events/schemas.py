"""Request and response models of the PulseBoard product-event API (``/api/v1/events``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from gati.db.types import checked_utc

MAX_EVENT_TYPE_LENGTH = 200
MAX_EVENT_ID_LENGTH = 200
MAX_PROJECT_REF_LENGTH = 200


class EventIn(BaseModel):
    """One product event. ``name`` is accepted as an alias of ``event_type``.

    Unknown top-level fields are refused (custom data goes in ``properties``): that keeps the
    shared ``POST /api/v1/events`` path unambiguous (see ``gati.events.dispatch``) and catches
    misspelt fields instead of silently dropping them.
    """

    model_config = ConfigDict(extra="forbid")

    event_type: str | None = Field(
        default=None, min_length=1, max_length=MAX_EVENT_TYPE_LENGTH, examples=["signup"]
    )
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_EVENT_TYPE_LENGTH,
        description="Alias of event_type",
    )
    timestamp: datetime | None = Field(
        default=None,
        description="When the event happened (ISO 8601 or Unix seconds); UTC when no offset "
        "is given; defaults to the time the server received it",
    )
    properties: dict[str, Any] = Field(default_factory=dict, examples=[{"plan": "pro"}])
    event_id: str | None = Field(
        default=None,
        description="Client-chosen id; sending the same id to the same project again stores "
        "nothing new (idempotent retries)",
    )
    project: int | str | None = Field(
        default=None,
        description="Project id or slug; defaults to the key's project, or to the user's "
        "personal project",
    )

    @field_validator("event_type", "name")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("event_id", mode="before")
    @classmethod
    def _event_id(cls, value: object) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError("must be a string or an integer")
        text = str(value)
        if not text or len(text) > MAX_EVENT_ID_LENGTH:
            raise ValueError(f"must be 1 to {MAX_EVENT_ID_LENGTH} characters")
        return text

    @field_validator("project", mode="before")
    @classmethod
    def _project(cls, value: object) -> int | str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError("must be a project id (integer) or slug (string)")
        if isinstance(value, str) and not (0 < len(value) <= MAX_PROJECT_REF_LENGTH):
            raise ValueError(f"must be 1 to {MAX_PROJECT_REF_LENGTH} characters")
        return value

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return checked_utc(value)

    @model_validator(mode="after")
    def _event_type_or_name(self) -> EventIn:
        if self.event_type is None and self.name is None:
            raise ValueError("event_type: field required (or name)")
        if self.event_type is not None and self.name is not None and self.event_type != self.name:
            raise ValueError("name: differs from event_type; send one of them")
        if self.event_type is None:
            self.event_type = self.name
        return self

    @property
    def type(self) -> str:
        assert self.event_type is not None
        return self.event_type


class EventBatchIn(BaseModel):
    """Body of ``POST /api/v1/events/batch`` (a bare JSON array is accepted too)."""

    events: list[dict[str, Any]]


class EventAccepted(BaseModel):
    """Answer to ``POST /api/v1/events``, sent after the event is committed."""

    id: str
    project_id: int
    event_type: str
    timestamp: datetime
    duplicate: bool = Field(
        description="True when this event_id was already stored in the project (nothing changed)"
    )


class ItemError(BaseModel):
    index: int = Field(description="Position of the item in the request's events")
    field: str = Field(description="The item's field that is wrong ('body': the item itself)")
    message: str


class EventBatchResult(BaseModel):
    """Answer to ``POST /api/v1/events/batch``: the shape of ``POST /api/events``."""

    status: Literal["success", "partial"]
    message: str
    count: int = Field(description="Events accepted (stored, or already stored by a retry)")
    failed: int
    duplicates: int = Field(description="Accepted events whose event_id was already stored")
    errors: list[ItemError] = Field(default_factory=list)
    ids: list[str | None] = Field(
        default_factory=list,
        description="Per input item: the stored event's id, or null where the item failed",
    )


class EventRead(BaseModel):
    id: str
    project_id: int
    event_type: str
    timestamp: datetime
    received_at: datetime | None = None
    properties: dict[str, Any]


class EventPage(BaseModel):
    items: list[EventRead]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next (older) page; null on the last page"
    )
