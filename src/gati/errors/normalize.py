"""One normalized error-event record from a Sentry event or a seed-002 error report.

Both sources come out as a :class:`NormalizedErrorEvent`, with its grouping fingerprint, title
and culprit, so storage and issues never care where an error came from. The raw payload is kept
as it arrived (``payload``), bounded by the ingest size limits.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from gati.db.types import checked_utc
from gati.errors.grouping import compute_grouping, derive_culprit, derive_title
from gati.errors.stacktrace import Frame, guess_in_app, parse_stack
from gati.exceptions import AppError
from gati.ids import uuid_hex

LEVELS = ("fatal", "error", "warning", "info", "debug")
_LEVEL_ALIASES = {"critical": "fatal", "warn": "warning", "err": "error", "information": "info"}
FUTURE_TOLERANCE = timedelta(minutes=1)
MAX_BREADCRUMBS = 100
MAX_TAGS = 100
_TAG_KEY_MAX = 200
_TAG_VALUE_MAX = 200
_SHORT_MAX = 200

Source = Literal["sentry", "report"]


class InvalidEventError(AppError):
    def __init__(self, detail: str) -> None:
        super().__init__(400, "invalid_event", detail)


@dataclass(slots=True)
class NormalizedErrorEvent:
    event_id: str  # 32 lower-case hex characters (a UUID without dashes)
    timestamp: datetime  # UTC-aware
    received_at: datetime
    source: Source
    level: str
    platform: str
    message: str | None
    exception_type: str | None
    exception_value: str | None
    frames: list[Frame]
    title: str
    culprit: str
    fingerprint: str
    grouping_components: list[str]
    payload: dict[str, Any]
    transaction: str | None = None
    request_method: str | None = None
    request_url: str | None = None
    status_code: int | None = None
    environment: str | None = None
    release: str | None = None
    server_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    user: dict[str, Any] | None = None
    breadcrumbs: list[dict[str, Any]] = field(default_factory=list)
    # The payload as JSON text when the caller has it already (the envelope item's bytes).
    payload_json: str | None = None

    def frames_as_dicts(self) -> list[dict[str, Any]]:
        return [frame.to_dict() for frame in self.frames]


# --------------------------------------------------------------------------------------------
# small coercions (lenient: a wrong-typed optional field is dropped, never a 500)
# --------------------------------------------------------------------------------------------


def _str(value: object, limit: int | None = None) -> str | None:
    if type(value) is str:
        text = value.strip()
    elif value is None:
        return None
    elif isinstance(value, str):
        text = str(value).strip()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        text = str(value)
    else:
        return None
    if not text:
        return None
    return text[:limit] if limit and len(text) > limit else text


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def normalize_level(value: object, default: str = "error") -> str:
    text = _str(value)
    if not text:
        return default
    text = text.lower()
    text = _LEVEL_ALIASES.get(text, text)
    return text if text in LEVELS else default


_HEX32 = re.compile(r"[0-9a-fA-F]{32}")


def normalize_event_id(value: object) -> str:
    """A UUID (with or without dashes) as 32 lower-case hex characters; a new one if absent."""
    if value is None or value == "":
        return uuid_hex()
    if not isinstance(value, str):
        raise InvalidEventError("event_id must be a string (32 hex characters)")
    if len(value) == 32 and _HEX32.fullmatch(value):  # what SDKs send: no parsing needed
        return value.lower()
    try:
        return uuid.UUID(value.strip()).hex
    except ValueError:
        raise InvalidEventError(
            f"event_id {value[:64]!r} is not a UUID (32 hex characters)"
        ) from None


def parse_timestamp(value: object) -> datetime | None:
    """Epoch seconds (number or numeric string) or RFC 3339 / ISO 8601; naive means UTC."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, (int, float)):
        try:
            parsed = datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if "-" in text[1:] or ":" in text:  # ISO 8601, what SDKs send: no failing float() first
            with contextlib.suppress(ValueError):
                return parse_timestamp(datetime.fromisoformat(text))
        try:
            return parse_timestamp(float(text))  # epoch seconds (also "1e-3")
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    try:
        return checked_utc(parsed)
    except ValueError:
        return None  # no UTC form: treated as missing, as an unparsable timestamp is


def clamp_timestamp(value: datetime | None, *, received_at: datetime) -> datetime:
    """Missing or implausibly-future timestamps (clock skew) become the time of receipt."""
    if value is None or value > received_at + FUTURE_TOLERANCE:
        return received_at
    return value


