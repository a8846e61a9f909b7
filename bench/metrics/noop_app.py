"""The Gati app plus a no-op POST endpoint (the ceiling for bench.metrics.ingest).

The no-op route is matched first: the cheapest possible request, the strict baseline (FastAPI
tries routes in order, ~1.5 µs each, so a route appended after the 79 others would pay ~120 µs
of routing that the measured routes do not). ``BENCH_NOOP_LAST=1`` leaves it appended at the end
instead (how this bench measured before 2026-11-23).
"""

from __future__ import annotations

import os

from fastapi import FastAPI, Request
from fastapi.responses import Response

from bench.common import match_first
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

    if os.environ.get("BENCH_NOOP_LAST") != "1":
        match_first(app, "/bench/noop")
    return app
