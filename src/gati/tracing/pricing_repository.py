"""All SQL of pricing: custom per-project prices and the unknown models seen in trace events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gati.db import dialect as d
from gati.tracing.models import TraceEvent
from gati.tracing.pricing_models import CustomModelPrice

_PRICE_COLUMNS = (
    CustomModelPrice.model,
    CustomModelPrice.provider,
    CustomModelPrice.effective_from,
    CustomModelPrice.input_per_mtok,
    CustomModelPrice.output_per_mtok,
    CustomModelPrice.cache_read_per_mtok,
    CustomModelPrice.cache_write_per_mtok,
    CustomModelPrice.reasoning_per_mtok,
)


async def price_rows_for_project(conn: AsyncConnection, *, project_id: int) -> Sequence[Any]:
    """The custom prices of one project (inside the ingest transaction)."""
    stmt = select(*_PRICE_COLUMNS).where(CustomModelPrice.project_id == project_id)
    return (await conn.execute(stmt)).all()


async def list_prices(
    session: AsyncSession, *, project_ids: Sequence[int]
) -> Sequence[CustomModelPrice]:
    stmt = (
        select(CustomModelPrice)
        .where(CustomModelPrice.project_id.in_(project_ids))
        .order_by(
            CustomModelPrice.project_id,
            CustomModelPrice.model,
            CustomModelPrice.effective_from,
        )
    )
    return (await session.scalars(stmt)).all()


async def get_price(
    session: AsyncSession, *, project_ids: Sequence[int], price_id: int
) -> CustomModelPrice | None:
    stmt = select(CustomModelPrice).where(
        CustomModelPrice.id == price_id, CustomModelPrice.project_id.in_(project_ids)
    )
    return (await session.scalars(stmt)).first()


async def insert_price(session: AsyncSession, price: CustomModelPrice) -> bool:
    """Add a price; ``False`` when the same model/provider/effective date already exists."""
    try:
        async with session.begin_nested():
            session.add(price)
            await session.flush()
    except IntegrityError:
        return False
    return True


async def delete_price(session: AsyncSession, *, project_id: int, price_id: int) -> None:
    await session.execute(
        delete(CustomModelPrice).where(
            CustomModelPrice.id == price_id, CustomModelPrice.project_id == project_id
        )
    )


async def unknown_models(
    session: AsyncSession, *, project_ids: Sequence[int], since: datetime, limit: int
) -> Sequence[Any]:
    """Models of events priced ``unknown_model`` since ``since``, most frequent first:
    rows of (project_id, model, provider, events, first_seen, last_seen)."""
    dialect = session.get_bind().dialect.name
    data = TraceEvent.data
    source = d.json_text(dialect, data, "cost_source")  # type: ignore[arg-type]
    provider = d.json_text(dialect, data, "provider")  # type: ignore[arg-type]
    count = func.count().label("events")
    stmt = (
        select(
            TraceEvent.project_id,
            TraceEvent.model,
            provider.label("provider"),
            count,
            func.min(TraceEvent.timestamp).label("first_seen"),
            func.max(TraceEvent.timestamp).label("last_seen"),
        )
        .where(
            TraceEvent.project_id.in_(project_ids),
            TraceEvent.timestamp >= since,
            source == "unknown_model",
        )
        .group_by(TraceEvent.project_id, TraceEvent.model, provider)
        .order_by(count.desc(), TraceEvent.model)
        .limit(limit)
    )
    return (await session.execute(stmt)).all()
