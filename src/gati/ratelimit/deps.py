"""FastAPI dependencies applying rate limits per API key, per user, or per client address."""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from fastapi import Depends, Request

from gati.auth.deps import OptionalPrincipal, Principal, credentials_from
from gati.exceptions import AppError
from gati.live.runtime import Realtime, get_realtime
from gati.ratelimit.limiter import MemoryRateLimiter

Kind = Literal["ingest", "read"]


def rate_key(request: Request, principal: Principal | None) -> str:
    """Who is counted: the user, else the API key, else the client address."""
    if principal is not None and principal.kind == "user" and principal.user_id is not None:
        return f"user:{principal.user_id}"
    credential = credentials_from(request)
    if credential:
        key = _key_names.get(credential)
        if key is None:
            if len(_key_names) >= _KEY_NAMES_MAX:
                _key_names.clear()
            key = _key_names[credential] = (
                "key:" + hashlib.sha256(credential.encode()).hexdigest()[:24]
            )
        return key
    client = request.scope.get("client")
    return f"ip:{client[0] if client else 'unknown'}"


# Rate-limit names of recent credentials (a digest, so that a key is never a limiter key or a
# Redis key name): computed once per credential, not once per request.
_KEY_NAMES_MAX = 10_000
_key_names: dict[str, str] = {}


async def enforce(realtime: Realtime, kind: Kind, key: str) -> None:
    if not realtime.rate_limits_enabled:
        return
    limit = realtime.ingest_limit if kind == "ingest" else realtime.read_limit
    limiter = realtime.limiter
    if isinstance(limiter, MemoryRateLimiter):  # in process: no await, nothing built if allowed
        decision = limiter.refusal(f"{kind}:{key}", limit)
        if decision is None:
            return
    else:
        decision = await limiter.hit(f"{kind}:{key}", limit)
    if not decision.allowed:
        raise AppError(
            429,
            "rate_limited",
            f"Too many {kind} requests for these credentials; retry after "
            f"{decision.retry_after_header} s (Retry-After)",
            headers={"Retry-After": decision.retry_after_header},
            extra={"retry_after": round(decision.retry_after, 3)},
        )


async def limit_ingest(request: Request, principal: OptionalPrincipal) -> None:
    await enforce(get_realtime(request), "ingest", rate_key(request, principal))


async def limit_read(request: Request, principal: OptionalPrincipal) -> None:
    await enforce(get_realtime(request), "read", rate_key(request, principal))


IngestRateLimit = Annotated[None, Depends(limit_ingest)]
ReadRateLimit = Annotated[None, Depends(limit_read)]
