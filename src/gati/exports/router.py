"""``/export/*``: configuration, manual and backfill runs, status (the seed's planned API)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from starlette.responses import Response

import gati.app as gati_app
from gati.apiparams import Id32
from gati.auth.deps import Reader
from gati.db.types import utcnow
from gati.deps import DatabaseDep, ReadSessionDep, SessionDep
from gati.exceptions import AppError
from gati.exports import jobs, service
from gati.exports.schemas import (
    ExportConfigIn,
    ExportConfigRead,
    ExportRunRead,
    ExportRunsRead,
    ExportStatusRead,
)
from gati.exports.service import ExportContext
from gati.exports.writers import ExportFormat
from gati.json import ORJSONResponse
from gati.projects import repository as projects
from gati.projects.models import Project
from gati.projects.service import get_project

log = logging.getLogger(__name__)
router = APIRouter(prefix="/export", tags=["exports"])


# --- lifecycle --------------------------------------------------------------------------------


async def _start(app: FastAPI) -> None:
    context = ExportContext.from_settings(app.state.settings)
    app.state.exports = context
    app.state.export_tasks = set()
    jobs.configure(context)


async def _stop(app: FastAPI) -> None:
    tasks: set[asyncio.Task[None]] = getattr(app.state, "export_tasks", set())
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


if _start not in gati_app.STARTUP_HOOKS:
    gati_app.STARTUP_HOOKS.append(_start)
    gati_app.SHUTDOWN_HOOKS.append(_stop)


def _context(request: Request) -> ExportContext:
    context: ExportContext = request.app.state.exports
    return context


ContextDep = Annotated[ExportContext, Depends(_context)]


async def get_export_project(request: Request, db: DatabaseDep, principal: Reader) -> Project:
    """The project whose exports are read or changed: ``?project=`` or the caller's own.

    Only readers of the project (its secret keys, its members) get here; public keys never do.
    """
    ref = request.query_params.get("project")
    async with db.read_session() as session:
        if ref:
            project = await get_project(session, ref)
            visible = project is not None and principal.may_read(project.id)
        else:
            if principal.project_id is None:
                raise AppError(
                    400,
                    "project_required",
                    "These credentials have no default project; name one with ?project=",
                )
            project = await projects.get_by_id(session, principal.project_id)
            visible = project is not None and principal.may_read(project.id)
    if project is None or not visible:
        raise AppError(
            404,
            "project_not_found",
            f"Project {ref or principal.project_id} does not exist or is not visible to "
            "these credentials",
        )
    return project


ExportProject = Annotated[Project, Depends(get_export_project)]


# --- endpoints ----------------------------------------------------------------------------------


@router.get("/config", response_model=ExportConfigRead)
async def read_config(
    project: ExportProject, session: ReadSessionDep, context: ContextDep
) -> ExportConfigRead:
    """The project's export configuration. Credentials are never returned."""
    return await service.read_config(session, project, context)


@router.put("/config", response_model=ExportConfigRead)
async def write_config(
    body: ExportConfigIn, project: ExportProject, session: SessionDep, context: ContextDep
) -> ExportConfigRead:
    """Set format, gzip, schedule and the primary/backup destinations (credentials encrypted)."""
    return await service.write_config(session, project, body, context)


@router.post("/run", response_model=ExportRunsRead)
async def run_export(
    request: Request,
    project: ExportProject,
    db: DatabaseDep,
    context: ContextDep,
    format: Annotated[ExportFormat | None, Query()] = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
    gzip: Annotated[bool | None, Query()] = None,
    wait: Annotated[bool, Query(description="Answer when the export is done")] = False,
) -> Response:
    """Export now. With ``since`` (and ``until``, default now): a backfill of that range to every
    destination, in ``format`` (default: the configured one); watermarks are not touched.
    Without: the scheduled catch-up of every closed window the destinations wait for.
    ``wait=false`` (default) answers 202 at once; follow the run with GET /export/status."""
    tasks: set[asyncio.Task[None]] = request.app.state.export_tasks
    if since is None and until is None:
        if format is not None or gzip is not None:
            raise AppError(
                422,
                "validation_error",
                "since: format and gzip apply to a backfill; give since (and until)",
            )
        catch_up = service.run_scheduled_for_project(db, context, project_id=project.id)
        if wait:
            runs = await catch_up
            body = ExportRunsRead(runs=[service.run_read(r) for r in runs])
            return ORJSONResponse(body.model_dump(mode="json"))
        _spawn(tasks, catch_up)
        return ORJSONResponse({"runs": []}, status_code=202)
    if since is None:
        raise AppError(422, "validation_error", "since: required when until is given")
    run, rows = await service.start_manual_run(
        db,
        project=project,
        fmt=format,
        gzip_output=gzip,
        since=since,
        until=until or utcnow(),
    )
    job = service.run_manual(db, context, run=run, site=project.slug, rows=rows)
    if wait:
        finished = await job
        return ORJSONResponse({"runs": [service.run_read(finished).model_dump(mode="json")]})
    _spawn(tasks, job)
    return ORJSONResponse(
        {"runs": [service.run_read(run).model_dump(mode="json")]}, status_code=202
    )


def _spawn(tasks: set[asyncio.Task[None]], work: Coroutine[Any, Any, Any]) -> None:
    async def runner() -> None:
        try:
            await work
        except Exception:
            log.exception("background export failed")

    task = asyncio.create_task(runner(), name="export-run")
    tasks.add(task)
    task.add_done_callback(tasks.discard)


@router.get("/status", response_model=ExportStatusRead)
async def read_status(
    project: ExportProject, session: ReadSessionDep, context: ContextDep
) -> ExportStatusRead:
    """Last runs, next run, per-destination state (watermark, pending windows) and errors."""
    return await service.read_status(session, project, context)


@router.get("/runs/{run_id}", response_model=ExportRunRead)
async def read_run(run_id: Id32, project: ExportProject, session: ReadSessionDep) -> ExportRunRead:
    return await service.get_run(session, project_id=project.id, run_id=run_id)
