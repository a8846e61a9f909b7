"""Request decoding shared by every ingestion endpoint: size limits, compression, JSON."""

from __future__ import annotations

import gzip
import zlib
from typing import Any, NamedTuple

import brotli
import orjson
import zstandard
from fastapi import Request
from starlette.requests import ClientDisconnect

from gati.exceptions import AppError

_CHUNK = 64 * 1024

# Where a request keeps its body headers once read (the ASGI scope; see body_headers).
_HEADERS_KEY = "gati.body_headers"


class BodyHeaders(NamedTuple):
    """The three headers every ingestion route reads, raw (``None`` when absent)."""

    content_type: bytes | None
    content_length: bytes | None
    content_encoding: bytes | None


def body_headers(request: Request) -> BodyHeaders:
    """Content-Type, Content-Length and Content-Encoding in one pass over the raw ASGI headers
    (the first of each, as Starlette's ``Headers.get``), kept on the scope: this runs on every
    ingest request, where three ``request.headers.get`` calls cost more than the pass."""
    scope = request.scope
    found: BodyHeaders | None = scope.get(_HEADERS_KEY)
    if found is not None:
        return found
    content_type = content_length = content_encoding = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            if content_type is None:
                content_type = value
        elif name == b"content-length":
            if content_length is None:
                content_length = value
        elif name == b"content-encoding" and content_encoding is None:
            content_encoding = value
    found = BodyHeaders(content_type, content_length, content_encoding)
    scope[_HEADERS_KEY] = found
    return found


def too_large(limit: int, what: str = "Request body") -> AppError:
    return AppError(
        413,
        "payload_too_large",
        f"{what} is larger than the limit of {limit} bytes; send smaller batches",
    )


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """Read the raw body, refusing (413) as soon as it passes ``max_bytes``.

    Straight from the ASGI ``receive`` (Starlette's ``request.stream()`` generator costs more
    than the rest of this on a small body); the body is then kept on the request, so a later
    ``request.body()`` returns it. A client that disconnects raises Starlette's
    ``ClientDisconnect``, as ``request.stream()`` does."""
    declared = body_headers(request).content_length
    if declared is not None:
        try:
            if int(declared) > max_bytes:
                raise too_large(max_bytes)
        except ValueError as exc:
            raise AppError(400, "bad_content_length", "Content-Length is not a number") from exc
    cached: bytes | None = getattr(request, "_body", None)
    if cached is not None:
        if len(cached) > max_bytes:
            raise too_large(max_bytes)
        return cached
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk: bytes = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > max_bytes:
                    raise too_large(max_bytes)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    request._body = body
    return body


def _bounded_zlib(data: bytes, wbits: int, limit: int) -> bytes:
    decompressor = zlib.decompressobj(wbits)
    out = decompressor.decompress(data, limit + 1)
    if len(out) > limit or decompressor.unconsumed_tail:
        raise too_large(limit, "Decompressed body")
    if not decompressor.eof:
        raise zlib.error("incomplete or truncated stream")
    return out


def _gunzip(data: bytes, limit: int) -> bytes:
    # Handles concatenated gzip members too.
    out = bytearray()
    while data:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out += decompressor.decompress(data, limit + 1 - len(out))
        if len(out) > limit or decompressor.unconsumed_tail:
            raise too_large(limit, "Decompressed body")
        if not decompressor.eof:
            raise zlib.error("incomplete or truncated gzip stream")
        data = decompressor.unused_data.lstrip(b"\x00")
    return bytes(out)


def _brotli(data: bytes, limit: int) -> bytes:
    decompressor = brotli.Decompressor()
    out = bytearray()
    view = memoryview(data)
    for start in range(0, len(data), _CHUNK):
        out += decompressor.process(bytes(view[start : start + _CHUNK]))
        if len(out) > limit:
            raise too_large(limit, "Decompressed body")
    if not decompressor.is_finished():
        raise brotli.error("incomplete brotli stream")
    return bytes(out)


def _zstd(data: bytes, limit: int) -> bytes:
    reader = zstandard.ZstdDecompressor().stream_reader(data)
    out = reader.read(limit + 1)
    if len(out) > limit:
        raise too_large(limit, "Decompressed body")
    return out


def decompress(data: bytes, encoding: str | None, *, max_bytes: int) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate zlib-wrapped or raw, br, zstd), bounded."""
    encoding = (encoding or "identity").strip().lower()
    try:
        if encoding in ("identity", ""):
            return data
        if encoding in ("gzip", "x-gzip"):
            return _gunzip(data, max_bytes)
        if encoding == "deflate":
            try:
                return _bounded_zlib(data, zlib.MAX_WBITS, max_bytes)
            except zlib.error:
                return _bounded_zlib(data, -zlib.MAX_WBITS, max_bytes)
        if encoding == "br":
            return _brotli(data, max_bytes)
        if encoding == "zstd":
            return _zstd(data, max_bytes)
    except AppError:
        raise
    except (
        zlib.error,
        gzip.BadGzipFile,
        brotli.error,
        zstandard.ZstdError,
        EOFError,
        OSError,
    ) as exc:
        raise AppError(
            400, "bad_compression", f"The body is not valid {encoding} data: {exc}"
        ) from exc
    raise AppError(
        415,
        "unsupported_content_encoding",
        f"Content-Encoding {encoding!r} is not supported; use gzip, deflate, br or zstd",
    )


async def read_decoded_body(request: Request, *, max_bytes: int, max_decompressed: int) -> bytes:
    raw = await read_body(request, max_bytes=max_bytes)
    encoding = body_headers(request).content_encoding
    if encoding is None:
        return raw
    return decompress(raw, encoding.decode("latin-1"), max_bytes=max_decompressed)


def parse_json(data: bytes) -> Any:
    if not data.strip():
        raise AppError(400, "empty_body", "The request body is empty; send a JSON document")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise AppError(400, "malformed_json", f"The body is not valid JSON: {exc}") from exc


def require_json_content_type(request: Request, *, allow_text_plain: bool = False) -> None:
    raw = body_headers(request).content_type
    if raw == b"application/json":
        return
    content_type = raw.decode("latin-1") if raw is not None else ""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return
    if allow_text_plain and media == "text/plain":
        return
    if not media:
        return  # curl without -H: be lenient, the body is still parsed as JSON
    allowed = "application/json" + (" or text/plain" if allow_text_plain else "")
    raise AppError(
        415, "unsupported_media_type", f"Content-Type {media!r} is not accepted; send {allowed}"
    )


async def read_json(
    request: Request, *, max_bytes: int, max_decompressed: int, allow_text_plain: bool = False
) -> Any:
    """Content type check, size limits, decompression and JSON parsing in one call."""
    require_json_content_type(request, allow_text_plain=allow_text_plain)
    body = await read_decoded_body(request, max_bytes=max_bytes, max_decompressed=max_decompressed)
    return parse_json(body)
