"""Flat route table: every route of every domain router sits directly in the app's route list.

FastAPI 0.165 keeps an included router as one lazy ``_IncludedRouter`` entry. Matching a request
then walks each included router in turn (recomputing route versions and juggling scope keys per
candidate) and matches the chosen router a second time to dispatch: reaching
``POST /api/v1/metrics``, then the fifth router, cost ~90 µs of CPU in process and ~200 µs of
server CPU per HTTP request on the session's machine, against ~1 µs for a route in the app's own
list (docs/benchmarks.md, "Single-event ingestion after the flat route table"). ``include_flat`` instead
re-registers each route on the app with the prefix applied, as FastAPI's own ``include_router``
did before 0.165, and ``promote`` moves the single-event ingestion routes to the front so they are
matched first. The routes are the same objects FastAPI builds for ``@app.post``: the same
validation, dependencies, OpenAPI schema and operation ids.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute


def include_flat(app: FastAPI, router: APIRouter, prefix: str = "") -> None:
    """Add ``router``'s routes to ``app`` one by one, with ``prefix`` prepended to each path."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            app.router.add_api_route(
                prefix + route.path,
                route.endpoint,
                response_model=route.response_model,
                status_code=route.status_code,
                tags=list(route.tags),
                dependencies=list(route.dependencies),
                summary=route.summary,
                description=route.description,
                response_description=route.response_description,
                responses=dict(route.responses),
                deprecated=route.deprecated,
                methods=set(route.methods or ()),
                operation_id=route.operation_id,
                response_model_include=route.response_model_include,
                response_model_exclude=route.response_model_exclude,
                response_model_by_alias=route.response_model_by_alias,
                response_model_exclude_unset=route.response_model_exclude_unset,
                response_model_exclude_defaults=route.response_model_exclude_defaults,
                response_model_exclude_none=route.response_model_exclude_none,
                include_in_schema=route.include_in_schema,
                response_class=route.response_class,
                name=route.name,
                callbacks=route.callbacks,
                openapi_extra=route.openapi_extra,
                generate_unique_id_function=route.generate_unique_id_function,
            )
        elif isinstance(route, APIWebSocketRoute):
            app.router.add_api_websocket_route(
                prefix + route.path,
                route.endpoint,
                name=route.name,
                dependencies=list(route.dependencies),
            )
        else:  # pragma: no cover - a router of ours with another kind of route is a bug
            raise TypeError(f"cannot flatten route {route!r} of type {type(route).__name__}")


def promote(app: FastAPI, hot: Iterable[tuple[str, str]]) -> None:
    """Move the routes for these (method, path) pairs to the front, in the order given.

    Only routes that no earlier route could shadow are listed (distinct literal paths, or
    ``/api/{project_id}/envelope/``-style patterns nothing else has), so the order of matching
    changes nothing but speed.
    """
    routes = app.router.routes
    front = []
    for method, path in hot:
        found = [
            r
            for r in routes
            if isinstance(r, APIRoute) and r.path == path and method in (r.methods or ())
        ]
        if len(found) != 1:
            raise LookupError(f"promote: {method} {path} matches {len(found)} routes")
        front.append(found[0])
    moved = {id(route) for route in front}
    rest = [r for r in routes if id(r) not in moved]
    routes[:] = front + rest
    app.router._mark_routes_changed()
