"""Decoding and validation of /collect payloads: JSON, ``text/plain`` JSON (what
``navigator.sendBeacon`` and ``fetch(..., {keepalive: true})`` send without a CORS preflight) and
query parameters (``GET /collect``).

Every problem is reported per field: ``{"field": "timestamp", "message": "..."}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson
from pydantic import ValidationError

from gati.exceptions import AppError
from gati.ingest.decode import parse_json
from gati.ingest.nul import NUL_REASON, nul_field
from gati.web.schemas import CollectIn
from gati.web.utm import UTM_KEYS

MAX_COLLECT_BODY = 64 * 1024
# The accepted range of an event's ``timestamp``: from the Unix epoch (epoch seconds are never
# negative; the statistics API's first date, ``gati.web.periods.MIN_DATE``, too) to one hour after
# the server's clock (client clock skew). Older events are accepted: offline queues and backfills
# send them late.
MIN_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
MAX_FUTURE_SKEW = timedelta(hours=1)
TOO_OLD = "is before 1970-01-01T00:00:00Z, the earliest accepted time"
TOO_NEW = "is more than 1 hour in the future; send UTC ISO 8601"
JSON_CONTENT_TYPES = frozenset({"application/json", "text/plain", ""})


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass(frozen=True, slots=True)
class CollectPayload:
    """A validated /collect event, before enrichment (IP, user agent, visitor, session)."""

    event_type: str
    site_id: str
    session_id: str | None
    visitor_id: str | None
    timestamp: datetime | None  # None: the server's clock at receipt
    url: str | None
    path: str | None
    referrer: str | None
    title: str | None
    utm_params: dict[str, str]  # as the client sent them in attribution.utmParams
    properties: dict[str, Any]
    raw: dict[str, Any] = field(repr=False)


def validation_error(errors: Iterable[FieldError]) -> AppError:
    items = [e.as_dict() for e in errors]
    first = items[0] if items else {"field": "body", "message": "invalid"}
    return AppError(
        422, "validation_error", f"{first['field']}: {first['message']}", extra={"errors": items}
    )


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_collect_body(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The JSON object of a POST /collect body (already decompressed)."""
    media = _media_type(content_type)
    if media not in JSON_CONTENT_TYPES:
        raise AppError(
            415,
            "unsupported_media_type",
            f"Content-Type {media!r} is not accepted by /collect; send application/json "
            "or text/plain containing JSON",
        )
    if len(body) > MAX_COLLECT_BODY:
        raise AppError(
            413,
            "payload_too_large",
            f"/collect bodies are limited to {MAX_COLLECT_BODY} bytes; got {len(body)}",
        )
    data = parse_json(body)
    if not isinstance(data, dict):
        raise validation_error([FieldError("body", "must be one JSON object (one event)")])
    return data


def query_to_event(params: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The event object described by ``GET /collect`` query parameters.

    Field names are those of the JSON body. ``utm_*`` parameters become
    ``attribution.utmParams``; ``properties`` may be a JSON object, and each ``prop_NAME=value``
    adds one string property. The first value of a repeated parameter wins.
    """
    event: dict[str, Any] = {}
    utm: dict[str, str] = {}
    props: dict[str, Any] = {}
    for key, value in params:
        if key in UTM_KEYS:
            utm.setdefault(key, value)
        elif key.startswith("prop_") and len(key) > 5:
            props.setdefault(key[5:], value)
        elif key in ("properties", "props"):
            if "properties" in event:
                continue
            try:
                decoded = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise validation_error(
                    [FieldError("properties", "must be a JSON object when sent as a parameter")]
                ) from None
            event["properties"] = decoded
        else:
            event.setdefault(key, value)
    if utm:
        event["attribution"] = {"utmParams": utm}
    if props:
        merged = event.get("properties")
        if merged is None:
            event["properties"] = props
        elif isinstance(merged, dict):
            event["properties"] = {**props, **merged}
    return event


def _utc_timestamp(value: datetime, now: datetime) -> tuple[datetime | None, str | None]:
    """``value`` in UTC (naive is UTC), or why it is outside the accepted range."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # before year 1 or after year 9999 once in UTC
        return None, TOO_OLD if value.year < 1970 else TOO_NEW
    if value < MIN_TIMESTAMP:
        return None, TOO_OLD
    if value > now + MAX_FUTURE_SKEW:
        return None, TOO_NEW
    return value, None


def validate_collect(data: Mapping[str, Any], *, now: datetime | None = None) -> CollectPayload:
    """Validate one event object; 422 listing every bad field."""
    try:
        model = CollectIn.model_validate(data)
    except ValidationError as exc:
        raise validation_error(
            FieldError(_loc(tuple(err["loc"])), err["msg"].removeprefix("Value error, "))
            for err in exc.errors()
        ) from None

    errors: list[FieldError] = []
    where = nul_field(data)
    if where is not None:
        errors.append(FieldError(where, NUL_REASON))
    timestamp = None
    if model.timestamp is not None:
        timestamp, problem = _utc_timestamp(model.timestamp, now or datetime.now(UTC))
        if problem is not None:
            errors.append(FieldError("timestamp", problem))

    path = model.path
    if model.url:
        try:
            parts = urlsplit(model.url)
        except ValueError:
            errors.append(FieldError("url", "is not a valid URL"))
        else:
            if parts.scheme not in ("http", "https") or not parts.hostname:
                errors.append(FieldError("url", "must be an absolute http(s) URL"))
            elif path is None:
                path = parts.path or "/"
    if path is not None and not path.startswith("/"):
        path = "/" + path
    if errors:
        raise validation_error(errors)

    utm: dict[str, str] = {}
    if model.attribution is not None and model.attribution.utm_params:
        utm = {k: v for k, v in model.attribution.utm_params.items() if v}

    return CollectPayload(
        event_type=model.event_type,
        site_id=model.site_id,
        session_id=model.session_id,
        visitor_id=model.visitor_id,
        timestamp=timestamp,
        url=model.url,
        path=path,
        referrer=model.referrer or None,
        title=model.title or None,
        utm_params=utm,
        properties=dict(model.properties or {}),
        raw=dict(data),
    )


def parse_collect_body(
    body: bytes, content_type: str | None, *, now: datetime | None = None
) -> CollectPayload:
    return validate_collect(decode_collect_body(body, content_type), now=now)


def parse_collect_query(
    params: Iterable[tuple[str, str]], *, now: datetime | None = None
) -> CollectPayload:
    return validate_collect(query_to_event(params), now=now)
