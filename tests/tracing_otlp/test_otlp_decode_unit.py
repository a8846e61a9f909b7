"""OTLP decoding and the span → Gati event mapping (pure, no database)."""

from __future__ import annotations

import base64
import gzip

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1 import common_pb2

from gati.tracing.otlp import (
    DecodeLimits,
    OtlpRequestError,
    decode_export_request,
    decode_json,
    decode_protobuf,
    encode_export_response,
    event_type_for,
    summarize_errors,
)
from tests.tracing_otlp.otlp_samples import (
    agent_run,
    as_message_to_json,
    as_otlp_json,
    as_protobuf,
    openinference_chain,
    record,
)

TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"
PARENT = "eee19b7ec3c1b173"


def _by_name(events: list[dict]) -> dict[str, dict]:
    return {e["data"]["name"]: e for e in events}


def _json_request(*spans: dict, resource: list | None = None) -> bytes:
    return orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": resource or []},
                    "scopeSpans": [{"scope": {"name": "t"}, "spans": list(spans)}],
                }
            ]
        }
    )


def _span(**overrides: object) -> dict:
    span: dict = {
        "traceId": TRACE,
        "spanId": SPAN,
        "name": "op",
        "kind": 1,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000250000000",
    }
    span.update(overrides)
    return {k: v for k, v in span.items() if v is not None}


# --------------------------------------------------------------------------------------
# Real SDK output, three encodings, one result
# --------------------------------------------------------------------------------------


def test_protobuf_otlp_json_and_message_to_json_decode_identically() -> None:
    spans = record(agent_run)
    from_protobuf = decode_protobuf(as_protobuf(spans))
    from_json = decode_json(as_otlp_json(spans))
    from_generic_json = decode_json(as_message_to_json(spans))
    assert from_protobuf.errors == from_json.errors == from_generic_json.errors == []
    assert len(from_protobuf.events) == 3
    assert from_protobuf.events == from_json.events == from_generic_json.events


def test_genai_agent_run_maps_to_a_tree_with_types_tokens_and_failure() -> None:
    spans = record(agent_run)
    decoded = decode_protobuf(as_protobuf(spans))
    events = _by_name(decoded.events)
    agent = events["invoke_agent planner"]
    chat = events["chat gpt-4o"]
    tool = events["execute_tool search"]

    root_span = next(s for s in spans if s.name == "invoke_agent planner")
    assert agent["run_id"] == format(root_span.context.trace_id, "032x")
    assert agent["event_id"] == format(root_span.context.span_id, "016x")
    assert "parent_run_id" not in agent["data"]
    assert chat["data"]["parent_run_id"] == agent["event_id"]
    assert tool["data"]["parent_run_id"] == agent["event_id"]
    assert {e["run_id"] for e in decoded.events} == {agent["run_id"]}

    assert (agent["event_type"], chat["event_type"], tool["event_type"]) == (
        "agent",
        "llm_call",
        "tool_call",
    )
    # Children inherit the agent name of their ancestor; the service name is the fallback.
    assert {e["agent_name"] for e in decoded.events} == {"planner"}

    assert chat["data"]["model"] == "gpt-4o-2024-08-06"
    assert chat["data"]["request_model"] == "gpt-4o"
    assert chat["data"]["provider"] == "openai"
    assert chat["data"]["tokens_in"] == 1200
    assert chat["data"]["tokens_out"] == 300
    assert chat["data"]["tokens_cache_read"] == 200
    assert "cost" not in chat["data"]  # no client cost: priced later

    assert tool["data"]["status"] == "error"
    assert tool["data"]["status_code"] == "ERROR"
    assert tool["data"]["error"]["type"] == "TimeoutError"
    assert tool["data"]["error"]["message"] == "search backend timed out"
    assert tool["data"]["tool_name"] == "search"
    assert tool["data"]["events"][0]["name"] == "exception"
    assert chat["data"]["status"] == "completed"

    assert chat["timestamp"].endswith("Z")
    assert chat["data"]["latency_ms"] >= 0
    assert chat["data"]["resource"]["service.name"] == "test-service"
    assert chat["data"]["scope"] == {"name": "gati.tests", "version": "1.0"}
    assert chat["data"]["attributes"]["gen_ai.usage.input_tokens"] == 1200


