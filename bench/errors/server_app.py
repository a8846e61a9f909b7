"""The Gati app with one extra no-op endpoint, for the same-app, same-run baseline."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from bench.common import match_first
from gati.app import create_app
from gati.routing import include_flat
from gati.settings import Settings

NOOP_BODY = b'{"id":"00000000000000000000000000000000"}'
noop_router = APIRouter()


@noop_router.post("/bench/noop/{project_id}/envelope/")
async def noop(request: Request, project_id: str) -> Response:
    await request.body()  # read the upload like the real endpoint does, then do nothing
    return Response(NOOP_BODY, media_type="application/json")


def make_app() -> FastAPI:
    app = create_app(Settings())
    include_flat(app, noop_router)
    # Matched first, before the Sentry routes: the strictest baseline.
    match_first(app, "/bench/noop/{project_id}/envelope/")
    return app
