"""Background delivery of events to ``POST /api/events``.

The application thread only appends a small tuple to a bounded in-memory queue (it never
blocks and never does I/O). One daemon thread batches the queue, serialises the batch, gzips
it and posts it; it retries with exponential backoff (honouring ``Retry-After``) on 429, 502,
503, 504 and network errors, splits a batch the server says is too large (413), and gives up
on other 4xx. A full queue drops the new event and counts it; drops and failures are reported
by :meth:`Transport.stats` and in the log. :meth:`Transport.shutdown` (run at exit) sends what
is left, within a time limit.
"""

from __future__ import annotations

import atexit
import email.utils
import gzip
import logging
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import httpx

try:  # orjson is much faster; the SDK works without it.
    import orjson

    def _dumps(value: Any) -> bytes:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=_fallback)

except ImportError:  # pragma: no cover - exercised only without orjson
    import json

    def _dumps(value: Any) -> bytes:
        return json.dumps(value, default=_fallback, separators=(",", ":")).encode()


logger = logging.getLogger("gati.sdk")

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
SDK_VERSION = "0.1.0"

# One queued event: (event_id, event_type, run_id, agent_name, start time in ns, data).
Record = tuple[str, str, str, str, int, dict[str, Any]]


def _fallback(value: Any) -> Any:
    """JSON for values the encoder does not know: their text."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


@lru_cache(maxsize=1024)
def _iso_second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def iso_from_ns(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    return f"{_iso_second(seconds)}.{rest // 1000:06d}Z"


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; ``None`` if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


@dataclass(frozen=True, slots=True)
class TransportStats:
    queued: int  # waiting in memory
    sent: int  # acknowledged by the server (stored or reported as duplicates)
    rejected: int  # acknowledged but refused item by item by the server (bad events)
    dropped: int  # never queued: the queue was full
    failed: int  # given up after retries, or refused as a whole batch (4xx)
    retries: int  # HTTP attempts that were retried
    batches: int  # batches delivered


class Transport:
    """A bounded queue and one sender thread. Thread-safe; fork-aware."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_queue_size: int = 10_000,
        max_retries: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float = 10.0,
        compress: bool = True,
        shutdown_timeout: float = 5.0,
        register_atexit: bool = True,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.endpoint = url.rstrip("/") + "/api/events"
        self.api_key = api_key
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.max_queue_size = max(1, max_queue_size)
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.timeout = timeout
        self.compress = compress
        self.shutdown_timeout = shutdown_timeout
        self._http_transport = transport
        self._sleep_override = sleep

        self._queue: deque[Record] = deque()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._abort = threading.Event()
        self._lock = threading.Lock()
        self._waiters: list[threading.Event] = []
        self._thread: threading.Thread | None = None
        self._in_flight = 0
        self._closed = False

        self._sent = 0
        self._rejected = 0
        self._dropped = 0
        self._failed = 0
        self._retries = 0
        self._batches = 0
        self._reported_drops = 0
        self._last_drop_report = 0.0

        if register_atexit:
            atexit.register(self._at_exit)
        if hasattr(os, "register_at_fork"):
            ref = weakref.ref(self)

            def _in_child() -> None:
                transport = ref()
                if transport is not None:
                    transport._reset_after_fork()

            os.register_at_fork(after_in_child=_in_child)

    # ------------------------------------------------------------------ application side

    def enqueue(self, record: Record) -> bool:
        """Queue one event; ``False`` (and counted) if the queue is full or closed."""
        if self._closed:
            self._count_drop()
            return False
        if self._thread is None:
            self._start()
        queue = self._queue
        if len(queue) >= self.max_queue_size:
            self._count_drop()
            return False
        queue.append(record)
        if len(queue) >= self.batch_size:
            self._wake.set()
        return True

    def _count_drop(self) -> None:
        with self._lock:
            self._dropped += 1

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued so far; ``True`` if it was all handled in time."""
        if self._thread is None or not self._thread.is_alive():
            return not self._queue
        done = threading.Event()
        with self._lock:
            self._waiters.append(done)
        self._wake.set()
        return done.wait(timeout)

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting events, send what is queued (within ``timeout``), stop the thread."""
        if self._closed:
            return
        self._closed = True
        limit = self.shutdown_timeout if timeout is None else timeout
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._closing.set()
            self._wake.set()
            thread.join(limit)
            if thread.is_alive():
                self._abort.set()
                self._wake.set()
                thread.join(1.0)
        left = len(self._queue)
        if left:
            with self._lock:
                self._failed += left
            self._queue.clear()
        stats = self.stats()
        if stats.dropped or stats.failed:
            logger.warning(
                "gati: %d event(s) dropped (queue full) and %d failed to send; %d sent",
                stats.dropped,
                stats.failed,
                stats.sent,
            )

    def stats(self) -> TransportStats:
        with self._lock:
            return TransportStats(
                queued=len(self._queue) + self._in_flight,
                sent=self._sent,
                rejected=self._rejected,
                dropped=self._dropped,
                failed=self._failed,
                retries=self._retries,
                batches=self._batches,
            )

    def _at_exit(self) -> None:
        try:
            self.shutdown()
        except Exception:  # pragma: no cover - never fail interpreter exit
            logger.exception("gati: error while flushing at exit")

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="gati-sdk-sender", daemon=True)
            self._thread.start()

    def _reset_after_fork(self) -> None:
        """In a forked child the parent's sender thread does not exist: start afresh."""
        self._lock = threading.Lock()
        self._queue = deque()
        self._waiters = []
        self._wake = threading.Event()
        self._in_flight = 0
        self._thread = None

    # ------------------------------------------------------------------ sender thread

    def _run(self) -> None:
        client = httpx.Client(timeout=self.timeout, transport=self._http_transport)
        try:
            while True:
                self._wake.wait(self.flush_interval)
                self._wake.clear()
                self._drain(client)
                self._report_drops()
                if self._closing.is_set() or self._abort.is_set():
                    self._drain(client)
                    self._release_waiters()
                    return
        finally:
            client.close()

    def _drain(self, client: httpx.Client) -> None:
        queue = self._queue
        while queue and not self._abort.is_set():
            batch: list[Record] = []
            with self._lock:
                while queue and len(batch) < self.batch_size:
                    batch.append(queue.popleft())
                self._in_flight = len(batch)
            try:
                self._deliver(client, batch)
            except Exception:  # a bug here must not kill the sender
                logger.exception("gati: unexpected error while sending %d event(s)", len(batch))
                with self._lock:
                    self._failed += len(batch)
            finally:
                with self._lock:
                    self._in_flight = 0
        self._release_waiters()

    def _release_waiters(self) -> None:
        if self._queue and not self._abort.is_set():
            return
        with self._lock:
            waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.set()

    def _report_drops(self) -> None:
        dropped = self._dropped
        if dropped > self._reported_drops and time.monotonic() - self._last_drop_report > 10:
            logger.warning(
                "gati: the event queue is full (max_queue_size=%d); %d event(s) dropped so far",
                self.max_queue_size,
                dropped,
            )
            self._reported_drops = dropped
            self._last_drop_report = time.monotonic()

    def _body(self, batch: Sequence[Record]) -> bytes:
        events = [
            {
                "event_id": event_id,
                "event_type": event_type,
                "run_id": run_id,
                "agent_name": agent_name,
                "timestamp": iso_from_ns(ts_ns),
                "data": data,
            }
            for event_id, event_type, run_id, agent_name, ts_ns, data in batch
        ]
        return _dumps({"events": events})

    def _headers(self) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"gati-python-sdk/{SDK_VERSION}",
        }
        if self.compress:
            headers["Content-Encoding"] = "gzip"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _sleep(self, seconds: float) -> None:
        if self._sleep_override is not None:
            self._sleep_override(seconds)
        else:
            self._abort.wait(seconds)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * (2**attempt))
        return random.uniform(ceiling / 2, ceiling)

    def _deliver(self, client: httpx.Client, batch: list[Record]) -> None:
        body = self._body(batch)
        if self.compress:
            body = gzip.compress(body, compresslevel=5)
        headers = self._headers()
        attempt = 0
        while True:
            delay: float | None
            try:
                response = client.post(self.endpoint, content=body, headers=headers)
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"
                delay = None
            else:
                status = response.status_code
                if status < 300:
                    self._acknowledged(batch, response)
                    return
                if status == 413 and len(batch) > 1:
                    half = len(batch) // 2
                    self._deliver(client, batch[:half])
                    self._deliver(client, batch[half:])
                    return
                if status not in RETRYABLE_STATUSES:
                    logger.error(
                        "gati: the server refused %d event(s): HTTP %d %s",
                        len(batch),
                        status,
                        response.text[:500],
                    )
                    with self._lock:
                        self._failed += len(batch)
                    return
                reason = f"HTTP {status}"
                delay = retry_after_seconds(response.headers.get("Retry-After"))
            if attempt >= self.max_retries or self._abort.is_set():
                logger.warning(
                    "gati: giving up on %d event(s) after %d attempt(s): %s",
                    len(batch),
                    attempt + 1,
                    reason,
                )
                with self._lock:
                    self._failed += len(batch)
                return
            wait = self._backoff(attempt) if delay is None else min(delay, self.backoff_max * 4)
            attempt += 1
            with self._lock:
                self._retries += 1
            logger.debug("gati: %s; retry %d in %.2fs", reason, attempt, wait)
            self._sleep(wait)

    def _acknowledged(self, batch: Sequence[Record], response: httpx.Response) -> None:
        refused = 0
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            failed = payload.get("failed")
            if isinstance(failed, int) and failed > 0:
                refused = min(failed, len(batch))
                errors = payload.get("errors") or []
                logger.warning(
                    "gati: the server refused %d of %d event(s); first error: %s",
                    refused,
                    len(batch),
                    errors[0] if errors else "(none given)",
                )
        with self._lock:
            self._sent += len(batch) - refused
            self._rejected += refused
            self._batches += 1
