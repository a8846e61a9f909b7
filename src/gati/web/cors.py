"""CORS for the public ingestion paths.

The app's CORS policy (``CORS_ORIGINS``) protects the API. Tracking requests come from every
site that embeds the script, so ``/collect`` and ``/js/gati.js`` answer CORS themselves: any
origin, or only the site's configured hostnames (see :mod:`gati.web.router`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

PUBLIC_PATHS: tuple[str, ...] = ("/collect", "/js/gati.js")


class PublicPathsCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware, bypassed for ``public_paths``."""

    def __init__(
        self, app: ASGIApp, *, public_paths: Sequence[str] = PUBLIC_PATHS, **kwargs: Any
    ) -> None:
        super().__init__(app, **kwargs)
        self.public_paths = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.public_paths:
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