def test_openinference_attributes() -> None:
    decoded = decode_json(as_otlp_json(record(openinference_chain, service="rag-app")))
    events = _by_name(decoded.events)
    assert events["RAG pipeline"]["event_type"] == "chain"
    assert events["retrieve"]["event_type"] == "retrieval"
    llm = events["ChatCompletion"]
    assert llm["event_type"] == "llm_call"
    assert llm["agent_name"] == "rag-app"  # no agent attribute anywhere: service.name
    data = llm["data"]
    assert data["model"] == "claude-3-5-sonnet-20241022"
    assert data["provider"] == "anthropic"
    assert (data["tokens_in"], data["tokens_out"]) == (1000, 100)
    assert (data["tokens_cache_read"], data["tokens_cache_creation"]) == (400, 100)
    assert data["tokens_reasoning"] == 40
    assert data["tokens_total"] == 1100
    assert data["cost"] == pytest.approx(0.0123)


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"gen_ai.operation.name": "chat"}, "llm_call"),
        ({"gen_ai.operation.name": "text_completion"}, "llm_call"),
        ({"gen_ai.operation.name": "generate_content"}, "llm_call"),
        ({"gen_ai.operation.name": "embeddings"}, "embedding"),
        ({"gen_ai.operation.name": "execute_tool"}, "tool_call"),
        ({"gen_ai.operation.name": "invoke_agent"}, "agent"),
        ({"gen_ai.operation.name": "create_agent"}, "agent"),
        ({"gen_ai.operation.name": "invoke_workflow"}, "workflow"),
        ({"gen_ai.operation.name": "some_future_op"}, "some_future_op"),
        ({"openinference.span.kind": "LLM"}, "llm_call"),
        ({"openinference.span.kind": "TOOL"}, "tool_call"),
        ({"openinference.span.kind": "CHAIN"}, "chain"),
        ({"openinference.span.kind": "AGENT"}, "agent"),
        ({"openinference.span.kind": "RETRIEVER"}, "retrieval"),
        ({"openinference.span.kind": "EMBEDDING"}, "embedding"),
        ({"openinference.span.kind": "RERANKER"}, "rerank"),
        ({"openinference.span.kind": "GUARDRAIL"}, "guardrail"),
        ({"openinference.span.kind": "EVALUATOR"}, "evaluator"),
        ({"traceloop.span.kind": "workflow"}, "workflow"),
        ({"traceloop.span.kind": "task"}, "task"),
        ({"traceloop.span.kind": "agent"}, "agent"),
        ({"traceloop.span.kind": "tool"}, "tool_call"),
        ({"llm.request.type": "chat", "gen_ai.system": "openai"}, "llm_call"),
        ({"llm.request.type": "embedding"}, "embedding"),
        ({"gen_ai.usage.prompt_tokens": 3}, "llm_call"),
        ({"http.method": "GET"}, "span"),
        # The GenAI operation wins over the other conventions.
        ({"gen_ai.operation.name": "chat", "openinference.span.kind": "CHAIN"}, "llm_call"),
    ],
)
def test_event_types(attributes: dict, expected: str) -> None:
    assert event_type_for(attributes) == expected


