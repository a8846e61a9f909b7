"""``create_app(settings)``: lifespan (database, migrations, group commit, jobs), routers, errors."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI
from sqlalchemy.exc import DataError, DBAPIError, OperationalError, StatementError
from starlette.requests import Request
from starlette.responses import Response

from gati import health
from gati.db import migrate
from gati.db.engine import Database
from gati.db.statistics import FirstStatistics
from gati.exceptions import error_response, install_error_handlers
from gati.ingest.groupcommit import GroupCommitter
from gati.ingest.nul import NUL_REASON, NUL_SQLSTATES, RefuseNulInUrl
from gati.jobs.registry import InProcessRunner
from gati.logging_setup import AccessLogMiddleware
from gati.process_tuning import tune_process
from gati.projects import service as projects
from gati.routing import include_flat, plain_routes, promote
from gati.settings import Settings
from gati.tracing.router import router as tracing_router
from gati.web.cors import PublicPathsCORSMiddleware

log = logging.getLogger("gati")

# Domain start-up hooks: async (app) -> None, run after the database is ready (register batch
# writers on the group committer, open Redis, ...). Shutdown hooks run in reverse order.
StartupHook = Callable[[FastAPI], Awaitable[None]]
STARTUP_HOOKS: list[StartupHook] = []
SHUTDOWN_HOOKS: list[StartupHook] = []


def _include_routers(app: FastAPI, settings: Settings) -> None:
    # Imported here: these modules append start-up hooks to this module's lists.
    from gati.auth.router import install_api_docs
    from gati.auth.router import router as auth_router
    from gati.errors.router import router as errors_router
    from gati.errors.router import sentry_router
    from gati.events.router import router as events_router
    from gati.exports.router import router as exports_router
    from gati.live.router import router as live_router
    from gati.metrics.router import router as metrics_router
    from gati.projects.router import router as projects_router
    from gati.tracing.otlp_router import router as otlp_router
    from gati.tracing.pricing_router import router as pricing_router  # registers the cost hook
    from gati.users.router import router as users_router
    from gati.web.router import router as web_router

    api = settings.api_prefix
    for router, prefix in (
        (health.router, ""),
        (sentry_router, ""),
        (events_router, "/api/v1"),
        (web_router, ""),
        (metrics_router, "/api/v1"),
        (live_router, "/api/v1"),
        (tracing_router, api),
        (pricing_router, api),
        (otlp_router, ""),
        (exports_router, ""),
        (errors_router, "/api/v1"),
        (auth_router, "/api/v1"),
        (users_router, "/api/v1"),
        (projects_router, "/api/v1"),
    ):
        include_flat(app, router, prefix)
    install_api_docs(app)
    # Routes are matched in order: the ingestion endpoints first.
    promote(
        app,
        [
            ("POST", f"{api}/events"),
            ("POST", "/v1/traces"),
            ("POST", "/api/v1/events/batch"),
        ],
    )
    # The single-event ones (endpoints that take only the request) in front of those, served
    # without FastAPI's per-route wrapper.
    plain_routes(app, SINGLE_EVENT_ROUTES)


SINGLE_EVENT_ROUTES = (
    ("POST", "/api/v1/events"),
    ("POST", "/collect"),
    ("POST", "/api/v1/metrics"),
    ("POST", "/api/{project_id}/envelope/"),
    ("POST", "/api/{project_id}/store/"),
    ("GET", "/collect"),
)


async def ensure_default_project(db: Database) -> int:
    async with db.session() as session:
        project = await projects.get_or_create_by_slug(
            session, slug=projects.DEFAULT_PROJECT_SLUG, name="Default project"
        )
        return project.id


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    db = Database(settings.resolved_database_url, settings)
    app.state.db = db
    if os.environ.get("GATI_SKIP_MIGRATIONS") != "1" and settings.env != "production":
        await migrate.upgrade(db.url)
    app.state.default_project_id = await ensure_default_project(db) if settings.is_local else None
    committer = GroupCommitter(
        db,
        max_batch=settings.group_commit_max_batch,
        queue_limit=settings.ingest_queue_limit,
        concurrency=settings.group_commit_writers or (1 if db.dialect == "sqlite" else 2),
    )
    app.state.committer = committer
    app.state.health_checks = {}
    for hook in STARTUP_HOOKS:
        await hook(app)
    tune_process(db.dialect)
    committer.start()
    runner: InProcessRunner | None = None
    if settings.run_jobs_in_process:
        runner = InProcessRunner(db)
        runner.start()
    statistics = FirstStatistics(db) if db.dialect == "postgresql" else None
    if statistics is not None:
        statistics.start()
    if settings.is_local:
        log.info(
            "local mode: requests without credentials use the default project; "
            "set ENVIRONMENT=production to require keys and tokens"
        )
    try:
        yield
    finally:
        if statistics is not None:
            await statistics.stop()
        if runner is not None:
            await runner.stop()
        await committer.stop()
        for hook in reversed(SHUTDOWN_HOOKS):
            await hook(app)
        await db.dispose()


def _database_unavailable(_: Request, exc: Exception) -> Response:
    log.warning("database unavailable: %s", exc)
    return error_response(
        503,
        "database_unavailable",
        "The database is unreachable; nothing was stored. Retry after the delay in Retry-After",
        {"Retry-After": "5"},
    )


def _out_of_range(exc: Exception) -> Response:
    """A value from the request that a column, a date or the driver cannot hold (sqlite3 and
    datetime raise ``OverflowError``; PostgreSQL a data exception). Validation should have said
    so first; this is the safety net, logged so that the missing check gets added."""
    log.warning("value out of range reached the storage layer: %s", exc, exc_info=exc)
    return error_response(
        400,
        "value_out_of_range",
        "A number or date in the request is outside the range Gati can store or compare",
    )


def _is_data_error(exc: BaseException) -> bool:
    """A value the database (or asyncpg, before sending it) refused: SQLSTATE class 22, or
    asyncpg's own ``DataError`` (an int beyond int64), which SQLAlchemy wraps generically."""
    if isinstance(exc, DataError):
        return True
    current: BaseException | None = getattr(exc, "orig", None)
    while current is not None:
        if isinstance(current, asyncpg.exceptions.DataError):
            return True
        if str(getattr(current, "sqlstate", "") or "").startswith("22"):
            return True
        current = current.__cause__
    return False


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (ConnectionError, OSError, TimeoutError))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        title=settings.app_name,
        version=settings.app_version,
        debug=settings.debug,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
        telemetry=None
        if settings.server_telemetry
        else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    install_error_handlers(app)

    async def db_errors(request: Request, exc: Exception) -> Response:
        if _is_connection_error(exc):
            return _database_unavailable(request, exc)
        if getattr(getattr(exc, "orig", None), "sqlstate", None) in NUL_SQLSTATES:
            # A NUL character that no route check caught (the ingestion routes refuse it
            # per item first): the client's input, not a server fault.
            return error_response(
                400, "nul_character", f"A value in the request {NUL_REASON}; remove it"
            )
        if _is_data_error(exc):
            # The database refused a value (a number beyond its column, a date beyond its
            # range) that no validation caught: still the client's input, so a 4xx.
            return _out_of_range(exc)
        log.exception("unhandled database error", exc_info=exc)
        return error_response(500, "internal_error", "An internal error occurred; it was logged")

    async def overflow(request: Request, exc: Exception) -> Response:
        return _out_of_range(exc)

    async def statement_error(request: Request, exc: Exception) -> Response:
        # Raised by SQLAlchemy while binding a parameter (a type's bind processor failed).
        if isinstance(getattr(exc, "orig", None), OverflowError):
            return _out_of_range(exc)
        log.exception("unhandled statement error", exc_info=exc)
        return error_response(500, "internal_error", "An internal error occurred; it was logged")

    app.add_exception_handler(DBAPIError, db_errors)
    app.add_exception_handler(OverflowError, overflow)
    app.add_exception_handler(StatementError, statement_error)
    app.add_exception_handler(ConnectionError, db_errors)
    app.add_exception_handler(OSError, db_errors)
    app.add_exception_handler(TimeoutError, db_errors)
    _include_routers(app, settings)
    app.add_middleware(RefuseNulInUrl)
    app.add_middleware(
        PublicPathsCORSMiddleware,  # type: ignore[arg-type]  # Starlette types Scope as MutableMapping
        allow_origins=settings.cors_origins,
        allow_credentials=settings.cors_allow_credentials and "*" not in settings.cors_origins,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["Retry-After", "X-Sentry-Rate-Limits"],
    )
    app.add_middleware(AccessLogMiddleware)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (each worker builds its own settings from the env)."""
    return create_app(Settings())
