"""The Sentry wire protocol: envelopes, store bodies, DSNs, auth and rate-limit headers.

Pure functions over bytes and strings; no I/O. Decompression happens before (see
``gati.ingest.decode``); everything here works on the decoded body.

Envelope format (https://develop.sentry.dev/sdk/data-model/envelopes/)::

    {"event_id": "...", "dsn": "...", "sent_at": "..."}\\n      <- envelope header (JSON object)
    {"type": "event", "length": 41}\\n                           <- item header
    {"message": "hello", "level": "info"}...\\n                  <- payload: `length` bytes, or
                                                               up to the next newline if no length
    ...more items; the final newline is optional

Every malformed input raises :class:`EnvelopeError` (a 400 ``AppError``) whose detail says what is
wrong and where, e.g. ``item 1 (event): length 120 exceeds the 37 bytes left in the body``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson

from gati.exceptions import AppError

# Item types whose payload is a Sentry event (JSON object) that becomes an error event.
ERROR_ITEM_TYPES = frozenset({"event"})
# Item types we accept and skip (never an error): everything else that SDKs send.
DEFAULT_MAX_ITEMS = 1_000


class EnvelopeError(AppError):
    """A malformed envelope or store body (400 ``invalid_envelope``)."""

    def __init__(self, detail: str, *, code: str = "invalid_envelope") -> None:
        super().__init__(400, code, detail)


class SentryAuthError(AppError):
    """Missing or unusable Sentry credentials (401 ``invalid_sentry_auth``)."""

    def __init__(
        self, detail: str, *, status: int = 401, code: str = "invalid_sentry_auth"
    ) -> None:
        super().__init__(status, code, detail)


# --------------------------------------------------------------------------------------------
# Envelopes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnvelopeItem:
    type: str
    headers: dict[str, Any]
    payload: bytes
    index: int = 0

    @property
    def is_error_event(self) -> bool:
        return self.type in ERROR_ITEM_TYPES

    def json_object(self) -> dict[str, Any]:
        """The payload as a JSON object; raise :class:`EnvelopeError` naming the item otherwise."""
        return _json_object(self.payload, where=f"item {self.index} ({self.type}) payload")


@dataclass(frozen=True, slots=True)
class Envelope:
    headers: dict[str, Any]
    items: list[EnvelopeItem] = field(default_factory=list)

    @property
    def event_id(self) -> str | None:
        value = self.headers.get("event_id")
        return value if isinstance(value, str) else None

    @property
    def dsn(self) -> str | None:
        value = self.headers.get("dsn")
        return value if isinstance(value, str) and value else None

    def error_items(self) -> list[EnvelopeItem]:
        return [item for item in self.items if item.is_error_event]


def _json_object(raw: bytes, *, where: str) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"{where} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise EnvelopeError(f"{where} must be a JSON object, got {type(value).__name__}")
    return value


def _line(body: bytes, start: int) -> tuple[bytes, int]:
    """The line starting at ``start`` (without its newline) and the offset after the newline."""
    end = body.find(b"\n", start)
    if end == -1:
        return body[start:], len(body)
    return body[start:end], end + 1


def parse_envelope(body: bytes, *, max_items: int = DEFAULT_MAX_ITEMS) -> Envelope:
    """Parse a decoded envelope body. Blank lines between items are tolerated; a final newline
    is optional; ``\\r\\n`` line ends on header lines are accepted."""
    if not body.strip():
        raise EnvelopeError("envelope is empty: expected a JSON header line")
    header_line, pos = _line(body, 0)
    headers = _json_object(header_line.rstrip(b"\r"), where="envelope header (line 1)")
    items: list[EnvelopeItem] = []
    size = len(body)
    while pos < size:
        item_header_line, next_pos = _line(body, pos)
        if not item_header_line.strip():  # blank line between items, or the trailing newline(s)
            pos = next_pos
            continue
        index = len(items)
        if index >= max_items:
            raise EnvelopeError(f"envelope has more than {max_items} items")
        item_headers = _json_object(item_header_line.rstrip(b"\r"), where=f"item {index} header")
        item_type = item_headers.get("type")
        if not isinstance(item_type, str) or not item_type:
            raise EnvelopeError(f"item {index} header: 'type' must be a non-empty string")
        where = f"item {index} ({item_type})"
        length = item_headers.get("length")
        if length is None:
            if next_pos == size and not body.endswith(b"\n"):
                # header line ran to the end of the body: there is no payload line at all
                raise EnvelopeError(f"{where}: truncated, no payload after the item header")
            payload, pos = _line(body, next_pos)
        else:
            if isinstance(length, bool) or not isinstance(length, int) or length < 0:
                raise EnvelopeError(f"{where} header: 'length' must be a non-negative integer")
            remaining = size - next_pos
            if length > remaining:
                raise EnvelopeError(
                    f"{where}: length {length} exceeds the {remaining} bytes left in the body"
                    " (truncated envelope or wrong length)"
                )
            end = next_pos + length
            payload = body[next_pos:end]
            if end < size and body[end : end + 1] not in (b"\n", b"\r"):
                raise EnvelopeError(
                    f"{where}: no newline after the {length}-byte payload"
                    " (the payload is longer than its length header says)"
                )
            pos = end
            if body[pos : pos + 2] == b"\r\n":
                pos += 2
            elif body[pos : pos + 1] == b"\n":
                pos += 1
        items.append(
            EnvelopeItem(type=item_type, headers=item_headers, payload=payload, index=index)
        )
    return Envelope(headers=headers, items=items)


_BASE64 = re.compile(rb"[A-Za-z0-9+/]+={0,2}")


def parse_store_body(body: bytes, *, max_decompressed_bytes: int) -> dict[str, Any]:
    """A ``/store/`` body: a JSON event, or (legacy SDKs) base64 of zlib-compressed JSON."""
    stripped = body.strip()
    if not stripped:
        raise EnvelopeError("store body is empty: expected a JSON event")
    if _BASE64.fullmatch(stripped):
        try:
            raw = base64.b64decode(stripped, validate=True)
        except (binascii.Error, ValueError):
            raise EnvelopeError(
                "store body is neither a JSON object nor base64-encoded zlib JSON"
            ) from None
        decompressor = zlib.decompressobj()
        try:
            stripped = decompressor.decompress(raw, max_decompressed_bytes)
        except zlib.error:
            raise EnvelopeError("store body is base64 but not zlib-compressed JSON") from None
        if decompressor.unconsumed_tail:
            raise AppError(
                413,
                "payload_too_large",
                f"store body decompresses to more than {max_decompressed_bytes} bytes",
            )
    return _json_object(stripped, where="store body")


# --------------------------------------------------------------------------------------------
# DSN and auth
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dsn:
    scheme: str
    public_key: str
    host: str  # host[:port]
    path_prefix: str  # "" or "/sub/path" (a server mounted below the root)
    project_id: str

    def __str__(self) -> str:
        return f"{self.scheme}://{self.public_key}@{self.host}{self.path_prefix}/{self.project_id}"


def parse_dsn(dsn: str) -> Dsn:
    """``scheme://public_key[:secret]@host[:port][/prefix]/project_id``."""
    parts = urlsplit(dsn.strip())
    if parts.scheme not in ("http", "https"):
        raise SentryAuthError(f"DSN {dsn!r}: scheme must be http or https")
    if not parts.username:
        raise SentryAuthError(f"DSN {dsn!r}: no public key before '@'")
    if not parts.hostname:
        raise SentryAuthError(f"DSN {dsn!r}: no host")
    path = parts.path.rstrip("/")
    prefix, _, project_id = path.rpartition("/")
    if not project_id:
        raise SentryAuthError(f"DSN {dsn!r}: no project id at the end of the path")
    host = parts.netloc.rsplit("@", 1)[1]
    return Dsn(
        scheme=parts.scheme,
        public_key=parts.username,
        host=host,
        path_prefix=prefix,
        project_id=project_id,
    )


