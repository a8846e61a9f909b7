"""Metric series, points, hour and quarter-hour rollups and their watermarks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gati.db.base import Base
from gati.db.types import JSONType, UTCDateTime, utcnow

# A 64-bit id on PostgreSQL; SQLite's INTEGER PRIMARY KEY is already 64-bit (and the rowid).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class MetricSeries(Base):
    """One (project, metric name, tag set): points and rollups refer to it by id."""

    __tablename__ = "metric_series"
    __table_args__ = (
        UniqueConstraint("project_id", "name", "tags_key", name="uq_metric_series_identity"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    tags: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # sha256 of the canonical JSON of the tags (sorted keys): the tag set's identity.
    tags_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MetricPoint(Base):
    __tablename__ = "metric_points"
    __table_args__ = (
        Index("ix_metric_points_series_ts", "series_id", "ts"),
        Index("ix_metric_points_project_ts", "project_id", "ts"),
        UniqueConstraint("project_id", "client_id", name="uq_metric_points_client_id"),
    )

    # Insertion order: the rollup watermark is a point id.
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    series_id: Mapped[int] = mapped_column(ForeignKey("metric_series.id", ondelete="CASCADE"))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    value: Mapped[float] = mapped_column(Float)
    # Optional client-assigned id: a retried point with the same id is stored once.
    client_id: Mapped[str | None] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class _Summary:
    """The columns of a rollup row: a series' points in one UTC step (``bucket_start``)."""

    series_id: Mapped[int] = mapped_column(ForeignKey("metric_series.id", ondelete="CASCADE"))
    bucket_start: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(BigInteger)
    sum: Mapped[float] = mapped_column(Float)
    min: Mapped[float] = mapped_column(Float)
    max: Mapped[float] = mapped_column(Float)
    sketch: Mapped[bytes] = mapped_column(LargeBinary)  # gati.metrics.aggregation.Sketch


class MetricRollup(_Summary, Base):
    """Summary of a series' points in one UTC hour (only points with id <= the hour watermark).

    ``p50``/``p95``/``p99`` are the sketch's quantiles, computed when the row is written: a bucket
    made of this row alone (hour buckets) answers percentiles without decoding the sketch.
    """

    __tablename__ = "metric_rollups"
    __table_args__ = (PrimaryKeyConstraint("series_id", "bucket_start"),)

    # After the summary columns, as the migration adds them.
    p50: Mapped[float | None] = mapped_column(Float, sort_order=1)
    p95: Mapped[float | None] = mapped_column(Float, sort_order=1)
    p99: Mapped[float | None] = mapped_column(Float, sort_order=1)


class MetricQuarterRollup(_Summary, Base):
    """Summary of a series' points in one UTC quarter hour (points with id <= the quarter
    watermark): buckets in zones with :30 and :45 offsets are cut inside UTC hours."""

    __tablename__ = "metric_quarter_rollups"
    __table_args__ = (PrimaryKeyConstraint("series_id", "bucket_start"),)


class MetricRollupState(Base):
    """Rollup watermarks, one row per level: every point with id <= ``watermark`` is in that
    level's table (``metrics``: ``metric_rollups``; ``metrics_quarter``: quarter hours)."""

    __tablename__ = "metric_rollup_state"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    watermark: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
