"""Gati Python SDK: record agent runs, spans and events and send them to a Gati server.

    import gati.sdk as gati

    gati.configure(url="http://127.0.0.1:8000", api_key="gati_sk_...")

    with gati.run(agent="planner"):
        with gati.span("llm_call", model="gpt-4o") as call:
            ...
            call.set(tokens_in=1200, tokens_out=300)

        @gati.span("tool_call")
        def search(query: str) -> list[str]: ...

        gati.event("note", message="raw event, child of the current span")

Without ``configure()`` the SDK configures itself on first use from ``GATI_URL``
(default ``http://127.0.0.1:8000``), ``GATI_API_KEY``, ``GATI_AGENT``, ``GATI_ENVIRONMENT``;
``GATI_DISABLED=1`` turns recording off. Only ``httpx`` is needed (``pip install gati[sdk]``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from gati.sdk.tracer import (
    RunScope,
    SpanScope,
    Tracer,
    current_event_id,
    current_run_id,
)
from gati.sdk.transport import Transport, TransportStats

__all__ = [
    "RunScope",
    "SpanScope",
    "Tracer",
    "Transport",
    "TransportStats",
    "configure",
    "current_event_id",
    "current_run_id",
    "event",
    "flush",
    "get_tracer",
    "observe",
    "run",
    "shutdown",
    "span",
    "stats",
]

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_URL = "http://127.0.0.1:8000"

_tracer: Tracer | None = None
_lock = threading.Lock()


def configure(
    url: str | None = None,
    api_key: str | None = None,
    *,
    agent: str | None = None,
    environment: str | None = None,
    enabled: bool = True,
    batch_size: int = 500,
    flush_interval: float = 1.0,
    max_queue_size: int = 10_000,
    max_retries: int = 6,
    timeout: float = 10.0,
    compress: bool = True,
    shutdown_timeout: float = 5.0,
    **transport_options: Any,
) -> Tracer:
    """Set up the process-wide tracer (replacing, and flushing, a previous one)."""
    global _tracer
    transport = (
        Transport(
            url or os.environ.get("GATI_URL") or DEFAULT_URL,
            api_key if api_key is not None else os.environ.get("GATI_API_KEY"),
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_queue_size=max_queue_size,
            max_retries=max_retries,
            timeout=timeout,
            compress=compress,
            shutdown_timeout=shutdown_timeout,
            **transport_options,
        )
        if enabled
        else None
    )
    tracer = Tracer(
        transport,
        agent=agent or os.environ.get("GATI_AGENT"),
        environment=environment or os.environ.get("GATI_ENVIRONMENT"),
    )
    with _lock:
        previous, _tracer = _tracer, tracer
    if previous is not None:
        previous.shutdown()
    return tracer


def get_tracer() -> Tracer:
    """The process-wide tracer, configured from the environment on first use."""
    tracer = _tracer
    if tracer is not None:
        return tracer
    with _lock:
        if _tracer is not None:
            return _tracer
    disabled = os.environ.get("GATI_DISABLED", "").strip().lower() in ("1", "true", "yes")
    return configure(enabled=not disabled)


def run(
    agent: str | None = None,
    *,
    run_id: str | None = None,
    name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    environment: str | None = None,
    **data: Any,
) -> RunScope:
    """A run of an agent (context manager, async context manager or decorator)."""
    return get_tracer().run(
        agent, run_id=run_id, name=name, metadata=metadata, environment=environment, **data
    )


def span(event_type: str = "span", name: str | None = None, **data: Any) -> SpanScope:
    """One unit of work (context manager, async context manager or decorator)."""
    return get_tracer().span(event_type, name, **data)


def observe(
    event_type: str = "span",
    name: str | None = None,
    *,
    capture_input: bool = False,
    capture_output: bool = False,
    **data: Any,
) -> Callable[[F], F]:
    """Decorator: each call of the function is a span."""
    return get_tracer().observe(
        event_type, name, capture_input=capture_input, capture_output=capture_output, **data
    )


def event(
    event_type: str,
    data: Mapping[str, Any] | None = None,
    *,
    run_id: str | None = None,
    agent_name: str | None = None,
    parent_run_id: str | None = None,
    event_id: str | None = None,
    timestamp: datetime | float | None = None,
    **fields: Any,
) -> str:
    """Record a raw event now (child of the current span); returns its ``event_id``."""
    return get_tracer().event(
        event_type,
        data,
        run_id=run_id,
        agent_name=agent_name,
        parent_run_id=parent_run_id,
        event_id=event_id,
        timestamp=timestamp,
        **fields,
    )


def flush(timeout: float | None = 10.0) -> bool:
    """Send everything recorded so far; ``True`` when done within ``timeout``."""
    return get_tracer().flush(timeout)


def shutdown(timeout: float | None = None) -> None:
    """Flush and stop the sender (also done automatically at interpreter exit)."""
    tracer = _tracer
    if tracer is not None:
        tracer.shutdown(timeout)


def stats() -> TransportStats:
    """Counters: queued, sent, rejected, dropped (queue full), failed, retries, batches."""
    return get_tracer().stats()
