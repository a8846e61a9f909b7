"""The ``events`` table: PulseBoard product events (seed 004). Web analytics keeps ``web_events``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from gati.db.base import Base
from gati.db.types import JSONType, UTCDateTime, utcnow

MAX_EVENT_ID_LENGTH = 200
MAX_EVENT_NAME_LENGTH = 200


class Event(Base):
    """One event of a project. ``(project_id, id)`` is the identity: a retried event with the same
    client ``event_id`` is stored once. ``id`` is the client's ``event_id`` or a server UUID."""

    __tablename__ = "events"
    __table_args__ = (
        PrimaryKeyConstraint("project_id", "id"),
        # Newest-first listings and time ranges (keyset pagination on (timestamp, id)).
        Index("ix_events_project_time", "project_id", "timestamp", "id"),
        # Listings filtered by event type.
        Index("ix_events_project_type_time", "project_id", "event_type", "timestamp"),
    )

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    id: Mapped[str] = mapped_column(String(MAX_EVENT_ID_LENGTH))
    # The seed-004 ``event_type`` (the API accepts ``name`` as an alias).
    event_type: Mapped[str] = mapped_column(String(MAX_EVENT_NAME_LENGTH))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
