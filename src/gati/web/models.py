"""Web analytics storage: events, visits (sessions), daily salts and hourly rollups.

``web_events`` holds every /collect event (seed 003), bots included (``is_bot``) so that raw
exports are complete; statistics always exclude bots. The exports helper reads this table.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gati.db.base import Base
from gati.db.types import JSONType, UTCDateTime, utcnow


class WebEvent(Base):
    __tablename__ = "web_events"
    __table_args__ = (
        Index("ix_web_events_project_ts", "project_id", "timestamp"),
        Index("ix_web_events_project_session", "project_id", "session_id"),
    )

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    # The seed's event_id: a server UUID, or the client's ``eventId`` (idempotent retries).
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(120))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The visit this event belongs to (the client's sessionId when it sent one).
    session_id: Mapped[str] = mapped_column(String(255))
    visitor_id: Mapped[str] = mapped_column(String(255))
    # 64-bit digest of visitor_id: cheap to count distinct.
    visitor_key: Mapped[int] = mapped_column(BigInteger)
    url: Mapped[str | None] = mapped_column(Text)
    path: Mapped[str | None] = mapped_column(String(2048))
    hostname: Mapped[str | None] = mapped_column(String(255))
    referrer: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(String(1024))
    source: Mapped[str | None] = mapped_column(String(255))
    utm_source: Mapped[str | None] = mapped_column(String(255))
    utm_medium: Mapped[str | None] = mapped_column(String(255))
    utm_campaign: Mapped[str | None] = mapped_column(String(255))
    utm_term: Mapped[str | None] = mapped_column(String(255))
    utm_content: Mapped[str | None] = mapped_column(String(255))
    browser: Mapped[str | None] = mapped_column(String(64))
    browser_version: Mapped[str | None] = mapped_column(String(32))
    os: Mapped[str | None] = mapped_column(String(64))
    os_version: Mapped[str | None] = mapped_column(String(32))
    device: Mapped[str | None] = mapped_column(String(16))
    country: Mapped[str | None] = mapped_column(String(2))
    # What the site's IP storage mode keeps of the client address (full, /24-/48, nothing).
    ip: Mapped[str | None] = mapped_column(String(45))
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    properties: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # The event as the client sent it (the seed's raw_event_data).
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class WebSession(Base):
    """A visit: a visitor's events with no gap longer than 30 minutes."""

    __tablename__ = "web_sessions"
    __table_args__ = (
        # Unique visitors of a window: an index-only scan of human visits on PostgreSQL.
        Index(
            "ix_web_sessions_visitors",
            "project_id",
            "started_at",
            postgresql_include=["visitor_key"],
            postgresql_where=text("NOT is_bot"),
            sqlite_where=text("is_bot = 0"),  # how SQLAlchemy spells NOT there
        ),
        Index("ix_web_sessions_visitor", "project_id", "visitor_id", "last_seen_at"),
    )

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    visitor_id: Mapped[str] = mapped_column(String(255))
    visitor_key: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration: Mapped[int] = mapped_column(Integer, default=0)  # seconds
    pageviews: Mapped[int] = mapped_column(Integer, default=0)
    events: Mapped[int] = mapped_column(Integer, default=0)
    entry_page: Mapped[str | None] = mapped_column(String(2048))
    exit_page: Mapped[str | None] = mapped_column(String(2048))
    hostname: Mapped[str | None] = mapped_column(String(255))
    referrer: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(255))
    utm_source: Mapped[str | None] = mapped_column(String(255))
    utm_medium: Mapped[str | None] = mapped_column(String(255))
    utm_campaign: Mapped[str | None] = mapped_column(String(255))
    utm_term: Mapped[str | None] = mapped_column(String(255))
    utm_content: Mapped[str | None] = mapped_column(String(255))
    browser: Mapped[str | None] = mapped_column(String(64))
    os: Mapped[str | None] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(16))
    country: Mapped[str | None] = mapped_column(String(2))
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False)


class WebSalt(Base):
    """The random salt of one UTC day for visitor hashes; deleted two days later."""

    __tablename__ = "web_salts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    salt: Mapped[bytes] = mapped_column(LargeBinary(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebRollupHourly(Base):
    """Per project and UTC hour, bots excluded, kept by the writer in the events' transaction:
    page views and events by their hour; visits, bounces (visits with at most one page view)
    and total visit duration by the hour the visit started (additive, so any window of whole
    hours sums them exactly)."""

    __tablename__ = "web_rollup_hourly"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    # Concurrent PostgreSQL writers add to different rows of the same hour (a random shard per
    # transaction), so they do not wait for each other's commit on the hour's row lock.
    # Readers sum the shards.
    shard: Mapped[int] = mapped_column(
        SmallInteger, primary_key=True, default=0, server_default=text("0")
    )
    pageviews: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    events: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    visits: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    bounces: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    duration: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    # +1 for every visit that starts in this hour or stops starting in it: the version of the
    # hour's set of visitors (see WebVisitorHour).
    visit_changes: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))


class WebVisitorHour(Base):
    """The distinct visitor keys (sorted, 8-byte big-endian each) of the human visits that
    started in one UTC hour, and a HyperLogLog sketch of them, as of ``version`` (the hour's
    ``visit_changes``). Kept by the ``web.visitor_hours`` job; statistics use a row only while
    its version is current (see gati.web.visitors)."""

    __tablename__ = "web_visitor_hours"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    keys: Mapped[bytes] = mapped_column(LargeBinary)
    sketch: Mapped[bytes] = mapped_column(LargeBinary)
