"""Rules of the signed-in user's own account (``/api/v1/users/me``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gati.auth import repository as auth_repository
from gati.auth.models import User
from gati.auth.service import hash_password_async, normalize_email, verify_password_async
from gati.db.types import utcnow
from gati.exceptions import AppError
from gati.projects import repository as projects
from gati.users import repository
from gati.users.schemas import UserUpdate


def user_dict(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "full_name": user.full_name,
        "is_active": user.is_active,
        "created_at": user.created_at,
        "default_project_id": user.default_project_id,
    }


async def get_user(session: AsyncSession, user_id: int) -> User:
    user = await repository.get_by_id(session, user_id)
    if user is None:
        raise AppError(401, "token_revoked", "This account no longer exists")
    return user


async def update_user(
    session: AsyncSession, *, user_id: int, session_id: str | None, changes: UserUpdate
) -> User:
    user = await get_user(session, user_id)
    sent = changes.model_fields_set
    if changes.password is not None or changes.email is not None:
        assert changes.current_password is not None  # the schema requires it
        if not await verify_password_async(user.password_hash, changes.current_password):
            raise AppError(
                403, "wrong_password", "current_password: is not this account's password"
            )
    if changes.email is not None:
        email = normalize_email(changes.email)
        if email != user.email:
            other = await repository.get_by_email(session, email)
            if other is not None:
                raise AppError(409, "email_taken", f"email: {email} belongs to another account")
            user.email = email
    if "full_name" in sent:
        user.full_name = changes.full_name
    if changes.password is not None:
        user.password_hash = await hash_password_async(changes.password)
        # Whoever else is signed in with the old password is signed out; this session stays.
        await auth_repository.revoke_user_sessions(
            session,
            user_id=user.id,
            now=utcnow(),
            reason="password_changed",
            keep_session_id=session_id,
        )
    user.updated_at = utcnow()
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise AppError(409, "email_taken", "email: belongs to another account") from exc
    return user


async def delete_user(session: AsyncSession, *, user_id: int) -> list[int]:
    """Delete the account and the projects it alone owns (with all their data).

    Projects with another owner lose only this member. Sessions, refresh tokens and
    memberships go with the user row, so every token of the account stops working.
    Returns the ids of the deleted projects."""
    await get_user(session, user_id)
    doomed = await projects.projects_owned_alone(session, user_id=user_id)
    for project_id in doomed:
        await projects.delete_project(session, project_id=project_id)
    await repository.clear_default_project(session, project_ids=doomed)
    await repository.delete_user(session, user_id=user_id)
    return doomed
