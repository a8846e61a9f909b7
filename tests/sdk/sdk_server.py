"""A tiny real HTTP server standing in for ``POST /api/events`` in the SDK unit tests."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    drop_connection: bool = False  # close the socket without answering


class EventSink:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []  # every request, answered or not
        self.accepted: list[dict[str, Any]] = []  # events of requests answered 2xx
        self.script: deque[Reply] = deque()
        self.gate = threading.Event()  # cleared: requests wait (to fill the SDK queue)
        self.gate.set()
        self.lock = threading.Lock()
        self.url = ""

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.accepted)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events()
            if len(events) >= count:
                return events
            time.sleep(0.01)
        raise AssertionError(f"expected {count} events, got {len(self.events())}")


def _handler(sink: EventSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            sink.gate.wait(30)
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
            payload = json.loads(body)
            record = {
                "path": self.path,
                "headers": dict(self.headers.items()),
                "payload": payload,
                "compressed_size": len(raw),
            }
            with sink.lock:
                sink.requests.append(record)
                reply = sink.script.popleft() if sink.script else Reply()
            if reply.drop_connection:
                self.close_connection = True
                self.connection.close()
                return
            events = payload.get("events", [])
            if reply.status < 300:
                with sink.lock:
                    sink.accepted.extend(events)
            answer = reply.body
            if answer is None:
                answer = {"status": "success", "count": len(events), "failed": 0}
            data = json.dumps(answer).encode()
            self.send_response(reply.status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def event_sink() -> Iterator[EventSink]:
    sink = EventSink()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(sink))
    server.daemon_threads = True
    sink.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        sink.gate.set()
        server.shutdown()
        server.server_close()
