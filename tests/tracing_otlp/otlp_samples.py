"""Real OpenTelemetry SDK spans, encoded the way the real OTLP exporters encode them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf.json_format import MessageToJson
from opentelemetry.exporter.otlp.json.common._internal.trace_encoder import (
    encode_spans as encode_spans_json,
)
from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import (
    encode_spans as encode_spans_protobuf,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode, Tracer


def record(
    body: Callable[[Tracer], None], *, service: str = "test-service", **resource: Any
) -> Sequence[ReadableSpan]:
    """Run ``body`` with a real tracer and return the finished spans."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service, **resource}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    body(provider.get_tracer("gati.tests", "1.0"))
    provider.shutdown()
    return exporter.get_finished_spans()


def as_protobuf(spans: Sequence[ReadableSpan]) -> bytes:
    return encode_spans_protobuf(spans).SerializeToString()


def as_otlp_json(spans: Sequence[ReadableSpan]) -> bytes:
    """OTLP/JSON exactly as opentelemetry-exporter-otlp-json-http sends it (hex ids)."""
    return encode_spans_json(spans).to_json().encode()


def as_message_to_json(spans: Sequence[ReadableSpan]) -> bytes:
    """The generic protobuf JSON mapping (base64 ids) of the same request."""
    return MessageToJson(encode_spans_protobuf(spans)).encode()


def agent_run(tracer: Tracer) -> None:
    """An agent (GenAI semconv) that calls a model and a tool, the tool fails."""
    with tracer.start_as_current_span(
        "invoke_agent planner",
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"},
    ):
        with tracer.start_as_current_span(
            "chat gpt-4o",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.usage.input_tokens": 1200,
                "gen_ai.usage.output_tokens": 300,
                "gen_ai.usage.cache_read.input_tokens": 200,
            },
        ):
            pass
        with tracer.start_as_current_span(
            "execute_tool search",
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
        ) as tool:
            try:
                raise TimeoutError("search backend timed out")
            except TimeoutError as exc:
                tool.record_exception(exc)
                tool.set_status(Status(StatusCode.ERROR, "search backend timed out"))


def openinference_chain(tracer: Tracer) -> None:
    """OpenInference attributes (as Phoenix / Arize instrumentations emit them)."""
    with tracer.start_as_current_span(
        "RAG pipeline",
        attributes={"openinference.span.kind": "CHAIN", "input.value": "what is gati?"},
    ):
        with tracer.start_as_current_span(
            "retrieve", attributes={"openinference.span.kind": "RETRIEVER"}
        ):
            pass
        with tracer.start_as_current_span(
            "ChatCompletion",
            attributes={
                "openinference.span.kind": "LLM",
                "llm.model_name": "claude-3-5-sonnet-20241022",
                "llm.provider": "anthropic",
                "llm.token_count.prompt": 1000,
                "llm.token_count.completion": 100,
                "llm.token_count.prompt_details.cache_read": 400,
                "llm.token_count.prompt_details.cache_write": 100,
                "llm.token_count.completion_details.reasoning": 40,
                "llm.token_count.total": 1100,
                "llm.cost.total": 0.0123,
            },
        ):
            pass


def tree_shape(nodes: list[dict[str, Any]]) -> list[tuple[str, str, list[Any]]]:
    """``/api/runs/{id}/trace`` nodes → nested (event_id, event_type, children), ordered by id."""
    return sorted(
        (node["event_id"], node["event_type"], tree_shape(node["children"])) for node in nodes
    )


PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
