"""Runs, spans and events recorded in the application, linked by ``contextvars``.

* ``run(agent=...)`` starts a run: an ``agent_start`` event at entry (the root of the run's
  tree) and an ``agent_end`` event at exit (with ``latency_ms`` and ``status``).
* ``span(event_type, ...)`` records one event when the block ends, with ``latency_ms``,
  ``status`` (``completed`` / ``error``) and ``parent_run_id`` = the enclosing span (or the
  run's ``agent_start``). Work nested inside it becomes its children.
* ``event(event_type, ...)`` records a raw event at once, as a child of the current span.

The current run/span lives in a ``ContextVar``: it follows ``await``, ``asyncio`` tasks
(created inside the block) and ``contextvars.copy_context()``; a plain new thread starts
with no current run.
"""

from __future__ import annotations

import functools
import inspect
import random
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar, cast

from gati.sdk.transport import Transport, TransportStats

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_AGENT = "default"
_MAX_REPR = 2_000


class _Frame:
    """The current position in the tree: which run, which agent, which parent event."""

    __slots__ = ("agent_name", "event_id", "run_id")

    def __init__(self, run_id: str, agent_name: str, event_id: str | None) -> None:
        self.run_id = run_id
        self.agent_name = agent_name
        self.event_id = event_id


_current: ContextVar[_Frame | None] = ContextVar("gati_current", default=None)


_randbits = random.getrandbits  # reseeded in forked children by the random module


def _new_id() -> str:
    """A random UUID-formatted id (4x faster than ``str(uuid.uuid4())``; not for secrets)."""
    h = f"{_randbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _error_info(exc: BaseException) -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": str(exc)[:_MAX_REPR]}


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not break the application
        text = f"<{type(value).__name__}>"
    return text if len(text) <= _MAX_REPR else text[:_MAX_REPR] + "…"


def current_run_id() -> str | None:
    frame = _current.get()
    return frame.run_id if frame is not None else None


def current_event_id() -> str | None:
    """The id of the innermost open span (or the run's ``agent_start``)."""
    frame = _current.get()
    return frame.event_id if frame is not None else None


