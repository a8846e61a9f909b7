"""OTLP/HTTP trace decoding: ``ExportTraceServiceRequest`` → Gati trace events.

Both encodings of the request are accepted:

* protobuf (``application/x-protobuf``), parsed with the ``opentelemetry-proto`` classes;
* OTLP/JSON (``application/json``): lowerCamelCase *or* original snake_case field names,
  trace/span ids in hex (the OTLP/JSON rule) or base64 (the generic protobuf JSON mapping,
  e.g. ``MessageToJson``), int64 values as strings or numbers, enums as numbers or names.

Each span becomes one event in the shape ``POST /api/events`` accepts (seed 000)::

    {"event_id": <span id hex>, "run_id": <trace id hex>, "agent_name": ..., "event_type": ...,
     "timestamp": <start, ISO-8601 UTC>, "data": {"parent_run_id": <parent span id hex>, ...}}

A span that cannot be stored (no trace id, no span id, no start time, not an object) is a
per-item error; the rest of the request is kept. Only an undecodable body is a request error.
Huge values are cut with a visible marker, never rejected. Values out of range (an integer no
int64 holds, a token count, cost, duration or event time beyond Gati's bounds) keep the span:
they are stored as sent (as text when no JSON number holds them) but not used, listed in
``data.out_of_range`` and reported as a warning (``DecodedSpans.warnings``).

This module is pure: no I/O, no database.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from gati.tracing.bounds import MAX_COST, MAX_LATENCY_MS, MAX_TOKENS

__all__ = [
    "DEFAULT_LIMITS",
    "DecodeLimits",
    "DecodedSpans",
    "OtlpRequestError",
    "SpanError",
    "decode_export_request",
    "decode_json",
    "decode_protobuf",
    "encode_export_response",
    "event_type_for",
    "is_json_content_type",
    "is_protobuf_content_type",
]

# --------------------------------------------------------------------------------------
# Public types
# --------------------------------------------------------------------------------------

TRUNCATION_MARKER = "…[truncated {n} {unit}]"
# The trace tables' column sizes: longer names are cut rather than rejected.
MAX_AGENT_NAME = 200
MAX_EVENT_TYPE = 100


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds applied to every span. Values beyond them are cut with a marker, not rejected."""

    max_value_chars: int = 32_768  # one string (or base64 of bytes) attribute value
    max_array_items: int = 1_000  # one array attribute value
    max_depth: int = 8  # nesting of arrays / kvlists
    max_attributes: int = 1_000  # attributes kept per span / event / link / resource
    max_span_events: int = 256  # span events kept per span
    max_links: int = 128  # links kept per span


DEFAULT_LIMITS = DecodeLimits()


class OtlpRequestError(ValueError):
    """The request body as a whole cannot be decoded (a 400 / 415 for the router)."""

    def __init__(self, field: str, message: str, *, status: int = 400) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class SpanError:
    """One span that could not be turned into an event."""

    index: int  # position of the span in the request, counting across resources and scopes
    # path of the offending field, e.g. ``resourceSpans[0].scopeSpans[1].spans[3].traceId``
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


@dataclass(slots=True)
class DecodedSpans:
    events: list[dict[str, Any]] = field(default_factory=list)
    errors: list[SpanError] = field(default_factory=list)
    # Spans kept, with values out of range left unused (``data.out_of_range``).
    warnings: list[SpanError] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.events) + len(self.errors)


# --------------------------------------------------------------------------------------
# Semantic conventions: where the Gati fields come from
# --------------------------------------------------------------------------------------

# First present wins. OpenTelemetry GenAI semconv first, then OpenInference, then
# OpenLLMetry (traceloop) / older GenAI names.
AGENT_NAME_KEYS = ("gen_ai.agent.name", "agent.name")
RESPONSE_MODEL_KEYS = ("gen_ai.response.model", "llm.response.model_name")
REQUEST_MODEL_KEYS = (
    "gen_ai.request.model",
    "llm.model_name",
    "llm.request.model_name",
    "embedding.model_name",
    "reranker.model_name",
)
PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
TOKENS_IN_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
    "llm.usage.prompt_tokens",
)
TOKENS_OUT_KEYS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
    "llm.usage.completion_tokens",
)
TOKENS_CACHE_READ_KEYS = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.input_tokens.cached",
    "llm.token_count.prompt_details.cache_read",
)
TOKENS_CACHE_CREATION_KEYS = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.input_tokens.cache_write",
    "llm.token_count.prompt_details.cache_write",
)
TOKENS_REASONING_KEYS = (
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.reasoning_tokens",
    "gen_ai.usage.output_tokens.reasoning",
    "llm.token_count.completion_details.reasoning",
)
TOKENS_TOTAL_KEYS = ("gen_ai.usage.total_tokens", "llm.token_count.total", "llm.usage.total_tokens")
COST_TOTAL_KEYS = (
    "llm.cost.total",
    "gen_ai.usage.cost",
    "gen_ai.cost.usd",
    "gen_ai.usage.total_cost",
)
COST_PART_KEYS = (
    ("llm.cost.prompt", "llm.cost.completion"),
    ("gen_ai.usage.input_cost", "gen_ai.usage.output_cost"),
)
TOOL_NAME_KEYS = ("gen_ai.tool.name", "tool.name")
TOOL_CALL_ID_KEYS = ("gen_ai.tool.call.id", "tool.id", "tool_call.id")
SESSION_KEYS = ("session.id", "gen_ai.conversation.id")

