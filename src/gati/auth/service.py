"""Rules of sign-up, sign-in, refresh-token rotation and sign-out.

- A sign-in is an ``AuthSession``: the family of refresh tokens it rotates through. Access tokens
  carry its id, so revoking the session invalidates its access tokens at once.
- Every refresh uses up the presented refresh token and issues a new pair. Presenting a used
  refresh token again means it was copied: the whole family (session) is revoked, so both the
  thief and the owner must sign in again.
- Login runs one argon2 verification whether or not the email exists (a dummy hash stands in),
  so its timing does not tell which emails have accounts.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gati.auth import repository
from gati.auth.models import User
from gati.auth.security import decode_token, hash_password, issue_token, verify_password
from gati.db.types import utcnow
from gati.exceptions import AppError
from gati.projects import service as projects
from gati.settings import Settings
from gati.users import repository as users


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int

    def as_dict(self) -> dict[str, object]:
        return {
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "refresh_expires_in": self.refresh_expires_in,
        }


def normalize_email(email: str) -> str:
    """Emails are unique case-insensitively: stored and looked up in lower case."""
    return email.strip().lower()


async def hash_password_async(password: str) -> str:
    # argon2 takes tens of milliseconds of CPU and releases the GIL: keep the event loop free.
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    return await asyncio.to_thread(verify_password, password_hash, password)


async def issue_pair(
    session: AsyncSession, settings: Settings, *, user_id: int, session_id: str
) -> TokenPair:
    access, _ = issue_token(
        secret=settings.secret_key,
        user_id=user_id,
        session_id=session_id,
        token_type="access",
        ttl_seconds=settings.access_token_ttl_seconds,
    )
    refresh, claims = issue_token(
        secret=settings.secret_key,
        user_id=user_id,
        session_id=session_id,
        token_type="refresh",
        ttl_seconds=settings.refresh_token_ttl_seconds,
    )
    await repository.add_refresh_token(
        session,
        token_id=claims.token_id,
        session_id=session_id,
        user_id=user_id,
        expires_at=claims.expires_at,
    )
    return TokenPair(
        access, refresh, settings.access_token_ttl_seconds, settings.refresh_token_ttl_seconds
    )


async def start_session(session: AsyncSession, settings: Settings, *, user_id: int) -> TokenPair:
    session_id = secrets.token_hex(16)
    await repository.add_session(session, session_id=session_id, user_id=user_id)
    return await issue_pair(session, settings, user_id=user_id, session_id=session_id)


async def create_personal_project(session: AsyncSession, user: User) -> int:
    """Every user gets a project of their own, used when a request names none."""
    local_part = user.email.split("@", 1)[0]
    name = f"{user.full_name or local_part}'s project"
    for attempt in range(5):
        slug = f"personal-{user.id}" + ("" if attempt == 0 else f"-{secrets.token_hex(3)}")
        try:
            async with session.begin_nested():
                project, _ = await projects.create_project(
                    session, name=name, slug=slug, owner_id=user.id, with_secret_key=False
                )
            return project.id
        except (AppError, IntegrityError):
            continue
    raise AppError(500, "internal_error", "Could not create the personal project")


async def register(
    session: AsyncSession,
    settings: Settings,
    *,
    email: str,
    password: str,
    full_name: str | None,
) -> tuple[User, TokenPair]:
    email = normalize_email(email)
    if await users.get_by_email(session, email) is not None:
        raise AppError(409, "email_taken", f"An account with email {email} already exists; log in")
    password_hash = await hash_password_async(password)
    try:
        async with session.begin_nested():
            user = await users.add(
                session, email=email, password_hash=password_hash, full_name=full_name
            )
    except IntegrityError as exc:
        raise AppError(
            409, "email_taken", f"An account with email {email} already exists; log in"
        ) from exc
    user.default_project_id = await create_personal_project(session, user)
    pair = await start_session(session, settings, user_id=user.id)
    return user, pair


def _bad_credentials() -> AppError:
    return AppError(
        401,
        "invalid_credentials",
        "Wrong email or password",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def login(
    session: AsyncSession, settings: Settings, *, email: str, password: str
) -> TokenPair:
    user = await users.get_by_email(session, normalize_email(email))
    # Always one argon2 verification (against a dummy hash for unknown emails): same timing.
    ok = await verify_password_async(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        raise _bad_credentials()
    return await start_session(session, settings, user_id=user.id)


@dataclass(frozen=True)
class RefreshOutcome:
    """Either a new pair, or an error whose side effects (a revoked family) must be committed."""

    tokens: TokenPair | None = None
    error: AppError | None = None


async def refresh(session: AsyncSession, settings: Settings, *, token: str) -> RefreshOutcome:
    claims = decode_token(token, secret=settings.secret_key, expected_type="refresh")
    found = await repository.get_refresh_token(session, claims.token_id)
    if (
        found is None
        or found[0].user_id != claims.user_id
        or found[0].session_id != claims.session_id
    ):
        raise AppError(401, "invalid_token", "This refresh token is not known; sign in again")
    _, auth_session = found
    if auth_session.revoked_at is not None:
        raise AppError(401, "token_revoked", "This sign-in session was revoked; sign in again")
    now = utcnow()
    if not await repository.mark_refresh_token_used(session, token_id=claims.token_id, now=now):
        await repository.revoke_session(
            session, session_id=claims.session_id, now=now, reason="refresh_token_reuse"
        )
        return RefreshOutcome(
            error=AppError(
                401,
                "refresh_token_reused",
                "This refresh token was already used. Every token of this sign-in has been "
                "revoked; sign in again",
            )
        )
    user = await users.get_by_id(session, claims.user_id)
    if user is None or not user.is_active:
        raise AppError(401, "user_inactive", "This user account no longer exists or is disabled")
    pair = await issue_pair(session, settings, user_id=claims.user_id, session_id=claims.session_id)
    return RefreshOutcome(tokens=pair)


async def logout(
    session: AsyncSession,
    settings: Settings,
    *,
    refresh_token: str | None,
    user_id: int | None,
    session_id: str | None,
    all_sessions: bool,
) -> None:
    """Revoke the session of ``refresh_token`` (else the caller's), or all of the user's."""
    if refresh_token is not None:
        claims = decode_token(refresh_token, secret=settings.secret_key, expected_type="refresh")
        if await repository.get_refresh_token(session, claims.token_id) is None:
            raise AppError(401, "invalid_token", "This refresh token is not known")
        user_id, session_id = claims.user_id, claims.session_id
    if user_id is None or session_id is None:
        raise AppError(
            401,
            "authentication_required",
            "Send the refresh token in the body or an access token in Authorization",
            headers={"WWW-Authenticate": "Bearer"},
        )
    now = utcnow()
    if all_sessions:
        await repository.revoke_user_sessions(
            session, user_id=user_id, now=now, reason="logout_all"
        )
    else:
        await repository.revoke_session(session, session_id=session_id, now=now, reason="logout")
