"""POST /v1/traces on SQLite and PostgreSQL, with spans produced by the real OpenTelemetry SDK."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import genai_prices
import httpx
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import Tracer

from tests.tracing_otlp.otlp_samples import (
    JSON,
    PROTOBUF,
    agent_run,
    as_message_to_json,
    as_otlp_json,
    as_protobuf,
    openinference_chain,
    record,
    tree_shape,
)


def trace_id_of(spans: Any) -> str:
    return format(spans[0].context.trace_id, "032x")


def expected_chat_cost() -> float:
    return float(
        genai_prices.calc_price(
            genai_prices.Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=200),
            "gpt-4o-2024-08-06",
            provider_id="openai",
        ).total_price
    )


async def post_protobuf(
    client: httpx.AsyncClient, spans: Any, *, gzipped: bool = False, **headers: str
) -> httpx.Response:
    body = as_protobuf(spans)
    extra = dict(PROTOBUF, **headers)
    if gzipped:
        body = gzip.compress(body)
        extra["Content-Encoding"] = "gzip"
    return await client.post("/v1/traces", content=body, headers=extra)


async def read_trace(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/runs/{run_id}/trace")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def nodes(tree: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    stack = list(tree)
    while stack:
        node = stack.pop()
        out[node["data"]["name"]] = node
        stack.extend(node["children"])
    return out


# --------------------------------------------------------------------------------------
# The happy paths: protobuf and JSON, gzip or not
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["protobuf", "protobuf+gzip", "json", "json+gzip"])
async def test_genai_agent_run_reads_back_as_a_tree(
    client: httpx.AsyncClient, encoding: str
) -> None:
    spans = record(agent_run)
    if encoding.startswith("protobuf"):
        body, headers = as_protobuf(spans), dict(PROTOBUF)
    else:
        body, headers = as_otlp_json(spans), dict(JSON)
    if encoding.endswith("gzip"):
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    response = await client.post("/v1/traces", content=body, headers=headers)
    assert response.status_code == 200, response.text
    if encoding.startswith("json"):
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {}
    else:
        assert response.headers["content-type"] == "application/x-protobuf"
        assert not ExportTraceServiceResponse.FromString(response.content).HasField(
            "partial_success"
        )

    run_id = trace_id_of(spans)
    trace = await read_trace(client, run_id)
    assert trace["agent_name"] == "planner"
    assert trace["event_count"] == 3
    assert trace["status"] == "failed"  # the tool span failed
    by_name = nodes(trace["execution_tree"])
    root = by_name["invoke_agent planner"]
    assert [r["event_id"] for r in trace["execution_tree"]] == [root["event_id"]]
    assert root["event_type"] == "agent"
    assert {c["data"]["name"] for c in root["children"]} == {"chat gpt-4o", "execute_tool search"}
    chat = by_name["chat gpt-4o"]
    assert chat["event_type"] == "llm_call"
    assert chat["parent_run_id"] == root["event_id"]
    assert chat["data"]["cost_source"] == "price_table"
    assert chat["cost"] == pytest.approx(expected_chat_cost())
    assert trace["total_cost"] == pytest.approx(expected_chat_cost())
    assert by_name["execute_tool search"]["data"]["status"] == "error"

    run = (await client.get(f"/api/runs/{run_id}")).json()
    assert (run["tokens_in"], run["tokens_out"]) == (1200, 300)
    assert run["error_count"] == 1
    assert run["total_cost"] == pytest.approx(expected_chat_cost())


async def test_message_to_json_bodies_with_base64_ids_are_accepted(
    client: httpx.AsyncClient,
) -> None:
    spans = record(agent_run)
    response = await client.post("/v1/traces", content=as_message_to_json(spans), headers=JSON)
    assert response.status_code == 200
    trace = await read_trace(client, trace_id_of(spans))
    assert trace["event_count"] == 3


async def test_openinference_client_cost_wins(client: httpx.AsyncClient) -> None:
    spans = record(openinference_chain, service="rag-app")
    assert (await post_protobuf(client, spans)).status_code == 200
    trace = await read_trace(client, trace_id_of(spans))
    llm = nodes(trace["execution_tree"])["ChatCompletion"]
    assert llm["cost"] == pytest.approx(0.0123)
    assert llm["data"]["cost_source"] == "client"
    assert trace["agent_name"] == "rag-app"
    assert trace["status"] == "completed"  # the root span arrived, nothing failed
    assert trace["total_cost"] == pytest.approx(0.0123)


# --------------------------------------------------------------------------------------
# Several requests, any order, duplicates
# --------------------------------------------------------------------------------------


async def test_spans_split_across_requests_children_first_and_duplicates(
    client: httpx.AsyncClient, make_project: Callable[..., Any]
) -> None:
    spans = record(agent_run)
    run_id = trace_id_of(spans)
    root = [s for s in spans if s.parent is None]
    children = [s for s in spans if s.parent is not None]

    # Reference: everything in one request, into another project of the same database.
    other = await make_project("reference")
    as_other = {"Authorization": f"Bearer {other['secret_key']}"}
    assert (await post_protobuf(client, spans, **as_other)).status_code == 200
    expected = (await client.get(f"/api/runs/{run_id}/trace", headers=as_other)).json()
    expected_run = (await client.get(f"/api/runs/{run_id}", headers=as_other)).json()
    assert expected["event_count"] == 3

    # Children first (one request each), then the root as JSON, then everything again twice.
    for child in children:
        assert (await post_protobuf(client, [child])).status_code == 200
    early = (await client.get(f"/api/runs/{run_id}?project=default")).json()
    assert early["status"] == "failed"  # the failed tool span is already there
    assert early["event_count"] == 2
    assert (
        await client.post("/v1/traces", content=as_otlp_json(root), headers=JSON)
    ).status_code == 200
    for _ in range(2):
        assert (await post_protobuf(client, spans, gzipped=True)).status_code == 200
        assert (
            await client.post("/v1/traces", content=as_otlp_json(spans), headers=JSON)
        ).status_code == 200

    got = (await client.get(f"/api/runs/{run_id}/trace?project=default")).json()
    assert tree_shape(got["execution_tree"]) == tree_shape(expected["execution_tree"])
    assert got["event_count"] == 3
    assert got["total_cost"] == pytest.approx(expected["total_cost"])
    assert got["total_cost"] == pytest.approx(expected_chat_cost())
    run = (await client.get(f"/api/runs/{run_id}?project=default")).json()
    for key in ("event_count", "error_count", "tokens_in", "tokens_out", "status"):
        assert run[key] == expected_run[key], key
    assert run["total_cost"] == pytest.approx(expected_run["total_cost"])
    assert run["total_duration_ms"] == pytest.approx(expected_run["total_duration_ms"])
    # Each event keeps the agent it was sent with.
    agents = {n["data"]["name"]: n for n in nodes(got["execution_tree"]).values()}
    assert agents["invoke_agent planner"]["event_type"] == "agent"


async def test_run_agent_comes_from_the_root_span_even_when_it_arrives_last(
    client: httpx.AsyncClient,
) -> None:
    spans = record(agent_run)
    children = [s for s in spans if s.parent is not None]
    root = [s for s in spans if s.parent is None]
    assert (await post_protobuf(client, children)).status_code == 200
    assert (await post_protobuf(client, root)).status_code == 200
    run = (await client.get(f"/api/runs/{trace_id_of(spans)}")).json()
    assert run["agent_name"] == "planner"
    # The run is counted once, under the root's agent, not under the children's.
    names = [a["name"] for a in (await client.get("/api/agents")).json()]
    assert len(names) > 1  # the children's spans name other agents
    runs = {n: (await client.get(f"/api/agents/{n}")).json()["total_runs"] for n in names}
    assert runs["planner"] == 1
    assert sum(runs.values()) == 1
    monthly = (await client.get("/api/agents/planner/metrics?period=monthly")).json()
    assert sum(m["runs"] for m in monthly["series"]) == 1


# --------------------------------------------------------------------------------------
# Partial success and request errors
# --------------------------------------------------------------------------------------

_GOOD = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"


def _json_span(span_id: str | None, trace_id: str | None = _GOOD, **extra: Any) -> dict[str, Any]:
    span: dict[str, Any] = {
        "name": f"span-{span_id}",
        "startTimeUnixNano": "1730716200000000000",
        "endTimeUnixNano": "1730716200500000000",
    }
    if span_id is not None:
        span["spanId"] = span_id
    if trace_id is not None:
        span["traceId"] = trace_id
    span.update(extra)
    return span


def _json_body(*spans: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]
                    },
                    "scopeSpans": [{"spans": list(spans)}],
                }
            ]
        }
    )


async def test_partial_success_in_json(client: httpx.AsyncClient) -> None:
    body = _json_body(
        _json_span("1000000000000001"),
        _json_span("1000000000000002", trace_id=None),
        _json_span(None),
        _json_span(
            "1000000000000003",
            parentSpanId="1000000000000001",
            attributes=[
                {"key": "huge", "value": {"stringValue": "x" * 100_000}},
                {"key": "odd", "value": {"someFutureValue": [1, 2]}},
            ],
        ),
    )
    response = await client.post("/v1/traces", content=body, headers=JSON)
    assert response.status_code == 200, response.text
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "2"
    assert "traceId is missing" in partial["errorMessage"]
    assert "spanId is missing" in partial["errorMessage"]
    trace = await read_trace(client, _GOOD)
    assert trace["event_count"] == 2
    child = nodes(trace["execution_tree"])["span-1000000000000003"]
    assert child["data"]["attributes"]["huge"].endswith("…[truncated 67232 chars]")
    assert child["data"]["attributes"]["odd"] == "[1,2]"
    assert child["data"]["truncated"] == ["attributes.huge"]


async def test_partial_success_in_protobuf(client: httpx.AsyncClient) -> None:
    def broken(tracer: Tracer) -> None:
        with tracer.start_as_current_span("ok"):
            pass

    spans = record(broken)
    request_body = as_protobuf(spans)
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest.FromString(request_body)
    bad = request.resource_spans[0].scope_spans[0].spans.add()
    bad.CopyFrom(request.resource_spans[0].scope_spans[0].spans[0])
    bad.trace_id = b""
    response = await client.post(
        "/v1/traces", content=request.SerializeToString(), headers=PROTOBUF
    )
    assert response.status_code == 200
    reply = ExportTraceServiceResponse.FromString(response.content)
    assert reply.partial_success.rejected_spans == 1
    assert "traceId is missing" in reply.partial_success.error_message
    assert (await read_trace(client, trace_id_of(spans)))["event_count"] == 1


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"\x0a\xff\xff\xff\xff\x0fgarbage", PROTOBUF, 400, "invalid_otlp_request"),
        (b"{not json", JSON, 400, "invalid_otlp_request"),
        (b'{"resourceSpans": 5}', JSON, 400, "invalid_otlp_request"),
        (b"spans", {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        (b"not gzip", {**PROTOBUF, "Content-Encoding": "gzip"}, 400, "bad_compression"),
    ],
)
async def test_request_errors(
    client: httpx.AsyncClient, body: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    response = await client.post("/v1/traces", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["error"] == code


async def test_empty_export_is_a_success(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/traces", content=b"", headers=PROTOBUF)
    assert response.status_code == 200
    assert response.content == b""
    assert (await client.post("/v1/traces", content=b"{}", headers=JSON)).json() == {}


# --------------------------------------------------------------------------------------
# Projects from keys
# --------------------------------------------------------------------------------------


async def test_project_from_the_key_in_production(
    make_app: Callable[..., Any],
    make_project: Callable[..., Any],
    production_settings: dict[str, Any],
) -> None:
    alpha = await make_project("alpha")
    beta = await make_project("beta")
    spans_a = record(agent_run)
    spans_b = record(agent_run)
    async with make_app(**production_settings) as app:
        assert (await post_protobuf(app, spans_a)).status_code == 401
        ok = await post_protobuf(app, spans_a, Authorization=f"Bearer {alpha['secret_key']}")
        assert ok.status_code == 200
        ok = await post_protobuf(app, spans_b, **{"X-API-Key": beta["public_key"]})
        assert ok.status_code == 200
        read_a = {"Authorization": f"Bearer {alpha['secret_key']}"}
        read_b = {"Authorization": f"Bearer {beta['secret_key']}"}
        run_a, run_b = trace_id_of(spans_a), trace_id_of(spans_b)
        assert (await app.get(f"/api/runs/{run_a}", headers=read_a)).status_code == 200
        assert (await app.get(f"/api/runs/{run_b}", headers=read_b)).status_code == 200
        # Neither project sees the other's run.
        assert (await app.get(f"/api/runs/{run_a}", headers=read_b)).status_code == 404
        assert (await app.get(f"/api/runs/{run_b}", headers=read_a)).status_code == 404


# --------------------------------------------------------------------------------------
# Spans as they accumulate in memory when the exporter cannot keep up: one big request
# --------------------------------------------------------------------------------------


async def test_a_request_larger_than_max_batch_size_is_stored_whole(
    make_app: Callable[..., Any],
) -> None:
    def many(tracer: Tracer) -> None:
        with tracer.start_as_current_span("root"):
            for i in range(30):
                with tracer.start_as_current_span(f"child-{i}"):
                    pass

    spans: list[ReadableSpan] = list(record(many))
    async with make_app(max_batch_size=7) as app:
        assert (await post_protobuf(app, spans)).status_code == 200
        run = (await app.get(f"/api/runs/{trace_id_of(spans)}")).json()
        assert run["event_count"] == 31
        assert run["status"] == "completed"


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
async def test_a_span_with_a_nul_character_is_rejected_alone(
    client: httpx.AsyncClient, encoding: str
) -> None:
    """PostgreSQL cannot store U+0000: a span carrying one is rejected with a reason, the others
    of the request are stored (on both databases)."""

    def spans(tracer: Tracer) -> None:
        with tracer.start_as_current_span("root"):
            with tracer.start_as_current_span("clean") as clean:
                clean.set_attribute("note", "fine")
            with tracer.start_as_current_span("dirty") as dirty:
                dirty.set_attribute("note", "nul\x00here")

    recorded = record(spans)
    if encoding == "protobuf":
        response = await post_protobuf(client, recorded)
        assert response.status_code == 200, response.text
        reply = ExportTraceServiceResponse.FromString(response.content)
        rejected, message = (
            reply.partial_success.rejected_spans,
            reply.partial_success.error_message,
        )
    else:
        body = as_otlp_json(recorded)
        assert b"\\u0000" in body
        response = await client.post("/v1/traces", content=body, headers=JSON)
        assert response.status_code == 200, response.text
        partial = response.json()["partialSuccess"]
        rejected, message = int(partial["rejectedSpans"]), partial["errorMessage"]
    assert rejected == 1 and "NUL" in message
    stored = nodes((await read_trace(client, trace_id_of(recorded)))["execution_tree"])
    assert set(stored) == {"root", "clean"}