def test_openllmetry_attributes_and_traceloop_agent_name() -> None:
    body = _json_request(
        _span(
            spanId="0000000000000001",
            name="my_agent.agent",
            attributes=[
                {"key": "traceloop.span.kind", "value": {"stringValue": "agent"}},
                {"key": "traceloop.entity.name", "value": {"stringValue": "researcher"}},
            ],
        ),
        _span(
            spanId="0000000000000002",
            parentSpanId="0000000000000001",
            name="openai.chat",
            attributes=[
                {"key": "llm.request.type", "value": {"stringValue": "chat"}},
                {"key": "gen_ai.system", "value": {"stringValue": "openai"}},
                {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
                {"key": "gen_ai.usage.prompt_tokens", "value": {"intValue": "50"}},
                {"key": "gen_ai.usage.completion_tokens", "value": {"intValue": 7}},
                {"key": "gen_ai.usage.cache_read_input_tokens", "value": {"intValue": "10"}},
                {"key": "llm.usage.total_tokens", "value": {"intValue": "57"}},
            ],
        ),
    )
    events = _by_name(decode_json(body).events)
    assert events["my_agent.agent"]["agent_name"] == "researcher"
    chat = events["openai.chat"]
    assert chat["agent_name"] == "researcher"
    assert chat["event_type"] == "llm_call"
    assert chat["data"]["provider"] == "openai"
    assert (chat["data"]["tokens_in"], chat["data"]["tokens_out"]) == (50, 7)
    assert chat["data"]["tokens_cache_read"] == 10
    assert chat["data"]["tokens_total"] == 57


def test_cost_from_parts_and_agent_name_from_resource() -> None:
    body = _json_request(
        _span(
            attributes=[
                {"key": "llm.cost.prompt", "value": {"doubleValue": 0.25}},
                {"key": "llm.cost.completion", "value": {"doubleValue": "0.5"}},
            ]
        ),
        resource=[
            {"key": "service.name", "value": {"stringValue": "svc"}},
            {"key": "gen_ai.agent.name", "value": {"stringValue": "from-resource"}},
        ],
    )
    (event,) = decode_json(body).events
    assert event["data"]["cost"] == pytest.approx(0.75)
    assert event["agent_name"] == "from-resource"


# --------------------------------------------------------------------------------------
# OTLP/JSON details
# --------------------------------------------------------------------------------------


def test_any_value_of_every_kind_in_json() -> None:
    attributes = [
        {"key": "s", "value": {"stringValue": "text"}},
        {"key": "b", "value": {"boolValue": True}},
        {"key": "i", "value": {"intValue": "9223372036854775807"}},
        {"key": "i_number", "value": {"intValue": 42}},
        {"key": "d", "value": {"doubleValue": 1.5}},
        {"key": "d_nan", "value": {"doubleValue": "NaN"}},
        {"key": "d_inf", "value": {"doubleValue": "-Infinity"}},
        {
            "key": "arr",
            "value": {"arrayValue": {"values": [{"intValue": "1"}, {"stringValue": "x"}, {}]}},
        },
        {
            "key": "kv",
            "value": {
                "kvlistValue": {
                    "values": [
                        {"key": "inner", "value": {"boolValue": False}},
                        {"key": "nested", "value": {"arrayValue": {"values": []}}},
                    ]
                }
            },
        },
        {"key": "bytes", "value": {"bytesValue": base64.b64encode(b"\x00\x01hi").decode()}},
        {"key": "empty", "value": {}},
        {"key": "future", "value": {"someFutureValue": {"a": 1}}},
        {"key": "bare", "value": "not an AnyValue"},
    ]
    (event,) = decode_json(_json_request(_span(attributes=attributes))).events
    got = event["data"]["attributes"]
    assert got["s"] == "text"
    assert got["b"] is True
    assert got["i"] == 9223372036854775807
    assert got["i_number"] == 42
    assert got["d"] == 1.5
    assert got["d_nan"] == "NaN"
    assert got["d_inf"] == "-Infinity"
    assert got["arr"] == [1, "x", None]
    assert got["kv"] == {"inner": False, "nested": []}
    assert got["bytes"] == base64.b64encode(b"\x00\x01hi").decode()
    assert got["empty"] is None
    assert got["future"] == '{"a":1}'  # unknown kinds are kept as text
    assert got["bare"] == "not an AnyValue"
    orjson.dumps(event)  # everything is JSON-serialisable (no NaN, no bytes)


def test_snake_case_field_names_and_enum_names() -> None:
    body = orjson.dumps(
        {
            "resource_spans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"string_value": "s"}}]
                    },
                    "scope_spans": [
                        {
                            "spans": [
                                {
                                    "trace_id": TRACE,
                                    "span_id": SPAN,
                                    "parent_span_id": PARENT,
                                    "name": "snake",
                                    "kind": "SPAN_KIND_CLIENT",
                                    "start_time_unix_nano": 1700000000000000000,
                                    "end_time_unix_nano": "1700000000001000000",
                                    "attributes": [
                                        {"key": "n", "value": {"int_value": "5"}},
                                        {
                                            "key": "gen_ai.usage.input_tokens",
                                            "value": {"int_value": 3},
                                        },
                                    ],
                                    "status": {"code": "STATUS_CODE_ERROR", "message": "bad"},
                                }
                            ]
                        }
                    ],
                }
            ]
        }
    )
    decoded = decode_json(body)
    assert decoded.errors == []
    (event,) = decoded.events
    assert event["agent_name"] == "s"
    assert event["data"]["parent_run_id"] == PARENT
    assert event["data"]["span_kind"] == "client"
    assert event["data"]["latency_ms"] == pytest.approx(1.0)
    assert event["data"]["attributes"]["n"] == 5
    assert event["data"]["tokens_in"] == 3
    assert event["data"]["status"] == "error"
    assert event["data"]["error"] == {"message": "bad"}
    assert event["timestamp"] == "2023-11-14T22:13:20.000000Z"


