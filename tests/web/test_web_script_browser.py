"""The tracking script in a real headless Chromium, against a tiny local collector.

This checks the script alone (what it sends, when); ``test_web_browser_live.py`` checks the
same script against the real Gati server.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

import orjson
import pytest

pytestmark = pytest.mark.browser

SCRIPT = resources.files("gati.web").joinpath("static/gati.js").read_bytes()

PAGE = """<!doctype html><html><head><title>{title}</title>
<script>window.gati=window.gati||function(){{(gati.q=gati.q||[]).push(arguments)}};
gati('event','queued_before_load',{{early:true}});</script>
<script defer {attrs} src="/js/gati.js"></script></head><body>hi</body></html>"""


@dataclass
class Collector:
    port: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    pages: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.events)

    async def wait_for(self, predicate: Any, *, within: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + within
        while True:
            events = self.snapshot()
            if predicate(events):
                return events
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met; events so far: {events}")
            await asyncio.sleep(0.02)


def _handler(collector: Collector) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Access-Control-Allow-Origin", "*")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/js/gati.js":
                self._send(200, SCRIPT, "application/javascript")
            elif path in collector.pages:
                self._send(200, collector.pages[path].encode(), "text/html")
            else:
                self._send(404, b"", "text/plain")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with collector.lock:
                collector.events.append(orjson.loads(body))
                collector.content_types.append(self.headers.get("Content-Type", ""))
            self._send(202, b"{}", "application/json")

    return Handler


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    collector = Collector()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(collector))
    collector.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield collector
    finally:
        server.shutdown()
        server.server_close()


def _page(collector: Collector, name: str, attrs: str, title: str = "Home") -> str:
    collector.pages[f"/{name}"] = PAGE.format(attrs=attrs, title=title)
    return f"{collector.origin}/{name}"


async def test_pageviews_spa_navigation_events_and_utm(chromium: Any, collector: Collector) -> None:
    url = _page(collector, "spa", 'data-site="site-1"', title="Landing")
    context = await chromium.new_context()
    page = await context.new_page()
    start = len(collector.snapshot())
    await page.goto(
        url + "?utm_source=newsletter&utm_medium=email&utm_campaign=june",
        referer="https://news.ycombinator.com/",
    )

    events = await collector.wait_for(lambda ev: len(ev) >= start + 2)
    first, queued = events[start], events[start + 1]
    assert first["eventType"] == "pageview"
    assert first["siteId"] == "site-1"
    assert first["path"] == "/spa"
    assert first["url"].startswith(url + "?utm_source=newsletter")
    assert first["title"] == "Landing"
    assert first["referrer"] == "https://news.ycombinator.com/"
    assert first["attribution"]["utmParams"] == {
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "june",
    }
    assert first["properties"] == {}
    assert first["timestamp"].endswith("Z")
    assert "sessionId" not in first and "visitorId" not in first
    # The stub's queued call is replayed after the first page view.
    assert queued["eventType"] == "queued_before_load"
    assert queued["properties"] == {"early": True}

    # SPA navigation: pushState sends a pageview whose referrer is the previous in-app URL.
    await page.evaluate("history.pushState({}, '', '/spa/pricing')")
    events = await collector.wait_for(lambda ev: len(ev) >= start + 3)
    nav = events[start + 2]
    assert (nav["eventType"], nav["path"]) == ("pageview", "/spa/pricing")
    assert nav["referrer"].startswith(url + "?utm_source=")
    assert nav["attribution"]["utmParams"] == {}

    # replaceState that keeps the path is not a new page view; a custom event follows.
    await page.evaluate("history.replaceState({}, '', '/spa/pricing?tab=2')")
    await page.evaluate("gati('event', 'signup', {plan: 'pro', seats: 3})")
    events = await collector.wait_for(lambda ev: len(ev) >= start + 4)
    custom = events[start + 3]
    assert custom["eventType"] == "signup"
    assert custom["properties"] == {"plan": "pro", "seats": 3}
    assert custom["path"] == "/spa/pricing"

    # Back button: popstate sends a pageview of the first page.
    await page.go_back()
    events = await collector.wait_for(lambda ev: len(ev) >= start + 5)
    assert (events[start + 4]["eventType"], events[start + 4]["path"]) == ("pageview", "/spa")
    assert all(ct.startswith("text/plain") for ct in collector.content_types[start:])
    await context.close()


async def test_hash_mode(chromium: Any, collector: Collector) -> None:
    url = _page(collector, "hash", 'data-site="site-h" data-hash="true"')
    page = await chromium.new_page()
    start = len(collector.snapshot())
    await page.goto(url + "#/a")
    await collector.wait_for(lambda ev: len(ev) >= start + 2)
    await page.evaluate("location.hash = '#/b'")
    events = await collector.wait_for(lambda ev: len(ev) >= start + 3)
    assert [e["path"] for e in events[start:] if e["eventType"] == "pageview"] == [
        "/hash#/a",
        "/hash#/b",
    ]
    await page.close()


async def test_fetch_keepalive_fallback_when_beacon_refused(
    chromium: Any, collector: Collector
) -> None:
    url = _page(collector, "nobeacon", 'data-site="site-f"')
    context = await chromium.new_context()
    await context.add_init_script("navigator.sendBeacon = () => false;")
    page = await context.new_page()
    start = len(collector.snapshot())
    await page.goto(url)
    events = await collector.wait_for(lambda ev: len(ev) >= start + 1)
    assert events[start]["siteId"] == "site-f"
    assert collector.content_types[start].startswith("text/plain")
    await context.close()


async def test_do_not_track_and_opt_out_send_nothing(chromium: Any, collector: Collector) -> None:
    spy = """
      window.__sent = [];
      const beacon = navigator.sendBeacon.bind(navigator);
      navigator.sendBeacon = (u, d) => { window.__sent.push(u); return beacon(u, d); };
      const f = window.fetch;
      window.fetch = (u, o) => { window.__sent.push(String(u)); return f(u, o); };
    """
    dnt = _page(collector, "dnt", 'data-site="site-d" data-dnt="true"')
    context = await chromium.new_context()
    await context.add_init_script(spy)
    await context.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true});"
    )
    page = await context.new_page()
    await page.goto(dnt)
    await page.wait_for_function("typeof window.gati === 'function' && !window.gati.q")
    await page.evaluate("gati('event', 'x')")
    assert await page.evaluate("window.__sent") == []
    await context.close()

    # Without data-dnt the same browser is tracked; localStorage gati_ignore opts out.
    plain = _page(collector, "optout", 'data-site="site-o"')
    context = await chromium.new_context()
    await context.add_init_script(spy)
    page = await context.new_page()
    await page.goto(plain)
    await page.wait_for_function("window.__sent.length === 2")
    await page.evaluate("localStorage.setItem('gati_ignore', 'true')")
    await page.reload()
    await page.wait_for_function("typeof window.gati === 'function' && !window.gati.q")
    await page.evaluate("gati('event', 'x')")
    assert await page.evaluate("window.__sent") == []
    await context.close()
