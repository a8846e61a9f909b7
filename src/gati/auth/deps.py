"""Who is calling, and which projects they may write to and read: FastAPI dependencies.

Credentials: ``Authorization: Bearer <token or key>`` or ``X-API-Key: <key>``.
- a user access token (JWT): reads and writes the projects the user is a member of;
- a project secret key (``sk_...``): ingests into and reads its project;
- a project public key (``pk_...``): ingests into its project only (browsers, DSNs);
- nothing: in local mode, the default project (everything readable); otherwise 401.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gati.auth.models import AuthSession, User
from gati.auth.security import (
    PUBLIC_KEY_PREFIX,
    TokenClaims,
    decode_token,
    hash_api_key,
    looks_like_jwt,
)
from gati.cache.singleflight import SingleFlight
from gati.db.engine import Database
from gati.deps import DatabaseDep, SettingsDep
from gati.exceptions import AppError
from gati.projects import repository as projects
from gati.projects.models import Project
from gati.settings import Settings

PrincipalKind = Literal["user", "secret_key", "public_key", "local"]


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    # The project written to when a request names none (key's project, user's default, local default).
    project_id: int | None
    # Projects this caller may read; None = every project (local mode without credentials).
    readable_project_ids: frozenset[int] | None
    user_id: int | None = None
    session_id: str | None = None

    @property
    def can_read(self) -> bool:
        return self.kind != "public_key"

    def may_read(self, project_id: int) -> bool:
        if not self.can_read:
            return False
        return self.readable_project_ids is None or project_id in self.readable_project_ids

    def may_write(self, project_id: int) -> bool:
        if self.kind in ("secret_key", "public_key"):
            return project_id == self.project_id
        return self.readable_project_ids is None or project_id in self.readable_project_ids


_CREDENTIAL_KEY = "gati.credential"


def credentials_from(request: Request) -> str | None:
    """The bearer token or ``X-API-Key`` of the request (the first of each header, as Starlette's
    ``Headers.get``), read from the raw ASGI headers in one pass and kept on the scope: this runs
    on every ingest (the caller, then the rate-limit key)."""
    scope = request.scope
    if _CREDENTIAL_KEY in scope:
        known: str | None = scope[_CREDENTIAL_KEY]
        return known
    authorization = api_key = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            if authorization is None:
                authorization = value
        elif name == b"x-api-key" and api_key is None:
            api_key = value
    credential = None
    if authorization:
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            credential = token.strip()
    if credential is None and api_key:
        credential = api_key.decode("latin-1").strip()
    scope[_CREDENTIAL_KEY] = credential
    return credential


async def verify_access_token(
    session: AsyncSession, token: str, *, settings: Settings
) -> tuple[TokenClaims, User]:
    """Signature, expiry, type, a live session and an active user. Raises AppError(401)."""
    claims = decode_token(token, secret=settings.secret_key, expected_type="access")
    row = (
        await session.execute(
            select(AuthSession, User)
            .join(User, User.id == AuthSession.user_id)
            .where(AuthSession.id == claims.session_id, User.id == claims.user_id)
        )
    ).first()
    if row is None:
        raise AppError(401, "token_revoked", "The session of this token no longer exists")
    auth_session, user = row
    if auth_session.revoked_at is not None:
        raise AppError(401, "token_revoked", "The session of this token was revoked; sign in again")
    if not user.is_active:
        raise AppError(401, "user_inactive", "This user account is deactivated")
    return claims, user


async def resolve_principal(
    session: AsyncSession,
    credential: str | None,
    *,
    settings: Settings,
    default_project_id: int | None,
) -> Principal | None:
    if credential is None:
        if settings.is_local:
            return Principal("local", default_project_id, None)
        return None
    if looks_like_jwt(credential):
        claims, user = await verify_access_token(session, credential, settings=settings)
        ids = frozenset(await projects.list_member_project_ids(session, user_id=user.id))
        default = user.default_project_id if user.default_project_id in ids else None
        if default is None and ids:
            default = min(ids)
        return Principal("user", default, ids, user_id=user.id, session_id=claims.session_id)
    if credential.startswith(PUBLIC_KEY_PREFIX):
        project = await projects.get_by_public_key(session, credential)
        if project is None:
            raise AppError(401, "invalid_key", "This public key does not belong to any project")
        return Principal("public_key", project.id, frozenset())
    key = await projects.get_key_by_hash(session, hash_api_key(credential))
    if key is None:
        raise AppError(401, "invalid_key", "This API key is unknown or revoked")
    return Principal("secret_key", key.project_id, frozenset({key.project_id}))


# API keys resolved recently, per app: a hot ingest path checks its key once per few seconds,
# not once per request. Revoking a key or deleting a project through the API clears the cache
# (``forget_keys``), so it takes effect at once in this process and within KEY_CACHE_SECONDS in
# other server processes. Access tokens are never cached (their sessions are checked each time).
KEY_CACHE_SECONDS = 5.0
_KEY_CACHE_MAX = 10_000


def _key_cache(app: Any) -> dict[str, tuple[float, Principal]]:
    cache: dict[str, tuple[float, Principal]] | None = getattr(app.state, "key_cache", None)
    if cache is None:
        cache = {}
        app.state.key_cache = cache
    return cache


def forget_keys(app: Any) -> None:
    """Drop every cached key (after a revocation or a project deletion). A lookup in flight
    may have read the key before the change: its answer is not cached (a new generation),
    and requests that arrive from now on start a lookup of their own."""
    _key_cache(app).clear()
    app.state.key_generation = getattr(app.state, "key_generation", 0) + 1
    _key_lookups(app).forget()


# Where a request keeps its resolved caller (the ASGI scope: cheaper than ``request.state``).
_SCOPE_KEY = "gati.principal"
_local_principals: dict[int | None, Principal] = {}


def _local_principal(default_project_id: int | None) -> Principal:
    principal = _local_principals.get(default_project_id)
    if principal is None:
        principal = Principal("local", default_project_id, None)
        _local_principals[default_project_id] = principal
    return principal


async def get_principal(
    request: Request, db: DatabaseDep, settings: SettingsDep
) -> Principal | None:
    scope = request.scope
    if _SCOPE_KEY in scope:
        cached: Principal | None = scope[_SCOPE_KEY]
        return cached
    credential = credentials_from(request)
    if credential is None:  # no database needed
        principal = (
            _local_principal(getattr(request.app.state, "default_project_id", None))
            if settings.is_local
            else None
        )
        scope[_SCOPE_KEY] = principal
        return principal
    default_project_id = getattr(request.app.state, "default_project_id", None)
    if looks_like_jwt(credential):  # access tokens: their session is checked every time
        principal = await _resolve(db, settings, credential, default_project_id)
        scope[_SCOPE_KEY] = principal
        return principal
    hit = _key_cache(request.app).get(credential)
    if hit is not None and hit[0] > time.monotonic():
        scope[_SCOPE_KEY] = hit[1]
        return hit[1]
    # One lookup per key at a time: when a busy key's entry expires, every request in flight
    # with it misses at once (64 lookups at a time every KEY_CACHE_SECONDS under the events
    # benchmark, each a pooled session: a visible share of CPU and a latency spike); they now
    # share the first one's lookup. Shielded: a waiter whose client left does not cancel it.
    generation = getattr(request.app.state, "key_generation", 0)
    principal = await _key_lookups(request.app).run(
        credential,
        partial(_lookup_key, request.app, db, settings, credential, default_project_id, generation),
    )
    scope[_SCOPE_KEY] = principal
    return principal


async def _resolve(
    db: Database, settings: Settings, credential: str, default_project_id: int | None
) -> Principal | None:
    async with db.read_session() as session:
        return await resolve_principal(
            session, credential, settings=settings, default_project_id=default_project_id
        )


def _key_lookups(app: Any) -> SingleFlight[str, Principal | None]:
    lookups: SingleFlight[str, Principal | None] | None = getattr(app.state, "key_lookups", None)
    if lookups is None:
        lookups = SingleFlight()
        app.state.key_lookups = lookups
    return lookups


async def _lookup_key(
    app: Any,
    db: Database,
    settings: Settings,
    credential: str,
    default_project_id: int | None,
    generation: int,
) -> Principal | None:
    """Resolve an API key in the database and cache the answer for KEY_CACHE_SECONDS, unless
    the keys were forgotten since the lookup was asked for (``generation``)."""
    started = time.monotonic()
    principal = await _resolve(db, settings, credential, default_project_id)
    if principal is not None and getattr(app.state, "key_generation", 0) == generation:
        cache = _key_cache(app)
        if len(cache) >= _KEY_CACHE_MAX:
            cache.clear()
        cache[credential] = (started + KEY_CACHE_SECONDS, principal)
    return principal


OptionalPrincipal = Annotated[Principal | None, Depends(get_principal)]


async def principal_of(request: Request) -> Principal | None:
    """The caller, as the ``OptionalPrincipal`` dependency resolves it, as a plain call.

    For hot single-event ingest routes: FastAPI's resolution of a chain of dependencies costs
    more CPU per request than the rest of such a route, so these routes take only ``request``
    and call this (the result is cached on ``request.state`` like the dependency's).
    """
    state = request.app.state
    return await get_principal(request, state.db, state.settings)


async def require_principal_of(request: Request) -> Principal:
    """:func:`principal_of`, or 401 without credentials outside local mode (``CurrentPrincipal``)."""
    return _require(await principal_of(request))


def _require(principal: Principal | None) -> Principal:
    if principal is None:
        raise AppError(
            401,
            "authentication_required",
            "Send a project key or an access token: 'Authorization: Bearer <key>' or 'X-API-Key'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


async def require_principal(principal: OptionalPrincipal) -> Principal:
    return _require(principal)


async def require_reader(principal: OptionalPrincipal) -> Principal:
    principal = _require(principal)
    if not principal.can_read:
        raise AppError(
            403,
            "read_not_allowed",
            "A public key can only ingest; use a secret key or an access token to read",
        )
    return principal


async def require_user(principal: OptionalPrincipal) -> Principal:
    principal = _require(principal)
    if principal.kind != "user":
        raise AppError(401, "user_token_required", "This endpoint needs a user access token")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
Reader = Annotated[Principal, Depends(require_reader)]
CurrentUserPrincipal = Annotated[Principal, Depends(require_user)]


async def resolve_project_for_write(
    db: Database, principal: Principal, project_ref: str | int | None
) -> Project:
    """The project a write goes to: named by the request (checked), else the caller's own."""
    async with db.read_session() as session:
        if project_ref is not None and str(project_ref) != "":
            from gati.projects.service import get_project

            project = await get_project(session, project_ref)
            if project is None or not principal.may_write(project.id):
                raise AppError(
                    404,
                    "project_not_found",
                    f"Project {project_ref} does not exist or is not writable with these credentials",
                )
            return project
        if principal.project_id is None:
            raise AppError(
                400,
                "project_required",
                "These credentials have no default project; name one with ?project=<id or slug>",
            )
        project = await projects.get_by_id(session, principal.project_id)
        if project is None:
            raise AppError(
                404, "project_not_found", f"Project {principal.project_id} no longer exists"
            )
        return project


async def get_ingest_project(
    request: Request, db: DatabaseDep, principal: CurrentPrincipal
) -> Project:
    ref = request.query_params.get("project")
    return await resolve_project_for_write(db, principal, ref)


IngestProject = Annotated[Project, Depends(get_ingest_project)]


async def readable_project_ids(session: AsyncSession, principal: Principal) -> list[int]:
    """Every project id the caller may read (resolves 'all' in local mode)."""
    if principal.readable_project_ids is not None:
        return sorted(principal.readable_project_ids)
    return [p.id for p in await projects.list_projects(session)]


async def get_read_scope(request: Request, db: DatabaseDep, principal: Reader) -> list[int]:
    """Projects a read is scoped to: ``?project=`` (checked) or every readable project."""
    ref = request.query_params.get("project")
    async with db.read_session() as session:
        if ref:
            from gati.projects.service import get_project

            project = await get_project(session, ref)
            if project is None or not principal.may_read(project.id):
                raise AppError(
                    404,
                    "project_not_found",
                    f"Project {ref} does not exist or is not visible to these credentials",
                )
            return [project.id]
        return await readable_project_ids(session, principal)


ReadScope = Annotated[list[int], Depends(get_read_scope)]
