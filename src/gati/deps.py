"""Infrastructure dependencies: settings, database, request-scoped sessions, after-commit effects."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from gati.db.engine import Database
from gati.settings import Settings


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_database(request: Request) -> Database:
    return request.app.state.db


def query_value(request: Request, name: str) -> str | None:
    """``request.query_params.get(name)``, without parsing an empty query string (hot paths)."""
    if not request.scope.get("query_string"):
        return None
    return request.query_params.get(name)


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]


class AfterCommit:
    """Side effects (live publish, cache updates, job enqueue) run only after the commit succeeded."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], Awaitable[Any]]] = []

    def add(self, callback: Callable[[], Awaitable[Any]]) -> None:
        self._callbacks.append(callback)

    async def run(self) -> None:
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            await callback()

    def drop(self) -> None:
        self._callbacks.clear()


async def _after_commit() -> AfterCommit:
    return AfterCommit()


AfterCommitDep = Annotated[AfterCommit, Depends(_after_commit)]


async def _write_session(db: DatabaseDep, after: AfterCommitDep) -> AsyncIterator[AsyncSession]:
    # scope="function": the commit happens before the response is sent, so that an acknowledged
    # write is durable; effects registered on AfterCommit run after that commit, never on rollback.
    try:
        async with db.session() as session:
            yield session
    except BaseException:
        after.drop()
        raise
    await after.run()


async def _read_session(db: DatabaseDep) -> AsyncIterator[AsyncSession]:
    async with db.read_session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(_write_session, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(_read_session, scope="function")]
