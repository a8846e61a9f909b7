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

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


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


def _the_route(app: FastAPI, method: str, path: str, caller: str) -> APIRoute:
    """The one FastAPI route of the app for ``method`` and ``path`` (LookupError otherwise)."""
    found = [
        r
        for r in app.router.routes
        if isinstance(r, APIRoute) and r.path == path and method in (r.methods or ())
    ]
    if len(found) != 1:
        raise LookupError(f"{caller}: {method} {path} matches {len(found)} routes")
    return found[0]


def promote(app: FastAPI, hot: Iterable[tuple[str, str]]) -> None:
    """Move the routes for these (method, path) pairs to the front, in the order given.

    Only routes that no earlier route could shadow are listed (distinct literal paths, or
    ``/api/{project_id}/envelope/``-style patterns nothing else has), so the order of matching
    changes nothing but speed.
    """
    routes = app.router.routes
    front = [_the_route(app, method, path, "promote") for method, path in hot]
    moved = {id(route) for route in front}
    rest = [r for r in routes if id(r) not in moved]
    routes[:] = front + rest
    app.router._mark_routes_changed()


PlainEndpoint = Callable[[Request], Awaitable[Response]]


def _plain_endpoint(route: APIRoute) -> PlainEndpoint:
    """``route``'s endpoint as a Starlette endpoint, ``endpoint(request)``.

    Only endpoints that FastAPI would call with nothing but the request and ``str`` path
    parameters qualify: those get exactly the same arguments here (no dependency, no body model,
    no query parameter to convert), so the two dispatchers cannot disagree.
    """
    endpoint: Callable[..., Awaitable[Response]] = route.endpoint
    params = list(inspect.signature(endpoint, eval_str=True).parameters.values())
    if not params or params[0].annotation is not Request:
        raise TypeError(f"{route.path}: the first parameter of {endpoint.__name__} is not Request")
    names = [p.name for p in params[1:]]
    for param in params[1:]:
        if param.name not in route.param_convertors or param.annotation is not str:
            raise TypeError(
                f"{route.path}: {endpoint.__name__}({param.name}) is not a str path parameter"
            )
    if not names:
        return endpoint

    async def call(request: Request) -> Response:
        path_params: dict[str, Any] = request.path_params
        return await endpoint(request, **{name: path_params[name] for name in names})

    return call


def plain_routes(app: FastAPI, hot: Iterable[tuple[str, str]]) -> None:
    """Serve these (method, path) pairs through a plain Starlette route placed at the front.

    FastAPI's per-route wrapper (dependency solving, two exit stacks, response validation) costs
    ~40-50 µs of CPU per request even for an endpoint that takes only the request, as much as a
    fifth of a single-event ingestion request. The single-event ingestion endpoints already take
    only the request, so they are served by ``starlette.routing.Route`` with the same function,
    the same path, name and exception handlers (Starlette's wrapper applies the app's handlers,
    like FastAPI's). The FastAPI route stays registered behind it: it is what the OpenAPI
    document describes, and it serves nothing else (the plain route matches first).
    """
    front: list[Route] = []
    for method, path in hot:
        route = _the_route(app, method, path, "plain_routes")
        plain = Route(
            route.path,
            _plain_endpoint(route),
            methods=[method],
            name=route.name,
            include_in_schema=False,
        )
        # Starlette adds HEAD to a GET route; FastAPI does not (HEAD must not collect an event).
        plain.methods = {method}
        front.append(plain)
    app.router.routes[:0] = front
    app.router._mark_routes_changed()
