"""The Gati app plus a no-op POST endpoint (the ceiling for bench.metrics.ingest).

The no-op route is appended after every router (as a route added to the app would be), so a
request to it is first tried against the app's other routes. With ``BENCH_NOOP_FIRST=1`` it is
matched first instead: the cheapest possible no-op (a stricter baseline).
"""

from __future__ import annotations

import os

from fastapi import FastAPI, Request
from fastapi.responses import Response

from gati.app import create_app
from gati.settings import Settings


def create() -> FastAPI:
    app = create_app(Settings())

    @app.post("/bench/noop", status_code=201)
    async def noop(request: Request) -> Response:
        await request.body()
        return Response(b'{"ok":true}', status_code=201, media_type="application/json")

    @app.get("/bench/stats")
    async def stats(request: Request) -> dict[str, int]:
        committer = request.app.state.committer
        return {"groups": committer.groups_committed, "items": committer.items_committed}

    if os.environ.get("BENCH_NOOP_FIRST") == "1":
        routes = app.router.routes
        position = next(i for i, r in enumerate(routes) if getattr(r, "path", "") == "/bench/noop")
        routes.insert(0, routes.pop(position))
    return app
