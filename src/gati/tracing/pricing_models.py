"""Custom per-project model prices (the ``pricing`` migration branch)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gati.db.base import Base
from gati.db.types import UTCDateTime, utcnow


class CustomModelPrice(Base):
    """A project's own price for a model (USD per million tokens), from ``effective_from`` on.

    ``model`` is stored lower-case; a trailing ``*`` makes it a prefix pattern. ``provider`` is
    ``""`` when the price applies whatever the provider.
    """

    __tablename__ = "pricing_custom_prices"
    __table_args__ = (
        UniqueConstraint(
            "project_id",
            "model",
            "provider",
            "effective_from",
            name="uq_pricing_custom_prices_identity",
        ),
        Index("ix_pricing_custom_prices_project", "project_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(100), default="")
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime)
    input_per_mtok: Mapped[float] = mapped_column(Float)
    output_per_mtok: Mapped[float] = mapped_column(Float)
    cache_read_per_mtok: Mapped[float | None] = mapped_column(Float)
    cache_write_per_mtok: Mapped[float | None] = mapped_column(Float)
    reasoning_per_mtok: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
