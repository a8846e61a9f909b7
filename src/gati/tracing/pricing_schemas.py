"""Request and response models of ``/api/pricing``."""

from __future__ import annotations

import math
from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from gati.tracing.schemas import UtcDatetime


class PriceCreate(BaseModel):
    """A custom price, in USD per million tokens."""

    model: str = Field(
        min_length=1,
        max_length=200,
        description="Model name as events carry it (case-insensitive); a trailing * is a prefix",
    )
    provider: str | None = Field(
        None, max_length=100, description="Only for events of this provider (e.g. 'openai')"
    )
    effective_from: UtcDatetime | None = Field(
        None,
        description="Applies to events whose timestamp is at or after this instant "
        "(default: always). Naive values are UTC.",
    )
    input_per_mtok: float = Field(ge=0, description="Input (prompt) tokens")
    output_per_mtok: float = Field(ge=0, description="Output (completion) tokens")
    cache_read_per_mtok: float | None = Field(None, ge=0, description="Default: input price")
    cache_write_per_mtok: float | None = Field(None, ge=0, description="Default: input price")
    reasoning_per_mtok: float | None = Field(None, ge=0, description="Default: output price")

    @field_validator(
        "input_per_mtok",
        "output_per_mtok",
        "cache_read_per_mtok",
        "cache_write_per_mtok",
        "reasoning_per_mtok",
    )
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        value = value.strip()
        if not value or value == "*":
            raise ValueError("must name a model (a bare '*' is not allowed)")
        return value


class PriceRead(BaseModel):
    id: int
    project_id: int
    model: str
    provider: str | None
    effective_from: datetime
    input_per_mtok: float
    output_per_mtok: float
    cache_read_per_mtok: float | None
    cache_write_per_mtok: float | None
    reasoning_per_mtok: float | None
    created_at: datetime


class UnknownModelRead(BaseModel):
    project_id: int
    model: str | None
    provider: str | None
    events: int
    first_seen: datetime
    last_seen: datetime
    has_custom_price: bool


class QuoteRead(BaseModel):
    model: str
    provider: str | None
    cost: float
    cost_source: str
    matched_model: str | None
