"""``GET /`` and ``GET /health``: 503 with ``"database": "disconnected"`` while the database is away."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gati.db.types import utcnow
from gati.json import ORJSONResponse

router = APIRouter(tags=["health"])

HealthCheck = Any  # async (app) -> tuple[name, ok: bool]


async def _health(request: Request) -> Response:
    app = request.app
    database_ok = await app.state.db.ping()
    body: dict[str, Any] = {
        "status": "healthy" if database_ok else "unhealthy",
        "database": "connected" if database_ok else "disconnected",
    }
    healthy = database_ok
    for name, check in getattr(app.state, "health_checks", {}).items():
        ok = await check(app)
        body[name] = "connected" if ok else "disconnected"
        healthy = healthy and ok
    if not healthy:
        body["status"] = "unhealthy"
    body["timestamp"] = utcnow()
    body["version"] = app.state.settings.app_version
    return ORJSONResponse(body, status_code=200 if healthy else 503)


@router.get("/health")
async def health(request: Request) -> Response:
    return await _health(request)


@router.get("/")
async def root(request: Request) -> Response:
    settings = request.app.state.settings
    response = await _health(request)
    return (
        response
        if response.status_code != 200
        else ORJSONResponse(
            {
                "name": settings.app_name,
                "version": settings.app_version,
                "status": "healthy",
                "database": "connected",
                "mode": "local"
                if settings.is_local
                else "production"
                if settings.is_production
                else settings.environment,
                "docs": "/docs",
            }
        )
    )
