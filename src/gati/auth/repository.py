"""All SQL of sign-in sessions and refresh tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gati.auth.models import AuthSession, RefreshToken


async def add_session(session: AsyncSession, *, session_id: str, user_id: int) -> AuthSession:
    auth_session = AuthSession(id=session_id, user_id=user_id)
    session.add(auth_session)
    await session.flush()
    return auth_session


async def add_refresh_token(
    session: AsyncSession, *, token_id: str, session_id: str, user_id: int, expires_at: datetime
) -> None:
    session.add(
        RefreshToken(id=token_id, session_id=session_id, user_id=user_id, expires_at=expires_at)
    )
    await session.flush()


async def get_refresh_token(
    session: AsyncSession, token_id: str
) -> tuple[RefreshToken, AuthSession] | None:
    stmt = (
        select(RefreshToken, AuthSession)
        .join(AuthSession, AuthSession.id == RefreshToken.session_id)
        .where(RefreshToken.id == token_id)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else (row[0], row[1])


async def mark_refresh_token_used(session: AsyncSession, *, token_id: str, now: datetime) -> bool:
    """Atomically claim a refresh token: True for the first use only, even under concurrency."""
    stmt = (
        update(RefreshToken)
        .where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
    )
    result: CursorResult[tuple[()]] = await session.execute(stmt)  # type: ignore[assignment]
    return result.rowcount == 1


async def revoke_session(
    session: AsyncSession, *, session_id: str, now: datetime, reason: str
) -> None:
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )


async def revoke_user_sessions(
    session: AsyncSession,
    *,
    user_id: int,
    now: datetime,
    reason: str,
    keep_session_id: str | None = None,
) -> None:
    """Revoke every live session of a user (except ``keep_session_id``)."""
    stmt = update(AuthSession).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
    )
    if keep_session_id is not None:
        stmt = stmt.where(AuthSession.id != keep_session_id)
    await session.execute(stmt.values(revoked_at=now, revoked_reason=reason))
