"""SERVER_TELEMETRY: FastAPI's own OpenTelemetry spans of Gati's requests, only when asked for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@pytest.mark.parametrize("enabled", [False, True])
async def test_request_spans_follow_the_setting(
    make_app: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # The process's global provider, as opentelemetry-instrument would install it.
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    async with make_app(server_telemetry=enabled) as client:
        assert (await client.get("/health")).status_code == 200
    names = [span.name for span in exporter.get_finished_spans()]
    if enabled:
        assert any("/health" in name for name in names), names
    else:
        assert names == []
