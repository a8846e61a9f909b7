"""Agent tracing (seeds 000/001): agents, runs, trace events and per-agent rollups."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gati.db.base import DELETE_WITH_PROJECT, Base
from gati.db.types import JSONType, UTCDateTime, utcnow


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (PrimaryKeyConstraint("project_id", "name"),)

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(1000))
    # Counters maintained once per ingested batch (only newly stored events count).
    total_runs: Mapped[int] = mapped_column(BigInteger, default=0)
    total_events: Mapped[int] = mapped_column(BigInteger, default=0)
    total_cost: Mapped[float] = mapped_column(Float, default=0.0)
    tokens_in: Mapped[int] = mapped_column(BigInteger, default=0)
    tokens_out: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        PrimaryKeyConstraint("project_id", "run_id"),
        Index("ix_runs_agent_started", "project_id", "agent_name", "started_at"),
        Index("ix_runs_agent_status", "project_id", "agent_name", "status"),
    )

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    run_id: Mapped[str] = mapped_column(String(128))
    agent_name: Mapped[str] = mapped_column(String(200))
    environment: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="active")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime)
    total_duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    total_cost: Mapped[float] = mapped_column(Float, default=0.0)
    tokens_in: Mapped[int] = mapped_column(BigInteger, default=0)
    tokens_out: Mapped[int] = mapped_column(BigInteger, default=0)
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    has_end: Mapped[int] = mapped_column(Integer, default=0)
    # 1 once an event without a parent (the root span) was stored: its agent names the run.
    has_root: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    run_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TraceEvent(Base):
    """One event of a run (the seed's ``events`` table). ``parent_id`` is ``data.parent_run_id``.

    ``project_id`` has no foreign key: checking it on every row cost PostgreSQL about a quarter
    of a 10,000-event COPY (docs/benchmarks.md). Rows are written only for a project the request
    was authenticated for, and deleting a project deletes them (:data:`DELETE_WITH_PROJECT`)."""

    __tablename__ = "trace_events"
    __table_args__ = (
        PrimaryKeyConstraint("project_id", "event_id"),
        Index("ix_trace_events_run_ts", "project_id", "run_id", "timestamp"),
        Index(
            "ix_trace_events_parent",
            "project_id",
            "parent_id",
            postgresql_where=text("parent_id IS NOT NULL"),
            sqlite_where=text("parent_id IS NOT NULL"),
        ),
        {"info": {DELETE_WITH_PROJECT: True}},
    )

    project_id: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[str] = mapped_column(String(128))
    run_id: Mapped[str] = mapped_column(String(128))
    agent_name: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(100))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    parent_id: Mapped[str | None] = mapped_column(String(128))
    latency_ms: Mapped[float | None] = mapped_column(Float)
    cost: Mapped[float | None] = mapped_column(Float)
    tokens_in: Mapped[int | None] = mapped_column(BigInteger)
    tokens_out: Mapped[int | None] = mapped_column(BigInteger)
    model: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AgentMetric(Base):
    """The seed's pre-aggregated metrics: per agent and hour/day/month bucket (UTC)."""

    __tablename__ = "agent_metrics"
    __table_args__ = (PrimaryKeyConstraint("project_id", "agent_name", "period", "bucket_start"),)

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    agent_name: Mapped[str] = mapped_column(String(200))
    period: Mapped[str] = mapped_column(String(10))  # hourly | daily | monthly
    bucket_start: Mapped[datetime] = mapped_column(UTCDateTime)
    runs: Mapped[int] = mapped_column(BigInteger, default=0)
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    tokens_in: Mapped[int] = mapped_column(BigInteger, default=0)
    tokens_out: Mapped[int] = mapped_column(BigInteger, default=0)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
