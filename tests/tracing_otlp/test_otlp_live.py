"""The real OpenTelemetry OTLP/HTTP exporters (protobuf and JSON) against a real `gati serve`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.json.http.trace_exporter import (
    OTLPSpanExporter as JsonSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as ProtobufSpanExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from tests.conftest import PRODUCTION_SECRET
from tests.tracing_otlp.otlp_samples import agent_run, openinference_chain


def _exporter(kind: str, url: str, headers: dict[str, str]) -> SpanExporter:
    if kind == "protobuf":
        return ProtobufSpanExporter(
            endpoint=f"{url}/v1/traces", headers=headers, compression=Compression.Gzip
        )
    return JsonSpanExporter(endpoint=f"{url}/v1/traces", headers=headers)


@pytest.mark.parametrize("kind", ["protobuf", "json"])
def test_real_exporters_against_a_live_server(live_server: Callable[..., Any], kind: str) -> None:
    server = live_server()
    provider = TracerProvider(resource=Resource.create({"service.name": "live-agent-app"}))
    exporter = _exporter(kind, server.url, {})
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=100))
    tracer = provider.get_tracer("gati.live.test")
    agent_run(tracer)
    openinference_chain(tracer)
    assert provider.force_flush(30_000)
    provider.shutdown()

    with httpx.Client(base_url=server.url, timeout=10) as client:
        agents = {a["name"] for a in client.get("/api/agents").json()}
        assert {"planner", "live-agent-app"} <= agents
        planner_runs = client.get("/api/agents/planner/runs").json()["runs"]
        assert len(planner_runs) == 1
        run_id = planner_runs[0]["run_id"]
        trace = client.get(f"/api/runs/{run_id}/trace").json()
        [root] = trace["execution_tree"]
        assert root["event_type"] == "agent"
        assert sorted(c["event_type"] for c in root["children"]) == ["llm_call", "tool_call"]
        chat = next(c for c in root["children"] if c["event_type"] == "llm_call")
        assert chat["data"]["cost_source"] == "price_table"
        assert chat["cost"] > 0
        assert trace["status"] == "failed"

        rag_runs = client.get("/api/agents/live-agent-app/runs").json()["runs"]
        assert len(rag_runs) == 1
        rag = client.get(f"/api/runs/{rag_runs[0]['run_id']}").json()
        assert rag["status"] == "completed"
        assert rag["total_cost"] == pytest.approx(0.0123)
        assert (rag["tokens_in"], rag["tokens_out"]) == (1000, 100)


async def test_exporter_with_a_project_key_in_production(
    live_server: Callable[..., Any], make_project: Callable[..., Any]
) -> None:
    project = await make_project("otlp-live")
    key = project["secret_key"]
    server = live_server(
        ENVIRONMENT="production",
        SECRET_KEY=PRODUCTION_SECRET,
        CORS_ORIGINS="https://app.example.com",
    )
    anonymous = httpx.post(
        f"{server.url}/v1/traces", content=b"", headers={"Content-Type": "application/x-protobuf"}
    )
    assert anonymous.status_code == 401

    provider = TracerProvider(resource=Resource.create({"service.name": "keyed"}))
    exporter = ProtobufSpanExporter(
        endpoint=f"{server.url}/v1/traces", headers={"Authorization": f"Bearer {key}"}
    )
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=100))
    agent_run(provider.get_tracer("keyed"))
    assert provider.force_flush(30_000)
    provider.shutdown()

    auth = {"Authorization": f"Bearer {key}"}
    agent = httpx.get(f"{server.url}/api/agents/planner", headers=auth)
    assert agent.status_code == 200
    assert agent.json()["total_events"] == 3  # one export: every span inherits "planner"
    assert agent.json()["project_id"] == project["id"]
