"""Opaque, stable keyset cursors for newest-first listings.

A page is ordered by ``(timestamp DESC, id DESC)`` where an event's id is ``(project_id, id)``
(client event ids are unique per project only); the cursor carries the sort key of the last row
of the page, and the next page is the rows strictly *after* it in that order:
``timestamp < ts OR (timestamp = ts AND (project_id, id) < (last_project, last_id))``. Rows
inserted while a client pages never shift or repeat the rows it has not seen yet, unlike offsets.

Encoding: ``base64url(json([version, microseconds since the epoch (UTC), project_id, id]))``
without padding. Clients must treat it as opaque; the version lets the format change later while old
cursors are refused with a clear 400 rather than misread.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from gati.exceptions import AppError

CURSOR_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_CURSOR_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class Cursor:
    timestamp: datetime
    project_id: int
    id: str


def _to_micros(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def encode_cursor(timestamp: datetime, project_id: int, row_id: str) -> str:
    raw = orjson.dumps([CURSOR_VERSION, _to_micros(timestamp), project_id, row_id])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _invalid(reason: str) -> AppError:
    return AppError(
        400,
        "invalid_cursor",
        f"cursor: {reason}; use the next_cursor value of a previous page unchanged",
    )


def decode_cursor(value: str) -> Cursor:
    """Decode a cursor made by :func:`encode_cursor`; 400 ``invalid_cursor`` otherwise."""
    if not value or len(value) > _MAX_CURSOR_LENGTH:
        raise _invalid("empty or too long")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        data = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise _invalid("not a cursor") from None
    if not isinstance(data, list) or not data:
        raise _invalid("not a cursor")
    if data[0] != CURSOR_VERSION:
        raise _invalid(f"cursor version {data[0]!r} is not supported")
    if len(data) != 4:
        raise _invalid("not a cursor")
    version, micros, project_id, row_id = data
    if version != CURSOR_VERSION:
        raise _invalid(f"cursor version {version!r} is not supported")
    if isinstance(micros, bool) or not isinstance(micros, int):
        raise _invalid("bad timestamp")
    if isinstance(project_id, bool) or not isinstance(project_id, int):
        raise _invalid("bad project id")
    if not isinstance(row_id, str):
        raise _invalid("bad id")
    try:
        timestamp = _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise _invalid("timestamp out of range") from None
    return Cursor(timestamp=timestamp, project_id=project_id, id=row_id)
