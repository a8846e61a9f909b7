"""The Gati app with one extra no-op endpoint, for the same-app, same-run baseline."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response

from bench.common import match_first
from gati.app import create_app
from gati.settings import Settings

NOOP_BODY = (
    b'{"id":"00000000-0000-0000-0000-000000000000","project_id":1,"event_type":"noop",'
    b'"timestamp":"2026-01-01T00:00:00Z","duplicate":false}'
)


def make_app() -> FastAPI:
    app = create_app(Settings())

    @app.post("/bench/noop")
    async def noop(request: Request) -> Response:
        await request.body()  # read the upload like the real endpoint does, then do nothing
        return Response(NOOP_BODY, status_code=201, media_type="application/json")

    # Matched first: a route added last is tried after every other route of the app, which
    # would make the baseline slower than it is (and the ratio look better than it is).
    match_first(app, "/bench/noop")
    return app
