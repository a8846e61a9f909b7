"""All SQL of users."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gati.auth.models import User


async def get_by_id(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    stmt = select(User).where(User.email == email)
    return (await session.execute(stmt)).scalar_one_or_none()


async def add(
    session: AsyncSession, *, email: str, password_hash: str, full_name: str | None
) -> User:
    user = User(email=email, password_hash=password_hash, full_name=full_name, is_active=True)
    session.add(user)
    await session.flush()
    return user


async def clear_default_project(session: AsyncSession, *, project_ids: Sequence[int]) -> None:
    """Users whose personal project is gone fall back to another project of theirs."""
    if project_ids:
        await session.execute(
            update(User)
            .where(User.default_project_id.in_(list(project_ids)))
            .values(default_project_id=None)
        )


async def delete_user(session: AsyncSession, *, user_id: int) -> None:
    """Delete the user; sessions, refresh tokens and memberships go with it (ON DELETE CASCADE)."""
    await session.execute(delete(User).where(User.id == user_id))
