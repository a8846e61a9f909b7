"""HTTP layer of projects, their members and their secret keys: ``/api/v1/projects``.

``{project}`` in a path is a project id, slug or public key. Projects the caller may not read
are 404 (their existence is not revealed); visible projects the caller may not manage are 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gati.apiparams import Id32
from gati.auth.deps import CurrentPrincipal, Reader, forget_keys
from gati.deps import AfterCommitDep, ReadSessionDep, SessionDep
from gati.errors.envelope import build_dsn
from gati.json import ORJSONResponse
from gati.projects import service
from gati.projects.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    MemberAdd,
    MemberRead,
    MemberUpdate,
    ProjectCreate,
    ProjectCreated,
    ProjectRead,
    ProjectUpdate,
)

router = APIRouter(prefix="/projects", tags=["projects"])


def _forget_keys(request: Request) -> Callable[[], Awaitable[None]]:
    """After the commit: cached keys are checked again (a revoked key stops working at once)."""

    async def forget() -> None:
        forget_keys(request.app)

    return forget


def _with_dsn(request: Request, view: dict[str, Any]) -> dict[str, Any]:
    """The Sentry DSN of the project: ``<scheme>://<public key>@<host>/<project id>``, on
    ``PUBLIC_URL`` when it is set (behind a proxy the request's own URL is the internal one)."""
    base = request.app.state.settings.public_url or str(request.base_url)
    view["dsn"] = build_dsn(base_url=base, public_key=view["public_key"], project_id=view["id"])
    return view


@router.get("", response_model=list[ProjectRead], summary="Projects you can read")
async def list_projects(request: Request, principal: Reader, session: ReadSessionDep) -> Response:
    views = await service.list_visible(session, principal)
    return ORJSONResponse([_with_dsn(request, v) for v in views])


@router.post(
    "",
    status_code=201,
    response_model=ProjectCreated,
    summary="Create a project (you become its owner; its first secret key is shown once)",
)
async def create_project(
    request: Request, body: ProjectCreate, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    view = await service.create_for(session, principal, name=body.name, slug=body.slug)
    return ORJSONResponse(_with_dsn(request, view), status_code=201)


@router.get("/{project}", response_model=ProjectRead, summary="One project")
async def get_project(
    request: Request, project: str, principal: Reader, session: ReadSessionDep
) -> Response:
    found = await service.visible_project(session, principal, project)
    view = service.project_view(
        found,
        role=await service.role_of(session, principal, found.id),
        default_project_id=principal.project_id,
    )
    return ORJSONResponse(_with_dsn(request, view))


async def _update(
    request: Request, project: str, body: ProjectUpdate, principal: Any, session: Any
) -> Response:
    view = await service.update_for(session, principal, project, name=body.name, slug=body.slug)
    return ORJSONResponse(_with_dsn(request, view))


@router.patch("/{project}", response_model=ProjectRead, summary="Rename a project (owners)")
async def patch_project(
    request: Request,
    project: str,
    body: ProjectUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> Response:
    return await _update(request, project, body, principal, session)


@router.put("/{project}", response_model=ProjectRead, summary="Rename a project (owners)")
async def put_project(
    request: Request,
    project: str,
    body: ProjectUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> Response:
    return await _update(request, project, body, principal, session)


@router.delete(
    "/{project}",
    status_code=204,
    summary="Delete a project and all its data (owners)",
)
async def delete_project(
    request: Request,
    project: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    after: AfterCommitDep,
) -> Response:
    await service.delete_for(session, principal, project)
    after.add(_forget_keys(request))
    return Response(status_code=204)


# --- members -------------------------------------------------------------------------------


@router.get("/{project}/members", response_model=list[MemberRead], summary="Members")
async def list_members(project: str, principal: Reader, session: ReadSessionDep) -> Response:
    return ORJSONResponse(await service.list_members_for(session, principal, project))


@router.post(
    "/{project}/members",
    status_code=201,
    response_model=MemberRead,
    summary="Add a registered user as owner or member (owners)",
)
async def add_member(
    project: str, body: MemberAdd, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    member = await service.add_member_for(
        session, principal, project, email=str(body.email), role=body.role
    )
    return ORJSONResponse(member, status_code=201)


@router.patch(
    "/{project}/members/{user_id}",
    response_model=MemberRead,
    summary="Change a member's role (owners; a project keeps at least one owner)",
)
async def update_member(
    project: str,
    user_id: Id32,
    body: MemberUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> Response:
    member = await service.set_member_role_for(
        session, principal, project, user_id=user_id, role=body.role
    )
    return ORJSONResponse(member)


@router.delete(
    "/{project}/members/{user_id}",
    status_code=204,
    summary="Remove a member (owners), or leave a project (yourself)",
)
async def remove_member(
    project: str, user_id: Id32, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    await service.remove_member_for(session, principal, project, user_id=user_id)
    return Response(status_code=204)


# --- secret keys ---------------------------------------------------------------------------


@router.get("/{project}/keys", response_model=list[ApiKeyRead], summary="Secret keys (no secrets)")
async def list_keys(project: str, principal: Reader, session: ReadSessionDep) -> Response:
    return ORJSONResponse(await service.list_keys_for(session, principal, project))


@router.post(
    "/{project}/keys",
    status_code=201,
    response_model=ApiKeyCreated,
    summary="Create a secret key (owners); the key is in this response only",
)
async def create_key(
    project: str, principal: CurrentPrincipal, session: SessionDep, body: ApiKeyCreate | None = None
) -> Response:
    name = body.name if body is not None else "default"
    return ORJSONResponse(
        await service.create_key_for(session, principal, project, name=name), status_code=201
    )


@router.delete(
    "/{project}/keys/{key_id}",
    status_code=204,
    summary="Revoke a secret key (owners); it stops working at once",
)
async def revoke_key(
    request: Request,
    project: str,
    key_id: Id32,
    principal: CurrentPrincipal,
    session: SessionDep,
    after: AfterCommitDep,
) -> Response:
    await service.revoke_key_for(session, principal, project, key_id=key_id)
    after.add(_forget_keys(request))
    return Response(status_code=204)
