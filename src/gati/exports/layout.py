"""Where exported files go and the manifest that lists them.

Object keys: ``{prefix}/{site}/{yyyy}/{mm}/{dd}/{window start}-{window end}.{ext}``, the date
being the window start's (UTC), window bounds written ``20250622T110000Z``. The manifest of a
window sits beside its data file as ``{window start}-{window end}.manifest.json``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gati.exports.columns import ExportColumn, dumps_json, iso_utc

MANIFEST_VERSION = 1
_SAFE_SEGMENT = re.compile(r"[^A-Za-z0-9._=-]+")


def window_stamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    stamp = moment.strftime("%Y%m%dT%H%M%S")
    if moment.microsecond:
        stamp += f".{moment.microsecond:06d}"
    return stamp + "Z"


def safe_segment(value: str) -> str:
    """One path segment made of letters, digits and ``._=-``; never ``.``/``..`` nor empty."""
    cleaned = _SAFE_SEGMENT.sub("-", value).strip("-")
    if cleaned in {"", ".", ".."}:
        raise ValueError(f"{value!r} cannot be used as a path segment")
    return cleaned


def normalize_prefix(prefix: str | None) -> str:
    """A prefix of safe segments joined by ``/`` (no leading or trailing slash), or ``""``."""
    if not prefix:
        return ""
    return "/".join(safe_segment(part) for part in prefix.split("/") if part.strip())


def window_base_key(prefix: str | None, site: str, start: datetime, end: datetime) -> str:
    start_utc = start.astimezone(UTC) if start.tzinfo else start.replace(tzinfo=UTC)
    parts = [
        normalize_prefix(prefix),
        safe_segment(site),
        f"{start_utc:%Y}",
        f"{start_utc:%m}",
        f"{start_utc:%d}",
        f"{window_stamp(start)}-{window_stamp(end)}",
    ]
    return "/".join(part for part in parts if part)


def object_key(prefix: str | None, site: str, start: datetime, end: datetime, ext: str) -> str:
    return f"{window_base_key(prefix, site, start, end)}.{ext}"


def manifest_key(prefix: str | None, site: str, start: datetime, end: datetime) -> str:
    return f"{window_base_key(prefix, site, start, end)}.manifest.json"


@dataclass(frozen=True, slots=True)
class ManifestFile:
    key: str
    rows: int
    bytes: int
    sha256: str
    format: str
    content_type: str
    gzip: bool = False
    part: str = "events"
    columns: Sequence[ExportColumn] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "part": self.part,
            "rows": self.rows,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "format": self.format,
            "content_type": self.content_type,
            "gzip": self.gzip,
            "columns": [{"name": c.name, "type": c.kind.value} for c in self.columns],
        }


@dataclass(frozen=True, slots=True)
class Manifest:
    export_id: str
    site: str
    start: datetime
    end: datetime
    created_at: datetime
    files: Sequence[ManifestFile]

    @property
    def total_rows(self) -> int:
        return sum(file.rows for file in self.files)

    def as_dict(self) -> dict[str, Any]:
        return {
            "manifest_version": MANIFEST_VERSION,
            "export_id": self.export_id,
            "site": self.site,
            "time_range": {"start": iso_utc(self.start), "end": iso_utc(self.end)},
            "created_at": iso_utc(self.created_at),
            "total_rows": self.total_rows,
            "files": [file.as_dict() for file in self.files],
        }

    def to_bytes(self) -> bytes:
        return dumps_json(self.as_dict())
