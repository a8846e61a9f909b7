"""Request and response models of error tracking (seed-002 reports, issues, error events)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

IssueStatus = Literal["unresolved", "resolved", "ignored"]


class ErrorReportIn(BaseModel):
    """Seed 002: ``POST /api/v1/events`` with ``project_key`` and ``message``. The optional fields
    after ``timestamp`` are Gati extensions (the same meaning as in Sentry events)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    project_key: str = Field(
        min_length=1,
        max_length=100,
        description="Project slug, id or public key. Local mode creates unknown projects.",
    )
    message: str = Field(min_length=1, max_length=10_000)
    stack: str | None = Field(default=None, max_length=200_000)
    method: str | None = Field(default=None, max_length=16)
    path: str | None = Field(default=None, max_length=4000)
    status_code: int | None = Field(default=None, ge=100, le=599)
    timestamp: datetime | None = Field(default=None, description="ISO 8601; naive means UTC")
    event_id: str | None = Field(
        default=None, max_length=36, description="UUID; makes retries idempotent"
    )
    level: Literal["fatal", "error", "warning", "info", "debug"] | None = None
    environment: str | None = Field(default=None, max_length=64)
    release: str | None = Field(default=None, max_length=200)
    platform: str | None = Field(default=None, max_length=64)
    tags: dict[str, str | int | float | bool] | None = None
    user: dict[str, Any] | None = None
    fingerprint: list[str] | None = Field(default=None, max_length=50)

    @field_validator("project_key", "message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class ErrorReportOut(BaseModel):
    id: int
    timestamp: datetime
    message: str


class IssueRead(BaseModel):
    id: int
    project_id: int
    title: str
    culprit: str
    type: str | None = Field(description="Exception type, when the events have one")
    level: str
    platform: str
    status: IssueStatus
    is_regressed: bool = Field(description="An event arrived after the issue was resolved")
    first_seen: datetime
    last_seen: datetime
    event_count: int = Field(description="Events of this issue currently stored")
    times_seen: int = Field(description="Events ever accepted for this issue (retention keeps it)")
    environments: list[str]
    releases: list[str]
    fingerprint: str
    grouping: list[str] | None = Field(description="What the fingerprint was computed from")
    resolved_at: datetime | None
    status_changed_at: datetime | None


class IssuePage(BaseModel):
    items: list[IssueRead]
    total: int
    limit: int
    offset: int
    has_more: bool


class IssueUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: IssueStatus


class ErrorEventRead(BaseModel):
    id: int
    event_id: str
    project_id: int
    issue_id: int
    timestamp: datetime
    received_at: datetime
    source: Literal["sentry", "report"]
    level: str
    platform: str
    title: str
    culprit: str
    message: str | None
    exception: dict[str, Any] | None = Field(description="{type, value}")
    frames: list[dict[str, Any]]
    request: dict[str, Any] | None = Field(description="{method, url, status_code}")
    transaction: str | None
    environment: str | None
    release: str | None
    server_name: str | None
    tags: dict[str, str]
    user: dict[str, Any] | None
    breadcrumbs: list[dict[str, Any]]
    payload: dict[str, Any] | None = Field(
        default=None, description="The event as received (only on GET /error-events/{id})"
    )


class ErrorEventPage(BaseModel):
    items: list[ErrorEventRead]
    total: int
    limit: int
    offset: int
    has_more: bool


class DsnRead(BaseModel):
    project_id: int
    public_key: str
    dsn: str
    envelope_url: str
    store_url: str


class ErrorSettingsRead(BaseModel):
    project_id: int
    retention_days: int = Field(
        description="Days error events are kept (this project's or the default)"
    )
    retention_days_is_default: bool
    rate_limit: str | None = Field(
        description="Events per project, 'COUNT/second|minute|hour[;burst=N]'; null: unlimited"
    )
    rate_limit_is_default: bool


class ErrorSettingsUpdate(BaseModel):
    """Fields left out are unchanged; ``null`` returns a field to the server's default."""

    model_config = ConfigDict(extra="forbid")

    retention_days: int | None = Field(default=None, ge=1, le=36_500)
    rate_limit: str | None = Field(
        default=None, max_length=100, description="e.g. '50/second;burst=500', or 'off'"
    )