def normalize_tags(value: object) -> dict[str, str]:
    pairs: list[tuple[object, object]] = []
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = [tuple(p) for p in value if isinstance(p, (list, tuple)) and len(p) == 2]
    tags: dict[str, str] = {}
    for key, val in pairs:
        k = _str(key, _TAG_KEY_MAX)
        v = _str(val, _TAG_VALUE_MAX)
        if k and v is not None and len(tags) < MAX_TAGS:
            tags[k] = v
    return tags


def _values(value: object) -> list[Any]:
    """Sentry interfaces come as ``{"values": [...]}`` or (older SDKs) as a bare list."""
    if isinstance(value, dict):
        inner = value.get("values")
        return list(inner) if isinstance(inner, list) else []
    if isinstance(value, list):
        return list(value)
    return []


def _fs(value: object, limit: int) -> str | None:
    """A frame's string field: the fast path for what SDKs send (a non-empty str)."""
    if type(value) is str:
        if not value:
            return None
        return value if len(value) <= limit else value[:limit]
    return _str(value, limit)


def _fi(value: object) -> int | None:
    return value if type(value) is int else _int(value)


def _frames_from_sentry(stacktrace: object, platform: str) -> list[Frame]:
    if not isinstance(stacktrace, dict):
        return []
    raw_frames = stacktrace.get("frames")
    if not isinstance(raw_frames, list):
        return []
    frames: list[Frame] = []
    for raw in raw_frames:
        if not isinstance(raw, dict):
            continue
        get = raw.get
        filename = _fs(get("filename"), 1000)
        abs_path = _fs(get("abs_path"), 2000)
        module = _fs(get("module"), 500)
        in_app = get("in_app")
        if type(in_app) is not bool:
            in_app = guess_in_app(
                filename=filename, abs_path=abs_path, module=module, platform=platform
            )
        frames.append(
            Frame(
                filename,
                abs_path,
                module,
                _fs(get("function"), 500),
                _fi(get("lineno")),
                _fi(get("colno")),
                in_app,
                _fs(get("context_line"), 1000),
            )
        )
    return frames


