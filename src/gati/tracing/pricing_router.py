"""HTTP layer of pricing: ``/api/pricing/prices``, ``/api/pricing/unknown-models``,
``/api/pricing/quote``. Importing this module registers the cost hook on trace ingestion."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gati.apiparams import Id32
from gati.auth.deps import Reader, ReadScope, resolve_project_for_write
from gati.deps import DatabaseDep, ReadSessionDep, SessionDep
from gati.exceptions import AppError
from gati.json import ORJSONResponse
from gati.tracing import pricing_service as service
from gati.tracing.bounds import MAX_TOKENS
from gati.tracing.pricing_schemas import PriceCreate, PriceRead, QuoteRead, UnknownModelRead
from gati.tracing.schemas import UtcDatetime
from gati.tracing.service import register_enricher

register_enricher(service.pricer)

router = APIRouter(prefix="/pricing", tags=["pricing"])


@router.get("/prices", response_model=list[PriceRead], summary="Custom model prices")
async def list_prices(session: ReadSessionDep, scope: ReadScope) -> Response:
    return ORJSONResponse(await service.list_prices(session, project_ids=scope))


@router.post(
    "/prices",
    response_model=PriceRead,
    status_code=201,
    summary="Add a custom price for a model (per project, from an effective date)",
)
async def create_price(
    body: PriceCreate,
    request: Request,
    principal: Reader,
    db: DatabaseDep,
    session: SessionDep,
) -> Response:
    project = await resolve_project_for_write(db, principal, request.query_params.get("project"))
    price = await service.create_price(session, project_id=project.id, body=body)
    return ORJSONResponse(price, status_code=201)


@router.delete("/prices/{price_id}", status_code=204, summary="Delete a custom price")
async def delete_price(
    price_id: Id32, principal: Reader, scope: ReadScope, session: SessionDep
) -> Response:
    project_id = await service.find_price_project(session, project_ids=scope, price_id=price_id)
    if not principal.may_write(project_id):
        raise AppError(
            403, "write_not_allowed", f"These credentials cannot change project {project_id}"
        )
    await service.delete_price(session, project_ids=[project_id], price_id=price_id)
    return Response(status_code=204)


@router.get(
    "/unknown-models",
    response_model=list[UnknownModelRead],
    summary="Models seen in events that no price covers (their cost was 0)",
)
async def list_unknown_models(
    session: ReadSessionDep,
    scope: ReadScope,
    days: int = Query(30, ge=1, le=3650, description="Look back this many days"),
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    return ORJSONResponse(
        await service.list_unknown_models(session, project_ids=scope, days=days, limit=limit)
    )


@router.get("/quote", response_model=QuoteRead, summary="The cost an LLM call would be given")
async def quote(
    session: ReadSessionDep,
    scope: ReadScope,
    model: str = Query(min_length=1, max_length=200),
    provider: str | None = Query(None, max_length=100),
    at: UtcDatetime | None = None,
    tokens_in: int = Query(0, ge=0, le=MAX_TOKENS),
    tokens_out: int = Query(0, ge=0, le=MAX_TOKENS),
    tokens_cache_read: int = Query(0, ge=0, le=MAX_TOKENS),
    tokens_cache_creation: int = Query(0, ge=0, le=MAX_TOKENS),
    tokens_reasoning: int = Query(0, ge=0, le=MAX_TOKENS),
) -> Response:
    if len(scope) != 1:
        raise AppError(
            400,
            "project_required",
            "These credentials read several projects; name one with ?project=<id or slug>",
        )
    return ORJSONResponse(
        await service.quote(
            session,
            project_id=scope[0],
            model=model,
            provider=provider,
            at=at,
            tokens={
                "tokens_in": tokens_in,
                "tokens_out": tokens_out,
                "tokens_cache_read": tokens_cache_read,
                "tokens_cache_creation": tokens_cache_creation,
                "tokens_reasoning": tokens_reasoning,
            },
        )
    )
