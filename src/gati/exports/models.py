"""Export configuration per project, its destinations (with a watermark each) and export runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gati.db.base import Base
from gati.db.types import JSONType, UTCDateTime, utcnow
from gati.events.models import Event
from gati.web.models import WebEvent


class ExportConfig(Base):
    """What a project exports and when: format, gzip, schedule."""

    __tablename__ = "export_configs"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    format: Mapped[str] = mapped_column(String(10), default="json")  # json | csv | parquet
    gzip: Mapped[bool] = mapped_column(Boolean, default=False)
    schedule: Mapped[str] = mapped_column(String(10), default="hourly")  # hourly | daily | off
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ExportDestination(Base):
    """Where a project's files go (``primary`` and optional ``backup``).

    ``watermark`` is the start of the next window to export to this destination; it advances only
    after the window's file and manifest are stored there. ``lease_*`` is the claim of the exporter
    working on it, so that two schedulers never export the same window to the same destination.
    """

    __tablename__ = "export_destinations"
    __table_args__ = (UniqueConstraint("project_id", "role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(10))  # primary | backup
    kind: Mapped[str] = mapped_column(String(10))  # local | s3
    # Non-secret options: bucket, prefix, region, endpoint_url, path_style / path.
    options: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Fernet token of {"access_key_id", "secret_access_key", "session_token"}; never returned.
    credentials_encrypted: Mapped[str | None] = mapped_column(Text)
    watermark: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ExportRun(Base):
    """One window written once and sent to one or more destinations."""

    __tablename__ = "export_runs"
    __table_args__ = (Index("ix_export_runs_project_started", "project_id", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    export_id: Mapped[str] = mapped_column(String(40), unique=True)
    trigger: Mapped[str] = mapped_column(String(10))  # scheduled | manual
    format: Mapped[str] = mapped_column(String(10))
    gzip: Mapped[bool] = mapped_column(Boolean, default=False)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12))  # running | succeeded | partial | failed
    rows: Mapped[int | None] = mapped_column(BigInteger)
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    # [{destination_id, role, kind, status, attempts, errors, key, manifest_key}]
    destinations: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # The window's manifest: files with key, rows, bytes, sha256.
    manifest: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# Exports read windows of ``received_at`` per project: index it on the event tables (created by
# the exports migration, declared here so that the models match the migrated schema).
Index(
    "ix_web_events_project_received",
    WebEvent.__table__.c.project_id,
    WebEvent.__table__.c.received_at,
)
Index("ix_events_project_received", Event.__table__.c.project_id, Event.__table__.c.received_at)