def test_all_zero_parent_is_a_root_and_base64_ids_are_accepted() -> None:
    trace_b64 = base64.b64encode(bytes.fromhex(TRACE)).decode()
    span_b64 = base64.b64encode(bytes.fromhex(SPAN)).decode()
    (event,) = decode_json(
        _json_request(_span(traceId=trace_b64, spanId=span_b64, parentSpanId="0" * 16))
    ).events
    assert event["run_id"] == TRACE
    assert event["event_id"] == SPAN
    assert "parent_run_id" not in event["data"]


# --------------------------------------------------------------------------------------
# Errors: per span, or for the whole request
# --------------------------------------------------------------------------------------


def test_spans_without_ids_are_item_errors_and_the_rest_is_kept() -> None:
    body = _json_request(
        _span(spanId="1111111111111111"),
        _span(traceId=None, spanId="2222222222222222"),
        _span(spanId=None),
        _span(traceId="0" * 32, spanId="3333333333333333"),
        _span(traceId="not-hex-and-not-base64!", spanId="4444444444444444"),
        _span(spanId="5555555555555555", startTimeUnixNano=None, endTimeUnixNano=None),
        "not an object",
        _span(spanId="6666666666666666", startTimeUnixNano="soon"),
        _span(spanId="7777777777777777"),
    )
    decoded = decode_json(body)
    assert [e["event_id"] for e in decoded.events] == ["1111111111111111", "7777777777777777"]
    assert [(e.index, e.field.rsplit(".", 1)[-1]) for e in decoded.errors] == [
        (1, "traceId"),
        (2, "spanId"),
        (3, "traceId"),
        (4, "traceId"),
        (5, "startTimeUnixNano"),
        (6, "spans[6]"),
        (7, "startTimeUnixNano"),
    ]
    assert decoded.errors[0].field == "resourceSpans[0].scopeSpans[0].spans[1].traceId"
    assert decoded.errors[0].message == "traceId is missing"
    assert decoded.total == 9
    message = summarize_errors(decoded.errors, limit=2)
    assert message.startswith("7 span(s) rejected: ")
    assert message.endswith("and 5 more")


def test_protobuf_span_without_trace_id_is_an_item_error() -> None:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    scope.spans.add(span_id=bytes.fromhex(SPAN), start_time_unix_nano=1)
    scope.spans.add(trace_id=bytes.fromhex(TRACE), span_id=b"\x01\x02", start_time_unix_nano=1)
    scope.spans.add(
        trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(SPAN), start_time_unix_nano=1
    )
    decoded = decode_protobuf(request.SerializeToString())
    assert len(decoded.events) == 1
    assert [(e.index, e.message) for e in decoded.errors] == [
        (0, "traceId is missing"),
        (1, "spanId must be 8 bytes, got 2"),
    ]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b'{"resourceSpans": {}}', b'{"resourceSpans": [1]}'],
)
def test_malformed_json_is_a_request_error(body: bytes) -> None:
    with pytest.raises(OtlpRequestError) as info:
        decode_json(body)
    assert info.value.status == 400


def test_malformed_protobuf_is_a_request_error() -> None:
    with pytest.raises(OtlpRequestError) as info:
        decode_protobuf(b"\x0a\xff\xff\xff\xff\x0f garbage")
    assert info.value.status == 400
    assert info.value.field == "body"


def test_empty_requests_decode_to_nothing() -> None:
    assert decode_protobuf(b"").total == 0
    assert decode_json(b"{}").total == 0


