"""OTLP values out of range: integers no int64 holds, counts, costs, durations and times beyond
Gati's bounds. The span is kept (the value stored as sent, as text when no JSON number holds
it) but the value is not used, ``data.out_of_range`` names it and partialSuccess warns — on
SQLite and PostgreSQL, in OTLP/JSON and protobuf; never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1 import common_pb2

from gati.tracing.bounds import MAX_COST, MAX_TOKENS
from gati.tracing.otlp import decode_json, decode_protobuf
from tests.tracing_otlp.otlp_samples import JSON, PROTOBUF

TRACE = "5b8efff798038103d269b633813fc60c"
ROOT = "eee19b7ec3c1b173"
START = 1_700_000_000_000_000_000
HUGE = "1180591620717411303424"  # 2**70


def attr(key: str, **value: Any) -> dict[str, Any]:
    return {"key": key, "value": value}


def span(span_id: str, *attributes: dict[str, Any], **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traceId": TRACE,
        "spanId": span_id,
        "name": f"span-{span_id}",
        "startTimeUnixNano": str(START),
        "endTimeUnixNano": str(START + 250_000_000),
        "attributes": list(attributes),
    }
    if span_id != ROOT:
        out["parentSpanId"] = ROOT
    out.update(fields)
    return out


def request(*spans: dict[str, Any], resource: list[dict[str, Any]] | None = None) -> bytes:
    return orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": resource or [attr("service.name", stringValue="s")]},
                    "scopeSpans": [{"scope": {"name": "t"}, "spans": list(spans)}],
                }
            ]
        }
    )


def out_of_range_spans() -> list[dict[str, Any]]:
    return [
        span(ROOT, attr("gen_ai.agent.name", stringValue="planner")),
        span(
            "0000000000000001",
            attr("gen_ai.usage.input_tokens", intValue=HUGE),
            attr("gen_ai.usage.output_tokens", intValue="-" + HUGE),
            attr("gen_ai.request.model", stringValue="gpt-4o"),
        ),
        span(
            "0000000000000002",
            attr("gen_ai.usage.input_tokens", intValue=str(2**63 - 1)),
            attr("gen_ai.usage.output_tokens", intValue=7),
            attr("llm.cost.total", doubleValue=1e308),
        ),
        span(
            "0000000000000003",
            attr("list", arrayValue={"values": [{"intValue": HUGE}, {"intValue": "5"}]}),
            attr("nested", kvlistValue={"values": [attr("n", intValue=HUGE)]}),
            attr("gen_ai.usage.input_tokens", intValue=3),
            attr("gen_ai.usage.cost", doubleValue=-1.5),
            events=[
                {"name": "late", "timeUnixNano": HUGE},
                {"name": "early", "timeUnixNano": "-5", "droppedAttributesCount": HUGE},
                {"name": "fine", "timeUnixNano": str(START)},
            ],
            droppedAttributesCount=HUGE,
        ),
        span(
            "0000000000000004",
            endTimeUnixNano=str(2**63 - 1),  # 237 years after the start
        ),
    ]


def test_values_out_of_range_are_kept_as_sent_but_not_used() -> None:
    decoded = decode_json(request(*out_of_range_spans()))
    assert decoded.errors == []
    events = {e["event_id"]: e["data"] for e in decoded.events}
    assert len(events) == 5
    orjson.dumps([e["data"] for e in decoded.events])  # every value is JSON

    one = events["0000000000000001"]
    assert one["attributes"]["gen_ai.usage.input_tokens"] == HUGE
    assert one["attributes"]["gen_ai.usage.output_tokens"] == "-" + HUGE
    assert "tokens_in" not in one and "tokens_out" not in one
    assert one["out_of_range"] == [  # each once, though both the value and its count fail
        "attributes.gen_ai.usage.input_tokens",
        "attributes.gen_ai.usage.output_tokens",
    ]

    two = events["0000000000000002"]
    assert two["attributes"]["gen_ai.usage.input_tokens"] == 2**63 - 1  # an int64: kept as is
    assert "tokens_in" not in two and two["tokens_out"] == 7 and "cost" not in two
    assert two["out_of_range"] == [
        "attributes.gen_ai.usage.input_tokens",
        "attributes.llm.cost.total",
    ]

    three = events["0000000000000003"]
    assert three["attributes"]["list"] == [HUGE, 5]
    assert three["attributes"]["nested"] == {"n": HUGE}
    assert three["tokens_in"] == 3 and "cost" not in three
    assert [e["timestamp"] for e in three["events"]] == [None, None, "2023-11-14T22:13:20.000000Z"]
    assert "dropped_attributes_count" not in three["events"][1]
    assert "dropped" not in three
    assert three["out_of_range"] == [
        "attributes.list",
        "attributes.nested.n",
        "events[0].timeUnixNano",
        "events[1].timeUnixNano",
        "events[1].droppedAttributesCount",
        "droppedAttributesCount",
        "attributes.gen_ai.usage.cost",
    ]

    four = events["0000000000000004"]
    assert four["latency_ms"] is None and four["out_of_range"] == ["endTimeUnixNano"]

    assert "out_of_range" not in events[ROOT]
    assert [(w.index, w.field) for w in decoded.warnings] == [
        (i, f"resourceSpans[0].scopeSpans[0].spans[{i}]") for i in (1, 2, 3, 4)
    ]
    assert decoded.warnings[0].message.startswith("out of range: attributes.gen_ai.usage")


def test_protobuf_int64_extremes_and_huge_doubles() -> None:
    request_pb = ExportTraceServiceRequest()
    scope_spans = request_pb.resource_spans.add().scope_spans.add()
    pb = scope_spans.spans.add()
    pb.trace_id = bytes.fromhex(TRACE)
    pb.span_id = bytes.fromhex("0000000000000009")
    pb.start_time_unix_nano = START
    pb.end_time_unix_nano = 2**64 - 1
    for key, value in (
        ("gen_ai.usage.input_tokens", common_pb2.AnyValue(int_value=2**63 - 1)),
        ("gen_ai.usage.output_tokens", common_pb2.AnyValue(int_value=-(2**63))),
        ("gen_ai.usage.cost", common_pb2.AnyValue(double_value=1e308)),
        ("gen_ai.request.model", common_pb2.AnyValue(string_value="gpt-4o")),
    ):
        pb.attributes.add(key=key, value=value)
    ev = pb.events.add()
    ev.name = "last"
    ev.time_unix_nano = 2**64 - 1  # fixed64: the year 2554 is still a date
    decoded = decode_protobuf(request_pb.SerializeToString())
    assert decoded.errors == []
    (event,) = decoded.events
    data = event["data"]
    assert data["attributes"]["gen_ai.usage.input_tokens"] == 2**63 - 1
    assert "tokens_in" not in data and "tokens_out" not in data and "cost" not in data
    assert data["latency_ms"] is None
    assert data["events"][0]["timestamp"].startswith("2554-07-21T")
    assert set(data["out_of_range"]) == {
        "attributes.gen_ai.usage.input_tokens",
        "attributes.gen_ai.usage.output_tokens",
        "attributes.gen_ai.usage.cost",
        "endTimeUnixNano",
    }


def test_counts_and_costs_at_the_bounds_are_used() -> None:
    decoded = decode_json(
        request(
            span(
                ROOT,
                attr("gen_ai.usage.input_tokens", intValue=str(MAX_TOKENS)),
                attr("gen_ai.usage.output_tokens", stringValue=str(MAX_TOKENS)),
                attr("llm.cost.prompt", doubleValue=MAX_COST),
                attr("llm.cost.completion", doubleValue=0),
            ),
            span(
                "0000000000000001",
                attr("llm.cost.prompt", doubleValue=MAX_COST),
                attr("llm.cost.completion", doubleValue=MAX_COST),  # the sum is over
            ),
        )
    )
    root, child = (e["data"] for e in decoded.events)
    assert root["tokens_in"] == root["tokens_out"] == MAX_TOKENS
    assert root["cost"] == MAX_COST and "out_of_range" not in root
    assert "cost" not in child
    assert child["out_of_range"] == ["attributes.llm.cost.prompt", "attributes.llm.cost.completion"]


@pytest.mark.parametrize("depth", [300, 1000])
def test_bare_json_values_too_deep_to_write_are_cut(depth: int) -> None:
    """Not AnyValues (kept as JSON text) nor names: nested deeper than orjson writes, they
    become the truncation marker instead of an exception."""
    deep = b"[" * depth + b"]" * depth
    body = request(span(ROOT, {"key": "bare", "value": "DEEP"}, name="DEEP"))
    (event,) = decode_json(body.replace(b'"DEEP"', deep)).events
    assert event["data"]["attributes"]["bare"] == "…[truncated 1 levels]"
    assert event["data"]["name"] == "…[truncated 1 levels]"
    orjson.dumps(event)


# --- through the API, on both databases -------------------------------------------------------


async def test_out_of_range_spans_are_stored_with_a_warning(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/traces", content=request(*out_of_range_spans()), headers=JSON)
    assert response.status_code == 200, response.text
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "0"  # a warning, as the OTLP specification spells it
    assert "4 span(s) kept with values out of range" in partial["errorMessage"]
    assert "gen_ai.usage.input_tokens" in partial["errorMessage"]

    run = (await client.get(f"/api/runs/{TRACE}")).json()
    assert run["event_count"] == 5
    assert run["tokens_in"] == 3 and run["tokens_out"] == 7
    assert run["status"] == "completed"
    timeline = (await client.get(f"/api/runs/{TRACE}/timeline")).json()
    by_id = {e["event_id"]: e for e in timeline["events"]}
    assert by_id["0000000000000001"]["data"]["attributes"]["gen_ai.usage.input_tokens"] == HUGE
    assert by_id["0000000000000001"]["tokens_in"] is None
    assert by_id["0000000000000002"]["cost"] is None
    # PostgreSQL writes jsonb numbers in full: 1e308 comes back as 309 digits.
    assert float(by_id["0000000000000002"]["data"]["attributes"]["llm.cost.total"]) == 1e308
    for path in (
        f"/api/runs/{TRACE}/trace",
        "/api/agents/planner/metrics",
        "/api/metrics/summary",
        f"/api/events/{ROOT}/children",
    ):
        assert (await client.get(path)).status_code == 200, path


async def test_protobuf_int64_max_tokens_and_costs_are_stored(client: httpx.AsyncClient) -> None:
    request_pb = ExportTraceServiceRequest()
    scope_spans = request_pb.resource_spans.add().scope_spans.add()
    for i, (tokens, cost) in enumerate(((2**63 - 1, 1e308), (2**63 - 1, 1e308), (10, 0.5))):
        pb = scope_spans.spans.add()
        pb.trace_id = bytes.fromhex(TRACE)
        pb.span_id = (i + 1).to_bytes(8, "big")
        pb.start_time_unix_nano = START
        pb.end_time_unix_nano = START + 1
        pb.attributes.add(
            key="gen_ai.usage.input_tokens", value=common_pb2.AnyValue(int_value=tokens)
        )
        pb.attributes.add(key="gen_ai.usage.cost", value=common_pb2.AnyValue(double_value=cost))
    response = await client.post(
        "/v1/traces", content=request_pb.SerializeToString(), headers=PROTOBUF
    )
    assert response.status_code == 200, response.text
    reply = ExportTraceServiceResponse.FromString(response.content)
    assert reply.partial_success.rejected_spans == 0
    assert "2 span(s) kept with values out of range" in reply.partial_success.error_message
    run = (await client.get(f"/api/runs/{TRACE}")).json()
    assert run["event_count"] == 3 and run["tokens_in"] == 10
    assert run["total_cost"] == pytest.approx(0.5)


async def test_a_span_within_range_gets_an_empty_reply(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/traces",
        content=request(span(ROOT, attr("gen_ai.usage.input_tokens", intValue=str(MAX_TOKENS)))),
        headers=JSON,
    )
    assert response.status_code == 200 and response.json() == {}, response.text
    run = (await client.get(f"/api/runs/{TRACE}")).json()
    assert run["tokens_in"] == MAX_TOKENS
