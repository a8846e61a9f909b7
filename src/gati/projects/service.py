"""Rules for projects and their keys (used by the CLI, the auth dependencies and the HTTP API)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gati.apiparams import INT32_MAX
from gati.auth.security import hash_api_key, new_public_key, new_secret_key
from gati.db.types import utcnow
from gati.exceptions import AppError
from gati.projects import repository
from gati.projects.models import ApiKey, Project, ProjectMember

if TYPE_CHECKING:
    from gati.auth.deps import Principal
    from gati.auth.models import User

DEFAULT_PROJECT_SLUG = "default"
_SLUG_RE = re.compile(r"[^a-z0-9._-]+")


def slugify(name: str) -> str:
    slug = _SLUG_RE.sub("-", name.strip().lower()).strip("-")
    return slug[:100] or "project"


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str  # shown once


async def create_project(
    session: AsyncSession,
    *,
    name: str,
    slug: str | None = None,
    owner_id: int | None = None,
    settings: dict[str, object] | None = None,
    with_secret_key: bool = True,
) -> tuple[Project, CreatedKey | None]:
    slug = slugify(slug or name)
    if await repository.get_by_slug(session, slug) is not None:
        raise AppError(409, "project_exists", f"A project with slug {slug!r} already exists")
    project = Project(slug=slug, name=name, public_key=new_public_key(), settings=settings or {})
    session.add(project)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise AppError(
            409, "project_exists", f"A project with slug {slug!r} already exists"
        ) from exc
    if owner_id is not None:
        session.add(ProjectMember(project_id=project.id, user_id=owner_id, role="owner"))
    created = await create_key(session, project_id=project.id) if with_secret_key else None
    await session.flush()
    return project, created


async def create_key(
    session: AsyncSession, *, project_id: int, name: str = "default"
) -> CreatedKey:
    secret = new_secret_key()
    key = ApiKey(
        project_id=project_id, name=name, prefix=secret[:10], key_hash=hash_api_key(secret)
    )
    session.add(key)
    await session.flush()
    return CreatedKey(key=key, secret=secret)


async def revoke_key(session: AsyncSession, *, project_id: int, key_id: int) -> None:
    if not await repository.revoke_key(session, project_id=project_id, key_id=key_id, now=utcnow()):
        raise AppError(
            404,
            "key_not_found",
            f"Key {key_id} of project {project_id} does not exist or is already revoked",
        )


async def get_or_create_by_slug(
    session: AsyncSession, *, slug: str, name: str | None = None
) -> Project:
    """Local mode: seeds 000/002/003 create projects on first use. Safe under concurrency."""
    project = await repository.get_by_slug(session, slug)
    if project is not None:
        return project
    try:
        async with session.begin_nested():
            project, _ = await create_project(
                session, name=name or slug, slug=slug, with_secret_key=False
            )
        return project
    except (IntegrityError, AppError):
        project = await repository.get_by_slug(session, slug)
        if project is None:
            raise
        return project


def project_id_of(project_ref: str | int) -> int | None:
    """The project id a reference spells: an int, or plain ASCII digits, within the range of
    ``projects.id`` (an INTEGER column). Any other reference can only be a slug or a key."""
    if isinstance(project_ref, str):
        if not (project_ref.isascii() and project_ref.isdigit() and len(project_ref) <= 10):
            return None
        project_ref = int(project_ref)
    return project_ref if 0 < project_ref <= INT32_MAX else None


async def get_project(session: AsyncSession, project_ref: str | int) -> Project | None:
    """Resolve a project by id, slug or public key. A number no project id can be (beyond the
    INTEGER column) is looked up as a slug only, never sent to the database as an id."""
    if isinstance(project_ref, str) and "\x00" in project_ref:
        return None  # no project has one (and PostgreSQL refuses the parameter)
    project_id = project_id_of(project_ref)
    if project_id is not None:
        found = await repository.get_by_id(session, project_id)
        if found is not None:
            return found
    ref = str(project_ref)
    if ref.startswith("pk_"):
        return await repository.get_by_public_key(session, ref)
    return await repository.get_by_slug(session, ref)


# --- HTTP API: /api/v1/projects (who may see and manage what) ------------------------------


def project_view(
    project: Project, *, role: str | None, default_project_id: int | None
) -> dict[str, object]:
    return {
        "id": project.id,
        "slug": project.slug,
        "name": project.name,
        "public_key": project.public_key,
        "role": role,
        "is_default": project.id == default_project_id,
        "created_at": project.created_at,
    }


async def role_of(session: AsyncSession, principal: Principal, project_id: int) -> str | None:
    if principal.kind != "user" or principal.user_id is None:
        return None
    member = await repository.get_member(session, project_id=project_id, user_id=principal.user_id)
    return member.role if member is not None else None


async def visible_project(session: AsyncSession, principal: Principal, ref: str) -> Project:
    """The project named by ``ref`` (id, slug or public key) if the caller may read it, else 404."""
    project = await get_project(session, ref)
    if project is None or not principal.may_read(project.id):
        raise AppError(
            404,
            "project_not_found",
            f"Project {ref} does not exist or is not visible to these credentials",
        )
    return project


def _may_manage(principal: Principal, role: str | None) -> bool:
    # Local mode without credentials is the single-user embedded server: it manages everything.
    return principal.kind == "local" or role == "owner"


async def managed_project(session: AsyncSession, principal: Principal, ref: str) -> Project:
    """The project if the caller owns it (403 if only visible, 404 if not visible)."""
    project = await visible_project(session, principal, ref)
    if not _may_manage(principal, await role_of(session, principal, project.id)):
        raise AppError(
            403, "owner_required", f"Only an owner of project {project.slug} may do this"
        )
    return project


async def member_project(session: AsyncSession, principal: Principal, ref: str) -> Project:
    """The project if the caller is a member (user) or local; keys may not see members/keys."""
    project = await visible_project(session, principal, ref)
    if principal.kind not in ("user", "local"):
        raise AppError(
            403, "user_token_required", "Members and keys are visible to signed-in members only"
        )
    return project


async def list_visible(session: AsyncSession, principal: Principal) -> list[dict[str, object]]:
    if principal.kind == "user" and principal.user_id is not None:
        rows = await repository.list_with_roles(session, user_id=principal.user_id)
        return [
            project_view(p, role=role, default_project_id=principal.project_id) for p, role in rows
        ]
    ids = None if principal.readable_project_ids is None else sorted(principal.readable_project_ids)
    return [
        project_view(p, role=None, default_project_id=principal.project_id)
        for p in await repository.list_projects(session, ids=ids)
    ]


async def create_for(
    session: AsyncSession, principal: Principal, *, name: str, slug: str | None
) -> dict[str, object]:
    if principal.kind not in ("user", "local"):
        raise AppError(401, "user_token_required", "Creating a project needs a user access token")
    owner = principal.user_id if principal.kind == "user" else None
    project, key = await create_project(session, name=name, slug=slug, owner_id=owner)
    view = project_view(
        project, role="owner" if owner else None, default_project_id=principal.project_id
    )
    view["secret_key"] = key.secret if key else None
    return view


async def update_for(
    session: AsyncSession, principal: Principal, ref: str, *, name: str | None, slug: str | None
) -> dict[str, object]:
    project = await managed_project(session, principal, ref)
    if slug is not None and slug != project.slug:
        if await repository.get_by_slug(session, slug) is not None:
            raise AppError(409, "project_exists", f"slug: a project {slug!r} already exists")
        project.slug = slug
    if name is not None:
        project.name = name
    project.updated_at = utcnow()
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise AppError(409, "project_exists", f"slug: a project {slug!r} already exists") from exc
    return project_view(
        project,
        role=await role_of(session, principal, project.id),
        default_project_id=principal.project_id,
    )


async def delete_for(session: AsyncSession, principal: Principal, ref: str) -> None:
    from gati.users import repository as users

    project = await managed_project(session, principal, ref)
    await repository.delete_project(session, project_id=project.id)
    await users.clear_default_project(session, project_ids=[project.id])


def member_view(member: ProjectMember, user: User) -> dict[str, object]:
    return {
        "user_id": user.id,
        "email": user.email,
        "full_name": user.full_name,
        "role": member.role,
        "created_at": member.created_at,
    }


async def list_members_for(
    session: AsyncSession, principal: Principal, ref: str
) -> list[dict[str, object]]:
    project = await member_project(session, principal, ref)
    return [
        member_view(m, u) for m, u in await repository.list_members(session, project_id=project.id)
    ]


async def add_member_for(
    session: AsyncSession, principal: Principal, ref: str, *, email: str, role: str
) -> dict[str, object]:
    from gati.users import repository as users

    project = await managed_project(session, principal, ref)
    user = await users.get_by_email(session, email.strip().lower())
    if user is None:
        raise AppError(
            404, "user_not_found", f"email: no account uses {email}; ask them to register first"
        )
    if await repository.get_member(session, project_id=project.id, user_id=user.id) is not None:
        raise AppError(409, "already_member", f"{email} is already a member of {project.slug}")
    member = await repository.add_member(session, project_id=project.id, user_id=user.id, role=role)
    return member_view(member, user)


async def _member_or_404(session: AsyncSession, project: Project, user_id: int) -> ProjectMember:
    member = await repository.get_member(session, project_id=project.id, user_id=user_id)
    if member is None:
        raise AppError(
            404, "member_not_found", f"User {user_id} is not a member of project {project.slug}"
        )
    return member


async def _keep_an_owner(session: AsyncSession, project: Project, member: ProjectMember) -> None:
    if (
        member.role == "owner"
        and await repository.count_owners(session, project_id=project.id) <= 1
    ):
        raise AppError(
            409,
            "last_owner",
            f"User {member.user_id} is the last owner of {project.slug}; make someone else an "
            "owner first, or delete the project",
        )


async def set_member_role_for(
    session: AsyncSession, principal: Principal, ref: str, *, user_id: int, role: str
) -> dict[str, object]:
    from gati.users import repository as users

    project = await managed_project(session, principal, ref)
    member = await _member_or_404(session, project, user_id)
    if role != "owner":
        await _keep_an_owner(session, project, member)
    member.role = role
    await session.flush()
    user = await users.get_by_id(session, user_id)
    assert user is not None
    return member_view(member, user)


async def remove_member_for(
    session: AsyncSession, principal: Principal, ref: str, *, user_id: int
) -> None:
    project = await visible_project(session, principal, ref)
    leaving_self = principal.kind == "user" and principal.user_id == user_id
    if not leaving_self:
        project = await managed_project(session, principal, ref)
    member = await _member_or_404(session, project, user_id)
    await _keep_an_owner(session, project, member)
    await repository.remove_member(session, project_id=project.id, user_id=user_id)


def key_view(key: ApiKey) -> dict[str, object]:
    return {
        "id": key.id,
        "project_id": key.project_id,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
    }


async def list_keys_for(
    session: AsyncSession, principal: Principal, ref: str
) -> list[dict[str, object]]:
    project = await member_project(session, principal, ref)
    return [key_view(k) for k in await repository.list_keys(session, project_id=project.id)]


async def create_key_for(
    session: AsyncSession, principal: Principal, ref: str, *, name: str
) -> dict[str, object]:
    project = await managed_project(session, principal, ref)
    created = await create_key(session, project_id=project.id, name=name)
    return {**key_view(created.key), "key": created.secret}


async def revoke_key_for(
    session: AsyncSession, principal: Principal, ref: str, *, key_id: int
) -> None:
    project = await managed_project(session, principal, ref)
    await revoke_key(session, project_id=project.id, key_id=key_id)
