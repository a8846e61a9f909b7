"""Grouping: which issue an error event belongs to, and the issue's title and culprit.

The fingerprint is chosen in this order:

1. the client's ``fingerprint`` (a list of strings); each ``{{ default }}`` entry expands to the
   default components below, so ``["{{ default }}", "tenant-a"]`` splits a default group;
2. the exception type plus the in-app frames (module, or the file when there is no module, and
   the function) - line numbers are left out, so an edit elsewhere in a file keeps the group;
3. the exception type (if any) plus the message with its variable parts (numbers, UUIDs, hex,
   emails, URLs, IPs, dates and times) replaced by placeholders.

The stored fingerprint is a SHA-256 (hex, 32 characters) of the components, which are kept too
for display and debugging.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from gati.errors.stacktrace import Frame

GroupingMethod = Literal["fingerprint", "stacktrace", "message"]

_DEFAULT_PLACEHOLDER = re.compile(r"^\{\{\s*default\s*\}\}$")
_TITLE_MAX = 200
_CULPRIT_MAX = 200
_FINGERPRINT_PART_MAX = 500


def _ipv6_or_keep(match: re.Match[str]) -> str:
    try:
        ipaddress.IPv6Address(match.group(0))
    except ValueError:
        return match.group(0)
    return "<ip>"


# Order matters: the broad shapes (URLs, emails, UUIDs, dates) go before the numbers inside them.
# Every pattern runs in time linear in the text: a pattern that could start anywhere inside a
# run of the characters it repeats (a URL scheme, an email's local part) starts only where the
# run starts (a negative lookbehind), else a long run without ``://`` or ``@`` is scanned again
# from each of its characters (quadratic: 100,000 characters took 30 s on the event loop).
_VARIABLE_PARTS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"(?<![a-z0-9+.\-])[a-z][a-z0-9+.\-]*+://[^\s'\"<>()\[\]{}]+", re.I), "<url>"),
    (re.compile(r"(?<![\w.+\-])[\w.+\-]++@[\w\-]+(?:\.[\w\-]+)+"), "<email>"),
    (
        re.compile(r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b", re.I),
        "<uuid>",
    ),
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
            r"(?:\s?Z|\s?[+\-]\d{2}:?\d{2})?)?\b",
            re.I,
        ),
        "<date>",
    ),
    (re.compile(r"\b\d{1,2}/\d{1,2}/\d{2,4}\b"), "<date>"),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<time>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b"), "<ip>"),
    (re.compile(r"(?<![\w:.])[0-9a-f]*:[0-9a-f]*:[0-9a-f:.]*(?![\w:])", re.I), _ipv6_or_keep),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.I), "<hex>"),
    (re.compile(r"(?<![A-Za-z])\d+(?:[.,]\d+)*"), "<num>"),
)


# Only the start of a message groups it: the rest would only cost time (the title is shorter).
MESSAGE_GROUPING_CHARS = 1024


def normalize_message(message: str) -> str:
    """Replace the variable parts of a message so that ``user 42 not found`` and
    ``user 43 not found`` group together. Only its first ``MESSAGE_GROUPING_CHARS`` characters
    count (two messages that differ only after them group together)."""
    text = message.strip()[:MESSAGE_GROUPING_CHARS]
    for pattern, placeholder in _VARIABLE_PARTS:
        text = pattern.sub(placeholder, text)
    return re.sub(r"\s+", " ", text)


_HASHED_SEGMENT = re.compile(r"[.\-_~](?=[0-9a-f]*\d)[0-9a-f]{6,}(?=\.)", re.I)
_VOLATILE_DIR = re.compile(r"^(?:v?\d[\d.\-_]*|[0-9a-f]{12,}|[0-9a-f\-]{36})$", re.I)


def normalize_filename(path: str) -> str:
    """A file name stable across deploys: no scheme/host/query, no content hashes
    (``app.3f2a1c9b.js``), no release or build directories (``/releases/20240101/``)."""
    if "://" in path:
        path = urlsplit(path).path or path
    path = path.replace("\\", "/").split("?", 1)[0].split("#", 1)[0]
    path = _HASHED_SEGMENT.sub("", path)
    parts = [part for part in path.split("/") if part and not _VOLATILE_DIR.match(part)]
    return "/".join(parts)


def frame_component(frame: Frame) -> str:
    where = frame.module or normalize_filename(frame.filename or frame.abs_path or "") or "?"
    return f"{where}:{frame.function or '?'}"


@dataclass(frozen=True, slots=True)
class Grouping:
    fingerprint: str  # sha256 hex, 32 characters
    components: list[str]
    method: GroupingMethod


def default_components(
    *,
    exception_type: str | None,
    exception_value: str | None,
    message: str | None,
    frames: Sequence[Frame],
) -> tuple[list[str], GroupingMethod]:
    in_app = [frame for frame in frames if frame.in_app]
    if exception_type and in_app:
        return [f"type:{exception_type}", *(f"frame:{frame_component(f)}" for f in in_app)], (
            "stacktrace"
        )
    text = exception_value if exception_type else (message or exception_value)
    return [f"type:{exception_type or ''}", f"message:{normalize_message(text or '')}"], "message"


def _digest(components: Sequence[str]) -> str:
    return hashlib.sha256("\x1f".join(components).encode("utf-8")).hexdigest()[:32]


def compute_grouping(
    *,
    client_fingerprint: Sequence[object] | None,
    exception_type: str | None,
    exception_value: str | None,
    message: str | None,
    frames: Sequence[Frame],
) -> Grouping:
    default, method = default_components(
        exception_type=exception_type,
        exception_value=exception_value,
        message=message,
        frames=frames,
    )
    if client_fingerprint:
        components: list[str] = []
        for part in client_fingerprint:
            text = part if isinstance(part, str) else str(part)
            if _DEFAULT_PLACEHOLDER.match(text.strip()):
                components.extend(default)
            else:
                components.append(f"custom:{text[:_FINGERPRINT_PART_MAX]}")
        return Grouping(
            fingerprint=_digest(components), components=components, method="fingerprint"
        )
    return Grouping(fingerprint=_digest(default), components=default, method=method)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0].strip() if text.strip() else ""


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def derive_title(
    *, exception_type: str | None, exception_value: str | None, message: str | None
) -> str:
    if exception_type:
        value = _first_line(exception_value or "")
        return _truncate(f"{exception_type}: {value}" if value else exception_type, _TITLE_MAX)
    text = _first_line(message or "") or _first_line(exception_value or "")
    return _truncate(text or "<unlabeled event>", _TITLE_MAX)


def derive_culprit(
    *,
    explicit: str | None,
    transaction: str | None,
    frames: Sequence[Frame],
    request_method: str | None,
    request_path: str | None,
) -> str:
    """Where it happened: the client's culprit, else the transaction (route), else the frame that
    raised (the last in-app frame), else the request."""
    if explicit and explicit.strip():
        return _truncate(explicit.strip(), _CULPRIT_MAX)
    if transaction and transaction.strip():
        return _truncate(transaction.strip(), _CULPRIT_MAX)
    for frame in reversed(frames):
        if frame.in_app:
            where = frame.module or normalize_filename(frame.filename or frame.abs_path or "")
            text = f"{where} in {frame.function}" if frame.function else where
            if text:
                return _truncate(text, _CULPRIT_MAX)
    if request_path:
        text = f"{request_method} {request_path}" if request_method else request_path
        return _truncate(text, _CULPRIT_MAX)
    return ""
