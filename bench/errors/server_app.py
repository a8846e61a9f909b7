"""The Gati app with one extra no-op endpoint, for the same-app, same-run baseline.

With ``GATI_BENCH_WRITER=none`` (``bench.errors.run --writer none``), a ceiling run: the error
events' group writer is replaced by one that stores nothing and answers each event as new, to
show what the rest of the envelope endpoint (decompression, parsing, normalisation, grouping,
the group committer) allows. Not a valid server.
"""

from __future__ import annotations

import os

from fastapi import APIRouter, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

import gati.app as gati_app
from bench.common import match_first
from gati.app import create_app
from gati.errors import service
from gati.routing import include_flat
from gati.settings import Settings

NOOP_BODY = b'{"id":"00000000000000000000000000000000"}'
noop_router = APIRouter()


@noop_router.post("/bench/noop/{project_id}/envelope/")
async def noop(request: Request, project_id: str) -> Response:
    await request.body()  # read the upload like the real endpoint does, then do nothing
    return Response(NOOP_BODY, media_type="application/json")


async def _no_writer(
    conn: AsyncConnection, items: list[service.ErrorWrite]
) -> list[service.ErrorWriteResult]:
    return [service.ErrorWriteResult(item.event.event_id, stored=True) for item in items]


async def _replace_writer(app: FastAPI) -> None:
    app.state.committer.register(
        service.WRITER_KIND, _no_writer, autocommit=True, writers=1, max_batch=32
    )


def make_app() -> FastAPI:
    app = create_app(Settings())
    if os.environ.get("GATI_BENCH_WRITER", "real") == "none":
        gati_app.STARTUP_HOOKS.append(_replace_writer)
    include_flat(app, noop_router)
    # Matched first, before the Sentry routes: the strictest baseline.
    match_first(app, "/bench/noop/{project_id}/envelope/")
    return app