OPERATION_EVENT_TYPES = {
    "chat": "llm_call",
    "text_completion": "llm_call",
    "generate_content": "llm_call",
    "completion": "llm_call",
    "embeddings": "embedding",
    "embedding": "embedding",
    "retrieval": "retrieval",
    "execute_tool": "tool_call",
    "invoke_agent": "agent",
    "create_agent": "agent",
    "invoke_workflow": "workflow",
}
OPENINFERENCE_EVENT_TYPES = {
    "LLM": "llm_call",
    "TOOL": "tool_call",
    "CHAIN": "chain",
    "AGENT": "agent",
    "RETRIEVER": "retrieval",
    "EMBEDDING": "embedding",
    "RERANKER": "rerank",
    "GUARDRAIL": "guardrail",
    "EVALUATOR": "evaluator",
    "PROMPT": "prompt",
}
TRACELOOP_EVENT_TYPES = {
    "workflow": "workflow",
    "task": "task",
    "agent": "agent",
    "tool": "tool_call",
}
LLM_REQUEST_TYPE_EVENT_TYPES = {
    "chat": "llm_call",
    "completion": "llm_call",
    "embedding": "embedding",
    "rerank": "rerank",
}

SPAN_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUS_CODES = ("UNSET", "OK", "ERROR")
_SPAN_KIND_NAMES = {f"SPAN_KIND_{k.upper()}": i for i, k in enumerate(SPAN_KINDS)}
_STATUS_CODE_NAMES = {f"STATUS_CODE_{c}": i for i, c in enumerate(STATUS_CODES)}


# One pass over a span's attributes finds every promoted field: attribute key → (field,
# priority); the lowest priority present wins.
_PROMOTED_FIELDS: dict[str, Sequence[str]] = {
    "agent": AGENT_NAME_KEYS,
    "response_model": RESPONSE_MODEL_KEYS,
    "request_model": REQUEST_MODEL_KEYS,
    "provider": PROVIDER_KEYS,
    "tokens_in": TOKENS_IN_KEYS,
    "tokens_out": TOKENS_OUT_KEYS,
    "tokens_cache_read": TOKENS_CACHE_READ_KEYS,
    "tokens_cache_creation": TOKENS_CACHE_CREATION_KEYS,
    "tokens_reasoning": TOKENS_REASONING_KEYS,
    "tokens_total": TOKENS_TOTAL_KEYS,
    "cost": COST_TOTAL_KEYS,
    "cost_in": tuple(pair[0] for pair in COST_PART_KEYS),
    "cost_out": tuple(pair[1] for pair in COST_PART_KEYS),
    "tool_name": TOOL_NAME_KEYS,
    "tool_call_id": TOOL_CALL_ID_KEYS,
    "session_id": SESSION_KEYS,
    "operation": ("gen_ai.operation.name",),
    "openinference_kind": ("openinference.span.kind",),
    "traceloop_kind": ("traceloop.span.kind",),
    "traceloop_entity": ("traceloop.entity.name",),
    "llm_request_type": ("llm.request.type",),
}
_PROMOTED: dict[str, tuple[str, int]] = {
    key: (name, priority)
    for name, keys in _PROMOTED_FIELDS.items()
    for priority, key in enumerate(keys)
}
_COUNT_FIELDS = (
    "tokens_in",
    "tokens_out",
    "tokens_cache_read",
    "tokens_cache_creation",
    "tokens_reasoning",
    "tokens_total",
)
_TEXT_FIELDS = ("provider", "tool_name", "tool_call_id", "session_id", "operation")


