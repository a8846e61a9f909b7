"""Error tracking: issues (events grouped by fingerprint, per project) and their error events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gati.db.base import Base
from gati.db.types import JSONType, UTCDateTime, utcnow

# BIGINT identity on PostgreSQL; INTEGER PRIMARY KEY (the rowid) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")

ISSUE_STATUSES = ("unresolved", "resolved", "ignored")


class Issue(Base):
    __tablename__ = "issues"
    __table_args__ = (
        UniqueConstraint("project_id", "fingerprint", name="uq_issues_project_fingerprint"),
        Index("ix_issues_project_last_seen", "project_id", "last_seen"),
        Index("ix_issues_project_status_last_seen", "project_id", "status", "last_seen"),
        # Ids are never reused (SQLite would reuse the highest one after a delete), so that an
        # (issue id, environment) pair remembered by the writer cannot point at another issue.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    fingerprint: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(255))
    culprit: Mapped[str] = mapped_column(String(255), default="")
    type: Mapped[str | None] = mapped_column(String(200))  # exception type, when there is one
    level: Mapped[str] = mapped_column(String(16), default="error")
    platform: Mapped[str] = mapped_column(String(64), default="other")
    status: Mapped[str] = mapped_column(String(16), default="unresolved")
    # True when an event arrived after the issue was resolved (cleared by resolve/unresolve).
    is_regressed: Mapped[bool] = mapped_column(Boolean, default=False)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    # Events of this issue currently stored (retention lowers it) and ever accepted.
    event_count: Mapped[int] = mapped_column(BigInteger, default=0)
    times_seen: Mapped[int] = mapped_column(BigInteger, default=0)
    grouping: Mapped[list[str] | None] = mapped_column(JSONType)  # the fingerprint's components
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IssueValue(Base):
    """Environments and releases an issue was seen in (for filters and the issue's lists)."""

    __tablename__ = "issue_values"
    __table_args__ = (PrimaryKeyConstraint("issue_id", "kind", "value"),)

    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # environment | release
    value: Mapped[str] = mapped_column(String(200))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)


class ErrorEvent(Base):
    __tablename__ = "error_events"
    __table_args__ = (
        UniqueConstraint("project_id", "event_id", name="uq_error_events_project_event_id"),
        Index("ix_error_events_issue_timestamp", "project_id", "fingerprint", "timestamp"),
        Index("ix_error_events_project_timestamp", "project_id", "timestamp"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(32))
    # The issue is (project_id, fingerprint): events are stored before their issue is upserted,
    # so that one statement per batch can add exactly the newly stored events to the issues.
    fingerprint: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(16))  # sentry | report
    level: Mapped[str] = mapped_column(String(16))
    platform: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(255))
    culprit: Mapped[str] = mapped_column(String(255), default="")
    message: Mapped[str | None] = mapped_column(Text)
    exception_type: Mapped[str | None] = mapped_column(String(200))
    exception_value: Mapped[str | None] = mapped_column(Text)
    transaction_name: Mapped[str | None] = mapped_column(String(200))
    request_method: Mapped[str | None] = mapped_column(String(16))
    request_url: Mapped[str | None] = mapped_column(Text)
    status_code: Mapped[int | None] = mapped_column(Integer)
    environment: Mapped[str | None] = mapped_column(String(64))
    release: Mapped[str | None] = mapped_column(String(200))
    server_name: Mapped[str | None] = mapped_column(String(200))
    # The event as received (Sentry event or seed-002 report). Frames, tags, user and breadcrumbs
    # are derived from it when read (the same normalization as at ingest), not stored twice.
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
