"""FastAPI dependencies applying rate limits per API key, per user, or per client address."""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from fastapi import Depends, Request

from gati.auth.deps import OptionalPrincipal, Principal, credentials_from
from gati.exceptions import AppError
from gati.live.runtime import Realtime, get_realtime

Kind = Literal["ingest", "read"]


def rate_key(request: Request, principal: Principal | None) -> str:
    """Who is counted: the user, else the API key, else the client address."""
    if principal is not None and principal.kind == "user" and principal.user_id is not None:
        return f"user:{principal.user_id}"
    credential = credentials_from(request)
    if credential:
        return "key:" + hashlib.sha256(credential.encode()).hexdigest()[:24]
    host = request.client.host if request.client else "unknown"
    return f"ip:{host}"


async def enforce(realtime: Realtime, kind: Kind, key: str) -> None:
    if not realtime.rate_limits_enabled:
        return
    limit = realtime.ingest_limit if kind == "ingest" else realtime.read_limit
    decision = await realtime.limiter.hit(f"{kind}:{key}", limit)
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