def _promoted(attributes: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    priorities: dict[str, int] = {}
    promoted = _PROMOTED
    for key, value in attributes.items():
        hit = promoted.get(key)
        if hit is None or value is None or value == "":
            continue
        name, priority = hit
        if name not in found or priority < priorities[name]:
            found[name] = value
            priorities[name] = priority
    return found


def _event_type(found: Mapping[str, Any]) -> str:
    op = found.get("operation")
    if isinstance(op, str):
        mapped = OPERATION_EVENT_TYPES.get(op.lower())
        if mapped:
            return mapped
    kind = found.get("openinference_kind")
    if isinstance(kind, str):
        mapped = OPENINFERENCE_EVENT_TYPES.get(kind.upper())
        if mapped:
            return mapped
    kind = found.get("traceloop_kind")
    if isinstance(kind, str):
        mapped = TRACELOOP_EVENT_TYPES.get(kind.lower())
        if mapped:
            return mapped
    request_type = found.get("llm_request_type")
    if isinstance(request_type, str):
        mapped = LLM_REQUEST_TYPE_EVENT_TYPES.get(request_type.lower())
        if mapped:
            return mapped
    if isinstance(op, str) and op:
        # An operation this code does not know (a newer convention): keep it visible.
        return op.lower()
    if "tokens_in" in found or "tokens_out" in found:
        return "llm_call"
    if "tool_name" in found:
        return "tool_call"
    return "span"


def event_type_for(attributes: Mapping[str, Any]) -> str:
    """Gati event type of a span from its attributes.

    Precedence: ``gen_ai.operation.name``, ``openinference.span.kind``,
    ``traceloop.span.kind``, ``llm.request.type``; then token counts (``llm_call``), a tool
    name (``tool_call``), else ``span``.
    """
    return _event_type(_promoted(attributes))


# --------------------------------------------------------------------------------------
# Content types and the response
# --------------------------------------------------------------------------------------


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_protobuf_content_type(content_type: str | None) -> bool:
    return _media_type(content_type) in ("application/x-protobuf", "application/protobuf")


def is_json_content_type(content_type: str | None) -> bool:
    media = _media_type(content_type)
    return media == "application/json" or media.endswith("+json")


def decode_export_request(
    body: bytes, content_type: str | None, *, limits: DecodeLimits = DEFAULT_LIMITS
) -> DecodedSpans:
    """Decode an (already decompressed) OTLP/HTTP trace export body by its content type."""
    if is_protobuf_content_type(content_type):
        return decode_protobuf(body, limits=limits)
    if is_json_content_type(content_type):
        return decode_json(body, limits=limits)
    raise OtlpRequestError(
        "Content-Type",
        f"unsupported media type {content_type!r}; send application/x-protobuf or application/json",
        status=415,
    )


def encode_export_response(
    *, rejected_spans: int = 0, error_message: str = "", as_json: bool
) -> bytes:
    """An ``ExportTraceServiceResponse`` in the request's encoding.

    ``partial_success`` is set only when spans were rejected or there is a message, as the
    OTLP specification asks (an empty object means full success).
    """
    response = ExportTraceServiceResponse()
    if rejected_spans or error_message:
        response.partial_success.rejected_spans = rejected_spans
        response.partial_success.error_message = error_message
    if not as_json:
        return response.SerializeToString()
    body: dict[str, Any] = {}
    if rejected_spans or error_message:
        # OTLP/JSON: lowerCamelCase names, int64 as a decimal string.
        body["partialSuccess"] = {
            "rejectedSpans": str(rejected_spans),
            "errorMessage": error_message,
        }
    return orjson.dumps(body)


def summarize_errors(errors: Sequence[SpanError], *, limit: int = 5, what: str = "rejected") -> str:
    """A one-line ``error_message`` for ``partial_success``."""
    parts = [f"{e.field}: {e.message}" for e in errors[:limit]]
    more = len(errors) - limit
    if more > 0:
        parts.append(f"and {more} more")
    return f"{len(errors)} span(s) {what}: " + "; ".join(parts)


def summarize_warnings(warnings: Sequence[SpanError], *, limit: int = 5) -> str:
    """The ``error_message`` part for spans kept with values out of range (OTLP: a warning
    when no span was rejected)."""
    return summarize_errors(warnings, limit=limit, what="kept with values out of range, unused")


# --------------------------------------------------------------------------------------
# Value clipping
# --------------------------------------------------------------------------------------


class _Clip:
    """Applies :class:`DecodeLimits` to values and remembers what it cut (per span)."""

    __slots__ = ("chars", "depth", "items", "limits", "out_of_range", "truncated")

    def __init__(self, limits: DecodeLimits) -> None:
        self.limits = limits
        self.chars = limits.max_value_chars
        self.items = limits.max_array_items
        self.depth = limits.max_depth
        self.truncated: list[str] = []
        # Values kept as sent but not used: out of int64, or of Gati's bounds (gati.tracing.bounds).
        self.out_of_range: list[str] = []

    def text(self, value: str, where: str) -> str:
        if len(value) <= self.chars:
            return value
        self.truncated.append(where)
        cut = len(value) - self.chars
        return value[: self.chars] + TRUNCATION_MARKER.format(n=cut, unit="chars")

    def raw_bytes(self, value: bytes, where: str) -> str:
        # Bytes are kept as base64 text; the limit applies to the encoded text.
        limit_bytes = (self.chars // 4) * 3
        if len(value) <= limit_bytes:
            return base64.b64encode(value).decode("ascii")
        self.truncated.append(where)
        cut = len(value) - limit_bytes
        return base64.b64encode(value[:limit_bytes]).decode("ascii") + TRUNCATION_MARKER.format(
            n=cut, unit="bytes"
        )

    def too_many(self, values: list[Any], total: int, where: str) -> list[Any]:
        self.truncated.append(where)
        values.append(TRUNCATION_MARKER.format(n=total - len(values), unit="items"))
        return values

    def too_deep(self, where: str) -> str:
        self.truncated.append(where)
        return TRUNCATION_MARKER.format(n=1, unit="levels")

    def json_text(self, value: Any, where: str) -> str:
        """A JSON value (a bare value where an AnyValue belongs) kept as its JSON text."""
        try:
            return self.text(orjson.dumps(value).decode(), where)
        except TypeError:  # nested deeper than orjson writes
            return self.too_deep(where)

    def event_time(self, ns: int, where: str) -> str | None:
        """A span event's time (0: none); outside fixed64 it is out of range, not a date."""
        if not ns:
            return None
        if 0 < ns < _UINT64_END:
            return _iso(ns)
        self.out_of_range.append(where)
        return None

    def count32(self, value: int, where: str) -> int:
        """A dropped-items count (uint32 in the protocol); out of range: 0 (not stored)."""
        if 0 <= value < _UINT32_END:
            return value
        self.out_of_range.append(where)
        return 0

    def number(self, value: float) -> float | str:
        # NaN / ±Infinity are not JSON: keep them as the OTLP/JSON spelling.
        if math.isfinite(value):
            return value
        if math.isnan(value):
            return "NaN"
        return "Infinity" if value > 0 else "-Infinity"


# --------------------------------------------------------------------------------------
# Protobuf decoding
# --------------------------------------------------------------------------------------


def decode_protobuf(body: bytes, *, limits: DecodeLimits = DEFAULT_LIMITS) -> DecodedSpans:
    """Decode a protobuf ``ExportTraceServiceRequest``."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise OtlpRequestError(
            "body", f"not a valid protobuf ExportTraceServiceRequest ({exc})"
        ) from exc
    out = DecodedSpans()
    index = 0
    for r_i, resource_spans in enumerate(request.resource_spans):
        clip = _Clip(limits)
        resource = _pb_attributes(resource_spans.resource.attributes, clip, "resource")
        for s_i, scope_spans in enumerate(resource_spans.scope_spans):
            scope_pb = scope_spans.scope
            scope: dict[str, Any] | None = None
            if scope_pb.name or scope_pb.version or len(scope_pb.attributes):
                scope = {"name": scope_pb.name, "version": scope_pb.version}
                if len(scope_pb.attributes):
                    scope["attributes"] = _pb_attributes(scope_pb.attributes, clip, "scope")
            for p_i, span in enumerate(scope_spans.spans):
                path = f"resourceSpans[{r_i}].scopeSpans[{s_i}].spans[{p_i}]"
                event = _build_or_error(out, index, path, _pb_span, span, limits)
                if event is not None:
                    _finish(event, resource, scope)
                index += 1
    _inherit_agent_names(out.events)
    return out


def _pb_span(span: Any, limits: DecodeLimits) -> dict[str, Any]:
    clip = _Clip(limits)
    attributes = _pb_attributes(span.attributes, clip, "attributes")
    events = None
    span_events = span.events
    if span_events:
        events = []
        for i, ev in enumerate(span_events):
            if i >= limits.max_span_events:
                clip.truncated.append("events")
                break
            item: dict[str, Any] = {
                "name": ev.name,
                "timestamp": clip.event_time(ev.time_unix_nano, f"events[{i}].timeUnixNano"),
            }
            if len(ev.attributes):
                item["attributes"] = _pb_attributes(ev.attributes, clip, f"events[{i}]")
            if ev.dropped_attributes_count:
                item["dropped_attributes_count"] = ev.dropped_attributes_count
            events.append(item)
    links = None
    span_links = span.links
    if span_links:
        links = []
        for i, link in enumerate(span_links):
            if i >= limits.max_links:
                clip.truncated.append("links")
                break
            item = {"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex()}
            if link.trace_state:
                item["trace_state"] = link.trace_state
            if len(link.attributes):
                item["attributes"] = _pb_attributes(link.attributes, clip, f"links[{i}]")
            links.append(item)
    status = span.status
    return _span_event(
        trace_id=_pb_id(span.trace_id, 16, "traceId"),
        span_id=_pb_id(span.span_id, 8, "spanId"),
        parent_span_id=_pb_parent(span.parent_span_id),
        name=span.name,
        kind=span.kind,
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        attributes=attributes,
        events=events,
        links=links,
        status_code=status.code,
        status_message=status.message,
        trace_state=span.trace_state,
        dropped=(
            span.dropped_attributes_count,
            span.dropped_events_count,
            span.dropped_links_count,
        ),
        clip=clip,
    )


def _pb_id(raw: bytes, size: int, name: str) -> str:
    if not raw:
        raise _SpanFieldError(name, f"{name} is missing")
    if len(raw) != size:
        raise _SpanFieldError(name, f"{name} must be {size} bytes, got {len(raw)}")
    if not any(raw):
        raise _SpanFieldError(name, f"{name} is all zeroes (invalid)")
    return raw.hex()


def _pb_parent(raw: bytes) -> str | None:
    if not raw or not any(raw):
        return None
    return raw.hex()


def _pb_attributes(kvs: Iterable[Any], clip: _Clip, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    max_attributes = clip.limits.max_attributes
    chars = clip.chars
    for kv in kvs:
        if len(out) >= max_attributes:
            clip.truncated.append(f"{where} (more than {max_attributes})")
            break
        key = kv.key
        value = kv.value
        # The common scalar kinds inline (this loop is the hot path of OTLP ingestion).
        kind = value.WhichOneof("value")
        if kind == "string_value":
            text = value.string_value
            out[key] = text if len(text) <= chars else clip.text(text, f"{where}.{key}")
        elif kind == "int_value":
            out[key] = value.int_value
        elif kind == "bool_value":
            out[key] = value.bool_value
        else:
            out[key] = _pb_any(value, clip, f"{where}.{key}", 0)
    return out


def _pb_any(value: Any, clip: _Clip, where: str, depth: int) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return clip.text(value.string_value, where)
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return clip.number(value.double_value)
    if kind == "bool_value":
        return value.bool_value
    if kind == "array_value":
        if depth >= clip.depth:
            return clip.too_deep(where)
        items = value.array_value.values
        kept = [_pb_any(v, clip, where, depth + 1) for v in items[: clip.items]]
        if len(items) > clip.items:
            return clip.too_many(kept, len(items), where)
        return kept
    if kind == "kvlist_value":
        if depth >= clip.depth:
            return clip.too_deep(where)
        return {
            kv.key: _pb_any(kv.value, clip, f"{where}.{kv.key}", depth + 1)
            for kv in value.kvlist_value.values[: clip.limits.max_attributes]
        }
    if kind == "bytes_value":
        return clip.raw_bytes(value.bytes_value, where)
    if kind is None:
        return None
    # A kind this code does not know (e.g. string_value_strindex): keep it as text.
    return clip.text(str(getattr(value, kind)), where)


# --------------------------------------------------------------------------------------
# OTLP/JSON decoding
# --------------------------------------------------------------------------------------


def decode_json(body: bytes, *, limits: DecodeLimits = DEFAULT_LIMITS) -> DecodedSpans:
    """Decode an OTLP/JSON ``ExportTraceServiceRequest``."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OtlpRequestError("body", f"not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise OtlpRequestError("body", "must be a JSON object (ExportTraceServiceRequest)")
    resource_spans_list = _jget(doc, "resourceSpans", "resource_spans")
    if resource_spans_list is None:
        resource_spans_list = []
    if not isinstance(resource_spans_list, list):
        raise OtlpRequestError("resourceSpans", "must be an array")
    out = DecodedSpans()
    index = 0
    for r_i, resource_spans in enumerate(resource_spans_list):
        r_path = f"resourceSpans[{r_i}]"
        if not isinstance(resource_spans, dict):
            raise OtlpRequestError(r_path, "must be an object")
        clip = _Clip(limits)
        resource_doc = resource_spans.get("resource") or {}
        resource = (
            _json_attributes(resource_doc.get("attributes"), clip, "resource")
            if isinstance(resource_doc, dict)
            else {}
        )
        scope_list = _jget(
            resource_spans,
            "scopeSpans",
            "scope_spans",
            "instrumentationLibrarySpans",
            "instrumentation_library_spans",
        )
        if scope_list is None:
            continue
        if not isinstance(scope_list, list):
            raise OtlpRequestError(f"{r_path}.scopeSpans", "must be an array")
        for s_i, scope_spans in enumerate(scope_list):
            s_path = f"{r_path}.scopeSpans[{s_i}]"
            if not isinstance(scope_spans, dict):
                raise OtlpRequestError(s_path, "must be an object")
            scope_doc = _jget(
                scope_spans, "scope", "instrumentationLibrary", "instrumentation_library"
            )
            scope: dict[str, Any] | None = None
            if isinstance(scope_doc, dict) and scope_doc:
                scope = {
                    "name": _as_text(scope_doc.get("name")),
                    "version": _as_text(scope_doc.get("version")),
                }
                if scope_doc.get("attributes"):
                    scope["attributes"] = _json_attributes(scope_doc["attributes"], clip, "scope")
            spans = scope_spans.get("spans")
            if spans is None:
                continue
            if not isinstance(spans, list):
                raise OtlpRequestError(f"{s_path}.spans", "must be an array")
            for p_i, span in enumerate(spans):
                path = f"{s_path}.spans[{p_i}]"
                event = _build_or_error(out, index, path, _json_span, span, limits)
                if event is not None:
                    _finish(event, resource, scope)
                index += 1
    _inherit_agent_names(out.events)
    return out


def _jget(doc: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = doc.get(name)
        if value is not None:
            return value
    return None


def _json_span(span: Any, limits: DecodeLimits) -> dict[str, Any]:
    if not isinstance(span, dict):
        raise _SpanFieldError("", "span must be a JSON object")
    clip = _Clip(limits)
    attributes = _json_attributes(span.get("attributes"), clip, "attributes")
    events = None
    raw_events = span.get("events")
    if isinstance(raw_events, list) and raw_events:
        events = []
        for i, ev in enumerate(raw_events):
            if i >= limits.max_span_events:
                clip.truncated.append("events")
                break
            if not isinstance(ev, dict):
                continue
            where = f"events[{i}].timeUnixNano"
            ts = _json_int(_jget(ev, "timeUnixNano", "time_unix_nano"), where)
            item: dict[str, Any] = {
                "name": _as_text(ev.get("name")),
                "timestamp": clip.event_time(ts, where),
            }
            if ev.get("attributes"):
                item["attributes"] = _json_attributes(ev["attributes"], clip, f"events[{i}]")
            dropped_count = clip.count32(
                _json_int(
                    _jget(ev, "droppedAttributesCount", "dropped_attributes_count"), "dropped"
                ),
                f"events[{i}].droppedAttributesCount",
            )
            if dropped_count:
                item["dropped_attributes_count"] = dropped_count
            events.append(item)
    links = None
    raw_links = span.get("links")
    if isinstance(raw_links, list) and raw_links:
        links = []
        for i, link in enumerate(raw_links):
            if i >= limits.max_links:
                clip.truncated.append("links")
                break
            if not isinstance(link, dict):
                continue
            try:
                item = {
                    "trace_id": _json_id(_jget(link, "traceId", "trace_id"), 16, "traceId"),
                    "span_id": _json_id(_jget(link, "spanId", "span_id"), 8, "spanId"),
                }
            except _SpanFieldError:
                continue  # a broken link does not make the span unstorable
            trace_state = _jget(link, "traceState", "trace_state")
            if trace_state:
                item["trace_state"] = _as_text(trace_state)
            if link.get("attributes"):
                item["attributes"] = _json_attributes(link["attributes"], clip, f"links[{i}]")
            links.append(item)
    status = span.get("status")
    status_code = 0
    status_message = ""
    if isinstance(status, dict):
        status_code = _json_enum(status.get("code"), _STATUS_CODE_NAMES, "status.code")
        status_message = _as_text(status.get("message"))
    dropped_attributes, dropped_events, dropped_links = (
        clip.count32(_json_int(_jget(span, camel, snake), camel), camel)
        for camel, snake in (
            ("droppedAttributesCount", "dropped_attributes_count"),
            ("droppedEventsCount", "dropped_events_count"),
            ("droppedLinksCount", "dropped_links_count"),
        )
    )
    parent_raw = _jget(span, "parentSpanId", "parent_span_id")
    return _span_event(
        trace_id=_json_id(_jget(span, "traceId", "trace_id"), 16, "traceId"),
        span_id=_json_id(_jget(span, "spanId", "span_id"), 8, "spanId"),
        parent_span_id=_json_parent(parent_raw),
        name=_as_text(span.get("name")),
        kind=_json_enum(span.get("kind"), _SPAN_KIND_NAMES, "kind"),
        start_ns=_json_int(
            _jget(span, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano"
        ),
        end_ns=_json_int(_jget(span, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano"),
        attributes=attributes,
        events=events,
        links=links,
        status_code=status_code,
        status_message=status_message,
        trace_state=_as_text(_jget(span, "traceState", "trace_state")),
        dropped=(dropped_attributes, dropped_events, dropped_links),
        clip=clip,
    )


def _json_id(raw: Any, size: int, name: str) -> str:
    """Hex (OTLP/JSON) or base64 (protobuf JSON mapping) id → lowercase hex."""
    if raw is None or raw == "":
        raise _SpanFieldError(name, f"{name} is missing")
    if not isinstance(raw, str):
        raise _SpanFieldError(name, f"{name} must be a string, got {type(raw).__name__}")
    if len(raw) == size * 2:
        try:
            decoded = bytes.fromhex(raw)
        except ValueError:
            decoded = b""
    else:
        decoded = b""
    if not decoded:
        try:
            decoded = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if len(decoded) != size:
            raise _SpanFieldError(
                name, f"{name} must be {size * 2} hex characters, got {raw[:80]!r}"
            )
    if not any(decoded):
        raise _SpanFieldError(name, f"{name} is all zeroes (invalid)")
    return decoded.hex()


def _json_parent(raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    try:
        return _json_id(raw, 8, "parentSpanId")
    except _SpanFieldError as exc:
        if "all zeroes" in exc.message:
            return None
        raise


def _json_int(raw: Any, name: str) -> int:
    if raw is None or raw == "":
        return 0
    if isinstance(raw, bool):
        raise _SpanFieldError(name, f"{name} must be an integer")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str):
        try:
            return int(raw)
        except ValueError:
            pass
    raise _SpanFieldError(name, f"{name} must be an integer (int64 as string or number)")


def _json_enum(raw: Any, names: Mapping[str, int], name: str) -> int:
    if raw is None or raw == "":
        return 0
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        if raw in names:
            return names[raw]
        try:
            return int(raw)
        except ValueError:
            pass
    raise _SpanFieldError(name, f"{name} has an unknown value {raw!r}")


def _as_text(raw: Any) -> str:
    if raw is None:
        return ""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, dict | list):  # JSON text; str() of a deep one could exhaust the stack
        try:
            return orjson.dumps(raw).decode()
        except TypeError:
            return TRUNCATION_MARKER.format(n=1, unit="levels")
    return str(raw)


def _json_attributes(raw: Any, clip: _Clip, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not isinstance(raw, list):
        return out
    max_attributes = clip.limits.max_attributes
    for kv in raw:
        if not isinstance(kv, dict):
            continue
        key = kv.get("key")
        if not isinstance(key, str):
            continue
        if len(out) >= max_attributes:
            clip.truncated.append(f"{where} (more than {max_attributes})")
            break
        out[key] = _json_any(kv.get("value"), clip, f"{where}.{key}", 0)
    return out


_JSON_VALUE_KEYS = {
    "stringValue": "string",
    "string_value": "string",
    "boolValue": "bool",
    "bool_value": "bool",
    "intValue": "int",
    "int_value": "int",
    "doubleValue": "double",
    "double_value": "double",
    "arrayValue": "array",
    "array_value": "array",
    "kvlistValue": "kvlist",
    "kvlist_value": "kvlist",
    "bytesValue": "bytes",
    "bytes_value": "bytes",
}


def _json_any(value: Any, clip: _Clip, where: str, depth: int) -> Any:
    if not isinstance(value, dict):
        # Not an AnyValue (a bare JSON value): keep it, as text when it is not a scalar.
        if value is None or isinstance(value, bool | int | float):
            return clip.number(value) if isinstance(value, float) else value
        if isinstance(value, str):
            return clip.text(value, where)
        return clip.json_text(value, where)
    if not value:
        return None
    for key, raw in value.items():
        kind = _JSON_VALUE_KEYS.get(key)
        if kind == "string":
            return clip.text(_as_text(raw), where)
        if kind == "bool":
            return raw if isinstance(raw, bool) else _as_text(raw).lower() == "true"
        if kind == "int":
            if isinstance(raw, int) and not isinstance(raw, bool):
                number = raw
            else:
                try:
                    number = int(raw)
                except (TypeError, ValueError, OverflowError):
                    return clip.text(_as_text(raw), where)
            if _INT64_MIN <= number <= _INT64_MAX:
                return number
            # Not an int64 (what protobuf would refuse): kept as sent, as text, and not used.
            clip.out_of_range.append(where)
            return clip.text(_as_text(raw), where)
        if kind == "double":
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                return clip.number(float(raw))
            try:
                return clip.number(float(raw))
            except (TypeError, ValueError):
                return clip.text(_as_text(raw), where)
        if kind == "array":
            if depth >= clip.depth:
                return clip.too_deep(where)
            items = raw.get("values") if isinstance(raw, dict) else None
            if not isinstance(items, list):
                return []
            kept = [_json_any(v, clip, where, depth + 1) for v in items[: clip.items]]
            if len(items) > clip.items:
                return clip.too_many(kept, len(items), where)
            return kept
        if kind == "kvlist":
            if depth >= clip.depth:
                return clip.too_deep(where)
            items = raw.get("values") if isinstance(raw, dict) else None
            out: dict[str, Any] = {}
            if isinstance(items, list):
                for kv in items[: clip.limits.max_attributes]:
                    if isinstance(kv, dict) and isinstance(kv.get("key"), str):
                        out[kv["key"]] = _json_any(
                            kv.get("value"), clip, f"{where}.{kv['key']}", depth + 1
                        )
            return out
        if kind == "bytes":
            try:
                decoded = base64.b64decode(_as_text(raw), validate=True)
            except (binascii.Error, ValueError):
                return clip.text(_as_text(raw), where)
            return clip.raw_bytes(decoded, where)
    # An AnyValue kind this code does not know: keep its value as text.
    raw = next(iter(value.values()))
    return clip.text(raw, where) if isinstance(raw, str) else clip.json_text(raw, where)


# --------------------------------------------------------------------------------------
# Span → event
# --------------------------------------------------------------------------------------


class _SpanFieldError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _build_or_error(
    out: DecodedSpans,
    index: int,
    path: str,
    build: Callable[[Any, DecodeLimits], dict[str, Any]],
    span: Any,
    limits: DecodeLimits,
) -> dict[str, Any] | None:
    try:
        event = build(span, limits)
    except _SpanFieldError as exc:
        field_path = f"{path}.{exc.field}" if exc.field else path
        out.errors.append(SpanError(index=index, field=field_path, message=exc.message))
        return None
    out.events.append(event)
    unused = event["data"].get("out_of_range")
    if unused:
        out.warnings.append(
            SpanError(index=index, field=path, message="out of range: " + ", ".join(unused))
        )
    return event


def _finish(event: dict[str, Any], resource: dict[str, Any], scope: dict[str, Any] | None) -> None:
    """Attach resource/scope (shared by the spans of one resource) and resolve the agent."""
    data = event["data"]
    if resource:
        data["resource"] = resource
    if scope:
        data["scope"] = scope
    if event["agent_name"] is None:
        agent = _first_text(resource, AGENT_NAME_KEYS)
        if agent:
            event["agent_name"] = agent[:MAX_AGENT_NAME]
            event["_agent_explicit"] = True
        else:
            service = _first_text(resource, ("service.name",)) or "unknown_agent"
            event["agent_name"] = service[:MAX_AGENT_NAME]
            event["_agent_explicit"] = False
    else:
        event["_agent_explicit"] = True


def _inherit_agent_names(events: list[dict[str, Any]]) -> None:
    """A span without its own agent name takes its nearest ancestor's (same request)."""
    explicit: dict[tuple[str, str], str] = {}
    parents: dict[tuple[str, str], str | None] = {}
    for ev in events:
        key = (ev["run_id"], ev["event_id"])
        parents[key] = ev["data"].get("parent_run_id")
        if ev["_agent_explicit"]:
            explicit[key] = ev["agent_name"]
    for ev in events:
        if not ev.pop("_agent_explicit"):
            run_id = ev["run_id"]
            parent = ev["data"].get("parent_run_id")
            seen = 0
            while parent is not None and seen < 256:
                name = explicit.get((run_id, parent))
                if name:
                    ev["agent_name"] = name
                    break
                parent = parents.get((run_id, parent))
                seen += 1


def _first_text(attributes: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    for key in keys:
        value = attributes.get(key)
        if value is not None and value != "":
            return value if isinstance(value, str) else str(value)
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _as_number(value: Any) -> int | float | None:
    """A number, or a string holding one (counts and costs are often sent as strings)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
        try:
            return float(value)
        except ValueError:
            return None
    return None


class _Promoted:
    """Reads the numeric GenAI fields of one span within Gati's bounds: a value out of them is
    not used, and its attribute is listed in ``clip.out_of_range``."""

    __slots__ = ("attributes", "clip", "found")

    def __init__(self, found: dict[str, Any], attributes: Mapping[str, Any], clip: _Clip) -> None:
        self.found = found
        self.attributes = attributes
        self.clip = clip

    def number(self, name: str, high: float) -> int | float | None:
        number = _as_number(self.found.get(name))
        if number is None:
            return None  # absent, or not a number at all
        if 0 <= number <= high:  # NaN fails this too
            return number
        self.unused(name)
        return None

    def unused(self, name: str) -> None:
        for key in _PROMOTED_FIELDS[name]:  # the attribute it came from (as _promoted chose)
            value = self.attributes.get(key)
            if value is not None and value != "":
                self.clip.out_of_range.append(f"attributes.{key}")
                return


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_UINT64_END = 2**64
_UINT32_END = 2**32


@lru_cache(maxsize=4096)
def _iso_second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _iso(ns: int) -> str:
    """Nanoseconds since the epoch → ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (microseconds, UTC)."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return f"{_iso_second(seconds)}.{rest // 1000:06d}Z"


def _exception_from_events(events: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    if not events:
        return None
    for ev in events:
        if ev.get("name") == "exception":
            attrs = ev.get("attributes") or {}
            error = {
                "type": attrs.get("exception.type"),
                "message": attrs.get("exception.message"),
                "stacktrace": attrs.get("exception.stacktrace"),
            }
            return {k: v for k, v in error.items() if v is not None}
    return None


def _span_event(
    *,
    trace_id: str,
    span_id: str,
    parent_span_id: str | None,
    name: str,
    kind: int,
    start_ns: int,
    end_ns: int,
    attributes: dict[str, Any],
    events: list[dict[str, Any]] | None,
    links: list[dict[str, Any]] | None,
    status_code: int,
    status_message: str,
    trace_state: str,
    dropped: tuple[int, int, int],
    clip: _Clip,
) -> dict[str, Any]:
    if start_ns <= 0:
        if end_ns <= 0:
            raise _SpanFieldError("startTimeUnixNano", "startTimeUnixNano is missing")
        start_ns = end_ns
    if start_ns >= 1 << 63:
        raise _SpanFieldError("startTimeUnixNano", "startTimeUnixNano is out of range")
    latency_ms = (end_ns - start_ns) / 1_000_000 if end_ns >= start_ns else None
    if latency_ms is not None and latency_ms > MAX_LATENCY_MS:
        clip.out_of_range.append("endTimeUnixNano")
        latency_ms = None

    is_error = status_code == 2
    data: dict[str, Any] = {}
    if parent_span_id is not None:
        data["parent_run_id"] = parent_span_id
    data["name"] = name
    data["span_kind"] = SPAN_KINDS[kind] if 0 <= kind < len(SPAN_KINDS) else str(kind)
    data["latency_ms"] = latency_ms
    data["status"] = "error" if is_error else "completed"
    data["status_code"] = STATUS_CODES[status_code] if 0 <= status_code < 3 else str(status_code)
    if status_message:
        data["status_message"] = status_message

    # --- GenAI fields (one pass over the attributes) ----------------------------------
    found = _promoted(attributes)
    response_model = _text(found.get("response_model"))
    request_model = _text(found.get("request_model"))
    model = response_model or request_model
    if model:
        data["model"] = model
        if request_model and request_model != model:
            data["request_model"] = request_model
    numbers = _Promoted(found, attributes, clip)
    for key in _COUNT_FIELDS:
        if key in found:
            count = numbers.number(key, MAX_TOKENS)
            if count is not None:
                data[key] = int(count)
    amount = numbers.number("cost", MAX_COST)
    cost = None if amount is None else float(amount)
    if cost is None and ("cost_in" in found or "cost_out" in found):
        cost_in = numbers.number("cost_in", MAX_COST)
        cost_out = numbers.number("cost_out", MAX_COST)
        if cost_in is not None or cost_out is not None:
            cost = float(cost_in or 0.0) + float(cost_out or 0.0)
            if cost > MAX_COST:
                numbers.unused("cost_in")
                numbers.unused("cost_out")
                cost = None
    if cost is not None:
        data["cost"] = cost
    for key in _TEXT_FIELDS:
        if key in found:
            data[key] = _text(found[key])

    error = _exception_from_events(events)
    if is_error:
        if error is None:
            error = {}
        if status_message and "message" not in error:
            error["message"] = status_message
        data["error"] = error
    elif error:
        # An exception was recorded but the span did not fail (handled): keep it visible.
        data["exception"] = error

    data["attributes"] = attributes
    if events:
        data["events"] = events
    if links:
        data["links"] = links
    if trace_state:
        data["trace_state"] = trace_state
    if any(dropped):
        data["dropped"] = {
            name: count
            for name, count in zip(("attributes", "events", "links"), dropped, strict=True)
            if count
        }
    if clip.truncated:
        data["truncated"] = clip.truncated
    if clip.out_of_range:
        data["out_of_range"] = list(dict.fromkeys(clip.out_of_range))  # each path once

    agent = _text(found.get("agent"))
    if not agent and str(found.get("traceloop_kind", "")).lower() == "agent":
        agent = _text(found.get("traceloop_entity"))

    event_type = _event_type(found)
    return {
        "event_id": span_id,
        "run_id": trace_id,
        "agent_name": agent[:MAX_AGENT_NAME] if agent else None,
        "event_type": event_type[:MAX_EVENT_TYPE],
        "timestamp": _iso(start_ns),
        "data": data,
    }
