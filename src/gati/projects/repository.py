"""All SQL for projects, members and API keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gati.auth.models import User
from gati.db import models_registry  # noqa: F401  (every table in Base.metadata)
from gati.db.base import DELETE_WITH_PROJECT, Base
from gati.projects.models import ApiKey, Project, ProjectMember


async def get_by_id(session: AsyncSession, project_id: int) -> Project | None:
    return await session.get(Project, project_id)


async def get_by_slug(session: AsyncSession, slug: str) -> Project | None:
    return (await session.execute(select(Project).where(Project.slug == slug))).scalar_one_or_none()


async def get_by_public_key(session: AsyncSession, public_key: str) -> Project | None:
    stmt = select(Project).where(Project.public_key == public_key)
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_key_by_hash(session: AsyncSession, key_hash: str) -> ApiKey | None:
    stmt = select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_projects(
    session: AsyncSession, *, ids: Sequence[int] | None = None
) -> list[Project]:
    stmt = select(Project).order_by(Project.id)
    if ids is not None:
        stmt = stmt.where(Project.id.in_(list(ids)))
    return list((await session.execute(stmt)).scalars())


async def list_member_project_ids(session: AsyncSession, *, user_id: int) -> list[int]:
    stmt = select(ProjectMember.project_id).where(ProjectMember.user_id == user_id)
    return list((await session.execute(stmt)).scalars())


async def get_member(
    session: AsyncSession, *, project_id: int, user_id: int
) -> ProjectMember | None:
    return await session.get(ProjectMember, (project_id, user_id))


async def list_keys(session: AsyncSession, *, project_id: int) -> list[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.project_id == project_id).order_by(ApiKey.id)
    return list((await session.execute(stmt)).scalars())


async def revoke_key(session: AsyncSession, *, project_id: int, key_id: int, now: datetime) -> bool:
    stmt = (
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.project_id == project_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


# --- HTTP API (projects, members, keys over /api/v1/projects) -------------------------------


async def list_with_roles(session: AsyncSession, *, user_id: int) -> list[tuple[Project, str]]:
    """The user's projects with their role in each."""
    stmt = (
        select(Project, ProjectMember.role)
        .join(ProjectMember, ProjectMember.project_id == Project.id)
        .where(ProjectMember.user_id == user_id)
        .order_by(Project.id)
    )
    return [(row[0], row[1]) for row in await session.execute(stmt)]


async def list_members(
    session: AsyncSession, *, project_id: int
) -> list[tuple[ProjectMember, User]]:
    stmt = (
        select(ProjectMember, User)
        .join(User, User.id == ProjectMember.user_id)
        .where(ProjectMember.project_id == project_id)
        .order_by(ProjectMember.created_at, ProjectMember.user_id)
    )
    return [(row[0], row[1]) for row in await session.execute(stmt)]


async def add_member(
    session: AsyncSession, *, project_id: int, user_id: int, role: str
) -> ProjectMember:
    member = ProjectMember(project_id=project_id, user_id=user_id, role=role)
    session.add(member)
    await session.flush()
    return member


async def remove_member(session: AsyncSession, *, project_id: int, user_id: int) -> bool:
    stmt = delete(ProjectMember).where(
        ProjectMember.project_id == project_id, ProjectMember.user_id == user_id
    )
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def count_owners(session: AsyncSession, *, project_id: int) -> int:
    stmt = select(func.count()).where(
        ProjectMember.project_id == project_id, ProjectMember.role == "owner"
    )
    return int((await session.execute(stmt)).scalar_one())


async def projects_owned_alone(session: AsyncSession, *, user_id: int) -> list[int]:
    """Projects where ``user_id`` is the only owner."""
    other_owner = (
        select(ProjectMember.project_id)
        .where(ProjectMember.role == "owner", ProjectMember.user_id != user_id)
        .scalar_subquery()
    )
    stmt = select(ProjectMember.project_id).where(
        ProjectMember.user_id == user_id,
        ProjectMember.role == "owner",
        ProjectMember.project_id.not_in(other_owner),
    )
    return list((await session.execute(stmt)).scalars())


async def delete_project(session: AsyncSession, *, project_id: int) -> None:
    """Delete a project; every table of its data goes with it: by ON DELETE CASCADE, or here for
    the event tables that carry no foreign key (:data:`DELETE_WITH_PROJECT`)."""
    for table in Base.metadata.sorted_tables:
        if table.info.get(DELETE_WITH_PROJECT):
            await session.execute(delete(table).where(table.c.project_id == project_id))
    await session.execute(delete(Project).where(Project.id == project_id))


async def get_key(session: AsyncSession, *, project_id: int, key_id: int) -> ApiKey | None:
    stmt = select(ApiKey).where(ApiKey.id == key_id, ApiKey.project_id == project_id)
    return (await session.execute(stmt)).scalar_one_or_none()