class Tracer:
    """Records runs, spans and events and hands them to a :class:`Transport`."""

    def __init__(
        self,
        transport: Transport | None,
        *,
        agent: str | None = None,
        environment: str | None = None,
    ) -> None:
        self.transport = transport  # None: disabled (everything is a cheap no-op)
        self.default_agent = agent or DEFAULT_AGENT
        self.environment = environment

    # ------------------------------------------------------------------ public API

    def run(
        self,
        agent: str | None = None,
        *,
        run_id: str | None = None,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        environment: str | None = None,
        **data: Any,
    ) -> RunScope:
        """A run of an agent: ``with tracer.run(agent="planner") as run: ...``."""
        return RunScope(
            self,
            agent=agent,
            run_id=run_id,
            name=name,
            metadata=metadata,
            environment=environment,
            data=data,
        )

    def span(self, event_type: str = "span", name: str | None = None, **data: Any) -> SpanScope:
        """One unit of work: ``with tracer.span("llm_call", model="gpt-4o") as s: ...``.

        Also a decorator: ``@tracer.span("tool_call")`` records every call of the function.
        """
        return SpanScope(self, event_type, name, data)

    def observe(
        self,
        event_type: str = "span",
        name: str | None = None,
        *,
        capture_input: bool = False,
        capture_output: bool = False,
        **data: Any,
    ) -> Callable[[F], F]:
        """Decorator recording each call as a span (sync and async functions).

        ``capture_input`` / ``capture_output`` store a short ``repr`` of the arguments and
        the return value in ``data.input`` / ``data.output``.
        """

        def decorate(func: F) -> F:
            return SpanScope(self, event_type, name, data)._wrap(
                func, capture_input=capture_input, capture_output=capture_output
            )

        return decorate

    def event(
        self,
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
        """Record one raw event now, as a child of the current span; returns its id."""
        frame = _current.get()
        payload: dict[str, Any] = dict(data) if data else {}
        if fields:
            payload.update(fields)
        parent = parent_run_id if parent_run_id is not None else (frame.event_id if frame else None)
        if parent is not None:
            payload.setdefault("parent_run_id", parent)
        event_id = event_id or _new_id()
        if timestamp is None:
            ts_ns = time.time_ns()
        elif isinstance(timestamp, datetime):
            if timestamp.tzinfo is None:  # naive = UTC, as the server reads it
                timestamp = timestamp.replace(tzinfo=UTC)
            ts_ns = int(timestamp.timestamp() * 1_000_000) * 1000
        else:
            ts_ns = int(timestamp * 1_000_000) * 1000
        self._emit(
            event_id,
            event_type,
            run_id or (frame.run_id if frame else _new_id()),
            agent_name or (frame.agent_name if frame else self.default_agent),
            ts_ns,
            payload,
        )
        return event_id

    def flush(self, timeout: float | None = 10.0) -> bool:
        return self.transport.flush(timeout) if self.transport is not None else True

    def shutdown(self, timeout: float | None = None) -> None:
        if self.transport is not None:
            self.transport.shutdown(timeout)

    def stats(self) -> TransportStats:
        if self.transport is None:
            return TransportStats(0, 0, 0, 0, 0, 0, 0)
        return self.transport.stats()

    # ------------------------------------------------------------------ internals

    def _emit(
        self,
        event_id: str,
        event_type: str,
        run_id: str,
        agent_name: str,
        ts_ns: int,
        data: dict[str, Any],
    ) -> None:
        transport = self.transport
        if transport is not None:
            transport.enqueue((event_id, event_type, run_id, agent_name, ts_ns, data))


class RunScope:
    """``with run(...)``: one agent run. Use ``.set(**data)`` to add to its ``agent_end``."""

    __slots__ = (
        "_perf",
        "_start_ns",
        "_token",
        "agent_name",
        "data",
        "end_data",
        "environment",
        "event_id",
        "metadata",
        "name",
        "run_id",
        "tracer",
    )

    def __init__(
        self,
        tracer: Tracer,
        *,
        agent: str | None,
        run_id: str | None,
        name: str | None,
        metadata: Mapping[str, Any] | None,
        environment: str | None,
        data: dict[str, Any],
    ) -> None:
        self.tracer = tracer
        self.agent_name = agent or tracer.default_agent
        self.run_id = run_id or _new_id()
        self.name = name
        self.metadata = dict(metadata) if metadata else None
        self.environment = environment or tracer.environment
        self.data = data
        self.end_data: dict[str, Any] = {}
        self.event_id = _new_id()
        self._token: Token[_Frame | None] | None = None
        self._start_ns = 0
        self._perf = 0

    def set(self, **data: Any) -> None:
        """Add fields to the run's ``agent_end`` event (e.g. an ``output``)."""
        self.end_data.update(data)

    def __enter__(self) -> RunScope:
        if self.tracer.transport is None:
            return self  # disabled
        outer = _current.get()
        start: dict[str, Any] = dict(self.data)
        if self.name:
            start["name"] = self.name
        if self.metadata:
            start["metadata"] = self.metadata
        if self.environment:
            start["environment"] = self.environment
        if outer is not None:
            # A run started inside another run (a sub-agent): remember who called it.
            start["caller_run_id"] = outer.run_id
            if outer.event_id is not None:
                start["caller_event_id"] = outer.event_id
        self._start_ns = time.time_ns()
        self._perf = time.perf_counter_ns()
        self.tracer._emit(
            self.event_id, "agent_start", self.run_id, self.agent_name, self._start_ns, start
        )
        self._token = _current.set(_Frame(self.run_id, self.agent_name, self.event_id))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is None:
            return
        latency_ms = (time.perf_counter_ns() - self._perf) / 1_000_000
        _reset(self._token)
        end: dict[str, Any] = {"parent_run_id": self.event_id, **self.end_data}
        end["latency_ms"] = latency_ms
        if exc is not None:
            end["status"] = "error"
            end["error"] = _error_info(exc)
        else:
            end.setdefault("status", "completed")
        self.tracer._emit(
            _new_id(),
            "agent_end",
            self.run_id,
            self.agent_name,
            self._start_ns + int(latency_ms * 1_000_000),
            end,
        )

    async def __aenter__(self) -> RunScope:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        """``@run(agent="x")``: each call of the function is a run."""
        tracer, agent, name = self.tracer, self.agent_name, self.name
        metadata, environment, data = self.metadata, self.environment, self.data

        def fresh() -> RunScope:
            return tracer.run(
                agent,
                name=name or func.__qualname__,
                metadata=metadata,
                environment=environment,
                **data,
            )

        return _decorate(func, fresh)


class SpanScope:
    """``with span(...)``: one event recorded when the block ends. ``.set(**data)`` adds to it."""

    __slots__ = (
        "_frame",
        "_perf",
        "_start_ns",
        "_token",
        "data",
        "event_id",
        "event_type",
        "name",
        "parent_id",
        "run_id",
        "tracer",
    )

    def __init__(
        self, tracer: Tracer, event_type: str, name: str | None, data: dict[str, Any]
    ) -> None:
        self.tracer = tracer
        self.event_type = event_type
        self.name = name
        self.data = data
        self.event_id = ""
        self.run_id = ""
        self.parent_id: str | None = None
        self._token: Token[_Frame | None] | None = None
        self._frame: _Frame | None = None
        self._start_ns = 0
        self._perf = 0

    def set(self, **data: Any) -> None:
        """Add fields to the event (``tokens_in=...``, ``output=...``, ...)."""
        self.data.update(data)

    def record_error(self, exc: BaseException) -> None:
        """Mark the span failed without raising (a handled error)."""
        self.data["status"] = "error"
        self.data["error"] = _error_info(exc)

    def __enter__(self) -> SpanScope:
        if self.tracer.transport is None:
            return self  # disabled: record nothing, link nothing
        outer = _current.get()
        self.event_id = event_id = _new_id()
        if outer is None:
            # A span outside any run is a run of its own (agent = the default agent).
            frame = _Frame(_new_id(), self.tracer.default_agent, event_id)
        else:
            self.parent_id = outer.event_id
            frame = _Frame(outer.run_id, outer.agent_name, event_id)
        self.run_id = frame.run_id
        self._frame = frame
        self._token = _current.set(frame)
        self._start_ns = time.time_ns()
        self._perf = time.perf_counter_ns()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        frame = self._frame
        if frame is None:
            return
        latency_ms = (time.perf_counter_ns() - self._perf) / 1_000_000
        _reset(self._token)
        data = self.data
        if self.parent_id is not None:
            data["parent_run_id"] = self.parent_id
        if self.name is not None:
            data.setdefault("name", self.name)
        data["latency_ms"] = latency_ms
        if exc is not None:
            data["status"] = "error"
            data["error"] = _error_info(exc)
        elif "status" not in data:
            data["status"] = "completed"
        self.tracer._emit(
            self.event_id, self.event_type, frame.run_id, frame.agent_name, self._start_ns, data
        )

    async def __aenter__(self) -> SpanScope:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        """``@span("tool_call")``: each call of the function is a span."""
        return self._wrap(func, capture_input=False, capture_output=False)

    def _wrap(self, func: F, *, capture_input: bool, capture_output: bool) -> F:
        tracer, event_type = self.tracer, self.event_type
        name = self.name or func.__qualname__
        data = self.data

        def fresh() -> SpanScope:
            return SpanScope(tracer, event_type, name, dict(data))

        return _decorate(func, fresh, capture_input=capture_input, capture_output=capture_output)


def _reset(token: Token[_Frame | None] | None) -> None:
    if token is None:
        return
    try:
        _current.reset(token)
    except ValueError:
        # Exited in another context (e.g. a generator finished elsewhere): best effort.
        _current.set(token.old_value if token.old_value is not Token.MISSING else None)


def _decorate(
    func: F,
    fresh: Callable[[], RunScope | SpanScope],
    *,
    capture_input: bool = False,
    capture_output: bool = False,
) -> F:
    def before(scope: RunScope | SpanScope, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if capture_input:
            scope.set(input=_short_repr({"args": args, "kwargs": kwargs}))

    def after(scope: RunScope | SpanScope, result: Any) -> None:
        if capture_output:
            scope.set(output=_short_repr(result))

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with fresh() as scope:
                before(scope, args, kwargs)
                result = await func(*args, **kwargs)
                after(scope, result)
                return result

        return cast(F, async_wrapper)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with fresh() as scope:
            before(scope, args, kwargs)
            result = func(*args, **kwargs)
            after(scope, result)
            return result

    return cast(F, wrapper)