def _sentry_message(event: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(message shown, message template used for grouping)."""
    logentry = event.get("logentry")
    message = event.get("message")
    for candidate in (logentry, message):
        if isinstance(candidate, dict):
            formatted = _str(candidate.get("formatted"))
            template = _str(candidate.get("message"))
            if formatted or template:
                return formatted or template, template or formatted
    text = _str(message)
    return text, text


def _sentry_request(request: object) -> tuple[str | None, str | None]:
    if not isinstance(request, dict):
        return None, None
    method = _str(request.get("method"), 16)
    url = _str(request.get("url"), 4000)
    query = request.get("query_string")
    if url and isinstance(query, str) and query and "?" not in url:
        url = f"{url}?{query}"[:4000]
    return method.upper() if method else None, url


def _user(value: object) -> dict[str, Any] | None:
    if isinstance(value, dict) and value:
        return {str(k): v for k, v in value.items()}
    return None


def _breadcrumbs(value: object) -> list[dict[str, Any]]:
    crumbs = [dict(c) for c in _values(value) if isinstance(c, dict)]
    return crumbs[-MAX_BREADCRUMBS:]


def _client_fingerprint(value: object) -> list[object] | None:
    if isinstance(value, list) and value:
        return [v for v in value if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
    return None


# --------------------------------------------------------------------------------------------
# Sentry events
# --------------------------------------------------------------------------------------------


def normalize_sentry_event(
    event: Mapping[str, Any],
    *,
    received_at: datetime,
    envelope_event_id: str | None = None,
    payload_json: str | None = None,
    details: bool = True,
) -> NormalizedErrorEvent:
    """A Sentry event (store body or envelope ``event`` item) as a normalized record.
    ``payload_json``: the event's JSON text as received, stored instead of re-serializing.
    ``details=False`` (ingestion) skips tags, user and breadcrumbs: they are read from the stored
    payload when an event is shown, so normalizing them while ingesting would be wasted."""
    platform = _str(event.get("platform"), 64) or "other"
    event_id = normalize_event_id(event.get("event_id") or envelope_event_id)

    exceptions = [e for e in _values(event.get("exception")) if isinstance(e, dict)]
    exception_type = exception_value = None
    frames: list[Frame] = []
    if exceptions:
        primary = exceptions[-1]  # Sentry lists the chain oldest first; the last one was raised
        exception_type = _str(primary.get("type"), _SHORT_MAX)
        exception_value = _str(primary.get("value"), 10_000)
        frames = _frames_from_sentry(primary.get("stacktrace"), platform)
    if not frames:
        for thread in _values(event.get("threads")):
            if isinstance(thread, dict) and (thread.get("crashed") or thread.get("current")):
                frames = _frames_from_sentry(thread.get("stacktrace"), platform)
                if frames:
                    break
    if not frames:
        frames = _frames_from_sentry(event.get("stacktrace"), platform)

    message, message_template = _sentry_message(event)
    if exceptions and exception_type is None and exception_value is None and not message:
        raise InvalidEventError("exception: no type or value in the last exception")
    request_method, request_url = _sentry_request(event.get("request"))
    transaction = _str(event.get("transaction"), _SHORT_MAX)
    grouping = compute_grouping(
        client_fingerprint=_client_fingerprint(event.get("fingerprint")),
        exception_type=exception_type,
        exception_value=exception_value,
        message=message_template,
        frames=frames,
    )
    timestamp = clamp_timestamp(parse_timestamp(event.get("timestamp")), received_at=received_at)
    return NormalizedErrorEvent(
        event_id=event_id,
        timestamp=timestamp,
        received_at=received_at,
        source="sentry",
        level=normalize_level(event.get("level")),
        platform=platform,
        message=message,
        exception_type=exception_type,
        exception_value=exception_value,
        frames=frames,
        title=derive_title(
            exception_type=exception_type, exception_value=exception_value, message=message
        ),
        culprit=derive_culprit(
            explicit=_str(event.get("culprit")),
            transaction=transaction,
            frames=frames,
            request_method=request_method,
            request_path=request_url,
        ),
        fingerprint=grouping.fingerprint,
        grouping_components=grouping.components,
        payload=event if isinstance(event, dict) else dict(event),
        payload_json=payload_json,
        transaction=transaction,
        request_method=request_method,
        request_url=request_url,
        environment=_str(event.get("environment"), 64),
        release=_str(event.get("release"), _SHORT_MAX),
        server_name=_str(event.get("server_name"), _SHORT_MAX),
        tags=normalize_tags(event.get("tags")) if details else {},
        user=_user(event.get("user")) if details else None,
        breadcrumbs=_breadcrumbs(event.get("breadcrumbs")) if details else [],
    )


# --------------------------------------------------------------------------------------------
# Seed-002 error reports
# --------------------------------------------------------------------------------------------


def normalize_error_report(
    report: Mapping[str, Any], *, received_at: datetime
) -> NormalizedErrorEvent:
    """A seed-002 report (``message``, ``stack``, ``method``, ``path``, ``status_code``,
    ``timestamp``, plus the optional ``level``/``environment``/``release``/``tags``/``user``/
    ``fingerprint``/``event_id``) as a normalized record. ``report`` is the validated body
    (``ErrorReportIn.model_dump()``); ``project_key`` is not part of the event."""
    message = _str(report.get("message"))
    if not message:
        raise InvalidEventError("message: required, a non-empty string")
    parsed = parse_stack(_str(report.get("stack")))
    exception_type = parsed.exception_type
    if exception_type is None and parsed.frames:
        exception_type = "Error"  # a report with a stack is an exception whose type is unknown
    method = _str(report.get("method"), 16)
    method = method.upper() if method else None
    path = _str(report.get("path"), 4000)
    status_code = _int(report.get("status_code"))
    transaction = f"{method} {path}" if method and path else path
    tags = normalize_tags(report.get("tags"))
    if status_code is not None:
        tags.setdefault("status_code", str(status_code))
    grouping = compute_grouping(
        client_fingerprint=_client_fingerprint(report.get("fingerprint")),
        exception_type=exception_type,
        exception_value=message,
        message=message,
        frames=parsed.frames,
    )
    timestamp = clamp_timestamp(parse_timestamp(report.get("timestamp")), received_at=received_at)
    payload = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in report.items()}
    return NormalizedErrorEvent(
        event_id=normalize_event_id(report.get("event_id")),
        timestamp=timestamp,
        received_at=received_at,
        source="report",
        level=normalize_level(report.get("level")),
        platform=_str(report.get("platform"), 64) or parsed.platform,
        message=message,
        exception_type=exception_type,
        exception_value=message if exception_type else None,
        frames=parsed.frames,
        title=derive_title(exception_type=exception_type, exception_value=message, message=message),
        culprit=derive_culprit(
            explicit=None,
            transaction=transaction,
            frames=parsed.frames,
            request_method=method,
            request_path=path,
        ),
        fingerprint=grouping.fingerprint,
        grouping_components=grouping.components,
        payload=payload,
        transaction=transaction,
        request_method=method,
        request_url=path,
        status_code=status_code,
        environment=_str(report.get("environment"), 64),
        release=_str(report.get("release"), _SHORT_MAX),
        tags=tags,
        user=_user(report.get("user")),
        breadcrumbs=_breadcrumbs(report.get("breadcrumbs")),
    )
