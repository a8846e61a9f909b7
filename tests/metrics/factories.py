"""Test factories for users with sessions and tokens (metrics and live tests)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from gati.auth.models import AuthSession, User
from gati.auth.security import issue_token
from gati.db.engine import Database
from gati.projects.models import ProjectMember
from gati.settings import DEFAULT_SECRET_KEY


@dataclass
class UserFixture:
    id: int
    session_id: str
    secret: str

    def token(self, *, ttl_seconds: int = 900, token_type: str = "access") -> str:
        token, _ = issue_token(
            secret=self.secret,
            user_id=self.id,
            session_id=self.session_id,
            token_type=token_type,  # type: ignore[arg-type]
            ttl_seconds=ttl_seconds,
        )
        return token


async def make_user(
    db: Database, *, project_ids: list[int], secret: str = DEFAULT_SECRET_KEY
) -> UserFixture:
    async with db.session() as session:
        user = User(
            email=f"{uuid.uuid4().hex[:10]}@example.com",
            password_hash="unused",
            is_active=True,
            default_project_id=project_ids[0] if project_ids else None,
        )
        session.add(user)
        await session.flush()
        for project_id in project_ids:
            session.add(ProjectMember(project_id=project_id, user_id=user.id, role="owner"))
        session_id = uuid.uuid4().hex
        session.add(AuthSession(id=session_id, user_id=user.id))
    return UserFixture(user.id, session_id, secret)


async def revoke(db: Database, user: UserFixture) -> None:
    async with db.session() as session:
        await session.execute(
            update(AuthSession)
            .where(AuthSession.id == user.session_id)
            .values(revoked_at=datetime.now(UTC) - timedelta(seconds=1))
        )
