"""The Gati app with one extra no-op endpoint, for the same-app, same-run baseline."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from gati.app import create_app
from gati.errors.router import sentry_router
from gati.settings import Settings

NOOP_BODY = b'{"id":"00000000000000000000000000000000"}'
noop_router = APIRouter()


@noop_router.post("/bench/noop/{project_id}/envelope/")
async def noop(request: Request, project_id: str) -> Response:
    await request.body()  # read the upload like the real endpoint does, then do nothing
    return Response(NOOP_BODY, media_type="application/json")


def make_app() -> FastAPI:
    app = create_app(Settings())
    app.include_router(noop_router)
    # Put it right before the Sentry routes, so that both pay the same route matching.
    routes = app.router.routes
    included = routes.pop()
    sentry_at = next(
        i for i, r in enumerate(routes) if getattr(r, "original_router", None) is sentry_router
    )
    routes.insert(sentry_at, included)
    return app
