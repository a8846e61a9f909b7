"""The NUL character (U+0000): refused by every ingestion route, on both databases.

PostgreSQL cannot hold U+0000 in ``text`` or ``jsonb`` (a statement carrying one fails), and
stripping or replacing it would store something other than what was sent. So an item with one
is refused with a reason that names where it is, before it reaches a group commit; SQLite could
store it but refuses it too, so a request gets the same answer on both databases
(docs/decisions.md, "NUL characters"). Seed-002 error reports and Sentry events are the
exception: their text fields drop the character (gati.errors.service).

In JSON a NUL can only arrive as the escape ``\\u0000``: a route that still has the raw body can
skip the check when the escape is absent (``NUL_ESCAPE in raw``).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from gati.exceptions import error_response

NUL_ESCAPE = b"\\u0000"
NUL_REASON = "contains the NUL character (\\u0000), which Gati does not store"


def _may_hold_nul(value: Any) -> bool:
    """False when ``value`` surely has no NUL character. orjson writes a NUL only as
    ``\\u0000``: serialising and searching (in C) rules most values out in a third of the time
    of walking them."""
    try:
        return NUL_ESCAPE in orjson.dumps(value)
    except TypeError:  # not JSON-serialisable as is (orjson.JSONEncodeError is a TypeError)
        return True


def contains_nul(value: Any) -> bool:
    """Whether a JSON-like value has a NUL character in any string or key."""
    return _may_hold_nul(value) and nul_path(value) is not None


def nul_field(value: Any, prefix: str = "") -> str | None:
    """Where the first NUL character of ``value`` is, as a field path (``properties.k``,
    ``items[2]``; ``prefix`` when ``value`` is itself the string), or None when there is none."""
    return nul_path(value, prefix) if _may_hold_nul(value) else None


def nul_path(value: Any, path: str = "") -> str | None:
    """The walk behind :func:`nul_field`, without the serialise-and-search shortcut: depth
    first, in order, with a stack of its own (a value nested thousands deep is valid input)."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        current, where = stack.pop()
        if isinstance(current, str):
            if "\x00" in current:
                return where
        elif isinstance(current, dict):
            children = []
            for key, item in current.items():
                name = str(key)
                inner = f"{where}.{name}" if where else name
                if "\x00" in name:
                    # A key with a NUL comes before its own value and the keys after it.
                    children.append((None, inner.replace("\x00", "\\u0000"), True))
                    break
                children.append((item, inner, False))
            for item, inner, is_key in reversed(children):
                if is_key:
                    stack.append((_KEY_MARK, inner))
                else:
                    stack.append((item, inner))
        elif isinstance(current, (list, tuple)):
            stack.extend(
                (item, f"{where}[{position}]")
                for position, item in reversed(list(enumerate(current)))
            )
        elif current is _KEY_MARK:
            return where
    return None


_KEY_MARK = object()


URL_NUL_DETAIL = (
    "The URL contains the NUL character (%00), which no Gati resource, filter or field can hold"
)
# PostgreSQL's SQLSTATEs for a NUL in a value: 22021 (character_not_in_repertoire: a text
# parameter holding U+0000) and 22P05 (untranslatable_character: \u0000 inside jsonb).
NUL_SQLSTATES = frozenset({"22021", "22P05"})


class RefuseNulInUrl:
    """ASGI middleware: a request whose path or query string holds a NUL character (``%00``)
    gets ``400 nul_character`` on both databases, before any route looks it up (PostgreSQL
    would refuse the parameter and SQLite would look for a name nobody can have created)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan" or (
            "\x00" not in scope["path"] and b"%00" not in scope.get("query_string", b"")
        ):
            await self.app(scope, receive, send)
            return
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "NUL in the URL"})
            return
        response = error_response(400, "nul_character", URL_NUL_DETAIL)
        await response(scope, receive, send)