def test_content_type_dispatch() -> None:
    spans = record(agent_run)
    assert len(decode_export_request(as_protobuf(spans), "application/x-protobuf").events) == 3
    assert (
        len(decode_export_request(as_otlp_json(spans), "application/json; charset=utf-8").events)
        == 3
    )
    with pytest.raises(OtlpRequestError) as info:
        decode_export_request(gzip.compress(b"x"), "text/plain")
    assert info.value.status == 415


# --------------------------------------------------------------------------------------
# Huge values are truncated with a marker
# --------------------------------------------------------------------------------------


def test_huge_values_are_truncated_with_a_marker() -> None:
    limits = DecodeLimits(max_value_chars=100, max_array_items=3, max_depth=2, max_attributes=5)
    request = ExportTraceServiceRequest()
    span = (
        request.resource_spans.add()
        .scope_spans.add()
        .spans.add(
            trace_id=bytes.fromhex(TRACE),
            span_id=bytes.fromhex(SPAN),
            start_time_unix_nano=1_700_000_000_000_000_000,
            end_time_unix_nano=1_700_000_000_000_000_001,
        )
    )

    def add(key: str, value: common_pb2.AnyValue) -> None:
        span.attributes.add(key=key, value=value)

    add("big", common_pb2.AnyValue(string_value="x" * 10_000))
    add("blob", common_pb2.AnyValue(bytes_value=b"\xff" * 1_000))
    add(
        "many",
        common_pb2.AnyValue(
            array_value=common_pb2.ArrayValue(
                values=[common_pb2.AnyValue(int_value=i) for i in range(10)]
            )
        ),
    )
    deep = common_pb2.AnyValue(string_value="bottom")
    for _ in range(4):
        deep = common_pb2.AnyValue(array_value=common_pb2.ArrayValue(values=[deep]))
    add("deep", deep)
    add("small", common_pb2.AnyValue(string_value="ok"))
    add("one-too-many", common_pb2.AnyValue(string_value="dropped"))

    (event,) = decode_protobuf(request.SerializeToString(), limits=limits).events
    attrs = event["data"]["attributes"]
    assert attrs["big"] == "x" * 100 + "…[truncated 9900 chars]"
    assert attrs["blob"].endswith("…[truncated 925 bytes]")
    assert attrs["many"] == [0, 1, 2, "…[truncated 7 items]"]
    assert attrs["deep"] == [["…[truncated 1 levels]"]]
    assert attrs["small"] == "ok"
    assert "one-too-many" not in attrs
    truncated = event["data"]["truncated"]
    assert "attributes.big" in truncated
    assert "attributes.blob" in truncated
    assert "attributes.many" in truncated
    assert any(t.startswith("attributes (more than 5)") for t in truncated)


def test_default_limits_keep_large_but_reasonable_values() -> None:
    prompt = "p" * 20_000
    body = _json_request(_span(attributes=[{"key": "prompt", "value": {"stringValue": prompt}}]))
    (event,) = decode_json(body).events
    assert event["data"]["attributes"]["prompt"] == prompt
    assert "truncated" not in event["data"]


# --------------------------------------------------------------------------------------
# The reply
# --------------------------------------------------------------------------------------


def test_export_response_encodings() -> None:
    assert encode_export_response(as_json=False) == b""
    assert orjson.loads(encode_export_response(as_json=True)) == {}
    partial = ExportTraceServiceResponse.FromString(
        encode_export_response(rejected_spans=2, error_message="2 bad", as_json=False)
    )
    assert partial.partial_success.rejected_spans == 2
    assert partial.partial_success.error_message == "2 bad"
    assert orjson.loads(
        encode_export_response(rejected_spans=2, error_message="2 bad", as_json=True)
    ) == {"partialSuccess": {"rejectedSpans": "2", "errorMessage": "2 bad"}}


def test_overlong_names_are_cut_to_the_column_sizes() -> None:
    body = _json_request(
        _span(
            attributes=[
                {"key": "gen_ai.agent.name", "value": {"stringValue": "a" * 500}},
                {"key": "gen_ai.operation.name", "value": {"stringValue": "o" * 500}},
            ]
        )
    )
    (event,) = decode_json(body).events
    assert event["agent_name"] == "a" * 200
    assert event["event_type"] == "o" * 100