def build_dsn(*, base_url: str, public_key: str, project_id: str | int) -> str:
    """The DSN for a project served at ``base_url`` (e.g. ``http://localhost:8000``)."""
    parts = urlsplit(base_url.rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base URL {base_url!r} must look like http(s)://host[:port][/path]")
    return f"{parts.scheme}://{public_key}@{parts.netloc}{parts.path}/{project_id}"


_AUTH_PAIR = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([^,]*?)\s*(?:,|$)")


@functools.lru_cache(maxsize=1024)
def _parse_sentry_auth_header(value: str) -> tuple[tuple[str, str], ...]:
    # A client sends the same header with every request: parse each distinct value once.
    text = value.strip()
    if text[:7].lower() == "sentry ":
        text = text[7:]
    pairs = {m.group(1).lower(): m.group(2) for m in _AUTH_PAIR.finditer(text)}
    return tuple((k, v) for k, v in pairs.items() if v)


def parse_sentry_auth_header(value: str) -> dict[str, str]:
    """``Sentry sentry_version=7, sentry_key=abc, sentry_client=x/1`` -> ``{"sentry_key": ...}``.

    The ``Sentry`` prefix is optional (some clients omit it); unknown pairs are kept."""
    return dict(_parse_sentry_auth_header(value))


AuthSource = Literal["x-sentry-auth", "authorization", "query", "envelope-dsn"]


@dataclass(frozen=True, slots=True)
class SentryCredentials:
    public_key: str
    source: AuthSource
    # Set when the key came from a DSN (envelope header): the project id the DSN names.
    dsn_project_id: str | None = None
    client: str | None = None


def extract_sentry_credentials(
    *,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    envelope_dsn: str | None = None,
) -> SentryCredentials | None:
    """Find the public key the way Relay does, first match wins: the ``X-Sentry-Auth`` header,
    an ``Authorization: Sentry ...`` header, the ``sentry_key`` query parameter, then the
    envelope header's ``dsn``. ``headers`` must be case-insensitive (Starlette's are) or
    lower-cased. Returns None when no credentials are present at all."""
    header_sources: tuple[tuple[str, AuthSource], ...] = (
        ("x-sentry-auth", "x-sentry-auth"),
        ("authorization", "authorization"),
    )
    for header_name, source in header_sources:
        raw = headers.get(header_name)
        if not raw:
            continue
        if source == "authorization" and not raw.lstrip().lower().startswith("sentry "):
            continue  # a Bearer token etc. is not Sentry auth
        pairs = parse_sentry_auth_header(raw)
        key = pairs.get("sentry_key")
        if not key:
            raise SentryAuthError(f"{header_name} header has no sentry_key")
        return SentryCredentials(public_key=key, source=source, client=pairs.get("sentry_client"))
    key = query.get("sentry_key")
    if key:
        return SentryCredentials(public_key=key, source="query", client=query.get("sentry_client"))
    if envelope_dsn:
        dsn = parse_dsn(envelope_dsn)
        return SentryCredentials(
            public_key=dsn.public_key, source="envelope-dsn", dsn_project_id=dsn.project_id
        )
    return None


# --------------------------------------------------------------------------------------------
# Rate limits
# --------------------------------------------------------------------------------------------


def rate_limit_headers(
    *,
    retry_after_seconds: int,
    categories: tuple[str, ...] = (),
    scope: str = "project",
    reason_code: str | None = None,
) -> dict[str, str]:
    """``Retry-After`` and ``X-Sentry-Rate-Limits`` (``<seconds>:<cat;cat>:<scope>[:<reason>]``;
    empty categories mean all of them), as SDKs read them."""
    seconds = max(1, int(retry_after_seconds))
    value = f"{seconds}:{';'.join(categories)}:{scope}"
    if reason_code:
        value += f":{reason_code}"
    return {"Retry-After": str(seconds), "X-Sentry-Rate-Limits": value}
