"""Rules of pricing: the ingest hook that fills in costs, and custom price management."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gati.db.types import utcnow
from gati.exceptions import AppError, not_found
from gati.tracing import pricing_repository as repository
from gati.tracing.pricing import CustomPrice, PriceBook, apply_cost, compute_cost
from gati.tracing.pricing_models import CustomModelPrice
from gati.tracing.pricing_schemas import PriceCreate
from gati.tracing.schemas import TraceEventIn, event_data, set_data_key

# A price without an effective date applies to every event, however old its timestamp.
ALWAYS = datetime(1970, 1, 1, tzinfo=UTC)


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def book_from_rows(rows: Sequence[Any]) -> PriceBook:
    return PriceBook(
        CustomPrice(
            model=row.model,
            effective_from=row.effective_from,
            input_per_mtok=Decimal(str(row.input_per_mtok)),
            output_per_mtok=Decimal(str(row.output_per_mtok)),
            cache_read_per_mtok=_decimal(row.cache_read_per_mtok),
            cache_write_per_mtok=_decimal(row.cache_write_per_mtok),
            reasoning_per_mtok=_decimal(row.reasoning_per_mtok),
            provider=row.provider or None,
        )
        for row in rows
    )


async def pricer(
    conn: AsyncConnection, project_id: int, events: Sequence[TraceEventIn] | None = None
) -> Callable[[TraceEventIn], None]:
    """The ingest hook (``tracing.service.register_enricher``): runs on every batch of
    ``POST /api/events`` and ``POST /v1/traces`` before insert, in the same transaction, and
    returns the function that prices each event as it is stored.

    A client cost is kept and marked ``cost_source = "client"``; otherwise an event with a
    model and token counts gets ``cost`` and ``cost_source`` from the project's custom prices,
    the price table, or ``unknown_model`` (cost 0). The project's custom prices are read here,
    once per batch: events are priced while a COPY sends the ones before them, where no query
    can run. When the batch's ``events`` are known in advance (a list) and none needs a computed
    cost, they are not read.
    """
    book = PriceBook()
    if events is None or any(e.cost is None and e.model is not None for e in events):
        book = book_from_rows(await repository.price_rows_for_project(conn, project_id=project_id))

    def price(event: TraceEventIn) -> None:
        if event.cost is not None:
            if event.cost_unmarked:
                set_data_key(event, "cost_source", "client")
                event.cost_unmarked = False
            return
        if event.model is None:
            return
        try:
            data = event_data(event)
        except orjson.JSONDecodeError as exc:
            # Kept as text by the fast path, which reads JSON orjson refuses (a number such as
            # 1e400): the answer the item-by-item path gives the same body.
            raise AppError(
                400, "malformed_json", f"The body is not valid JSON: event {event.event_id}: {exc}"
            ) from exc
        result = apply_cost(data, at=event.timestamp, book=book)
        if result is not None:
            event.cost = result.cost

    return price


def _price_read(price: CustomModelPrice) -> dict[str, Any]:
    return {
        "id": price.id,
        "project_id": price.project_id,
        "model": price.model,
        "provider": price.provider or None,
        "effective_from": price.effective_from,
        "input_per_mtok": price.input_per_mtok,
        "output_per_mtok": price.output_per_mtok,
        "cache_read_per_mtok": price.cache_read_per_mtok,
        "cache_write_per_mtok": price.cache_write_per_mtok,
        "reasoning_per_mtok": price.reasoning_per_mtok,
        "created_at": price.created_at,
    }


async def list_prices(session: AsyncSession, *, project_ids: Sequence[int]) -> list[dict[str, Any]]:
    return [_price_read(p) for p in await repository.list_prices(session, project_ids=project_ids)]


async def create_price(
    session: AsyncSession, *, project_id: int, body: PriceCreate
) -> dict[str, Any]:
    effective = body.effective_from or ALWAYS
    if effective.tzinfo is None:
        effective = effective.replace(tzinfo=UTC)
    price = CustomModelPrice(
        project_id=project_id,
        model=body.model.strip().lower(),
        provider=(body.provider or "").strip().lower(),
        effective_from=effective.astimezone(UTC),
        input_per_mtok=body.input_per_mtok,
        output_per_mtok=body.output_per_mtok,
        cache_read_per_mtok=body.cache_read_per_mtok,
        cache_write_per_mtok=body.cache_write_per_mtok,
        reasoning_per_mtok=body.reasoning_per_mtok,
        created_at=utcnow(),
    )
    if not await repository.insert_price(session, price):
        raise AppError(
            409,
            "price_exists",
            f"Project {project_id} already has a price for {price.model!r}"
            f"{' (' + price.provider + ')' if price.provider else ''} effective from "
            f"{price.effective_from.isoformat()}; delete it first or use another effective_from",
        )
    return _price_read(price)


async def delete_price(
    session: AsyncSession, *, project_ids: Sequence[int], price_id: int
) -> CustomModelPrice:
    price = await repository.get_price(session, project_ids=project_ids, price_id=price_id)
    if price is None:
        raise not_found("price", price_id)
    await repository.delete_price(session, project_id=price.project_id, price_id=price_id)
    return price


async def find_price_project(
    session: AsyncSession, *, project_ids: Sequence[int], price_id: int
) -> int:
    price = await repository.get_price(session, project_ids=project_ids, price_id=price_id)
    if price is None:
        raise not_found("price", price_id)
    return price.project_id


async def list_unknown_models(
    session: AsyncSession, *, project_ids: Sequence[int], days: int, limit: int
) -> list[dict[str, Any]]:
    since = utcnow() - timedelta(days=days)
    rows = await repository.unknown_models(
        session, project_ids=project_ids, since=since, limit=limit
    )
    books: dict[int, PriceBook] = {}
    for project_id in {row.project_id for row in rows}:
        books[project_id] = PriceBook(
            CustomPrice(
                model=p.model,
                effective_from=p.effective_from,
                input_per_mtok=Decimal(0),
                output_per_mtok=Decimal(0),
                provider=p.provider or None,
            )
            for p in await repository.list_prices(session, project_ids=[project_id])
        )
    now = utcnow()
    return [
        {
            "project_id": row.project_id,
            "model": row.model,
            "provider": row.provider,
            "events": int(row.events),
            "first_seen": row.first_seen,
            "last_seen": row.last_seen,
            "has_custom_price": bool(
                row.model and books[row.project_id].find(row.model, now, row.provider)
            ),
        }
        for row in rows
    ]


async def quote(
    session: AsyncSession,
    *,
    project_id: int,
    model: str,
    provider: str | None,
    at: datetime | None,
    tokens: dict[str, int],
) -> dict[str, Any]:
    """What an event with these counts would cost (custom price, table or unknown)."""
    rows = await repository.list_prices(session, project_ids=[project_id])
    book = book_from_rows(rows)
    data: dict[str, Any] = {"model": model, **tokens}
    if provider:
        data["provider"] = provider
    result = compute_cost(data, at=at or utcnow(), book=book)
    if result is None:
        return {
            "model": model,
            "provider": provider,
            "cost": 0.0,
            "cost_source": "no_tokens",
            "matched_model": None,
        }
    return {
        "model": model,
        "provider": result.provider or provider,
        "cost": result.cost,
        "cost_source": result.source,
        "matched_model": result.matched_model,
    }
