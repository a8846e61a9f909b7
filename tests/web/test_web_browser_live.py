"""The tracking script in headless Chromium against a real `gati serve` process (both
databases): page views, SPA navigations, custom events and UTM landing URLs arrive with the
right fields, and count in the statistics."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser

CHROME_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)


@pytest.fixture
def page_server() -> Iterator[tuple[str, dict[str, str]]]:
    """A separate origin serving the customer's pages (so /collect is cross-origin)."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = pages.get(self.path.split("?", 1)[0], "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", pages
    finally:
        server.shutdown()
        server.server_close()


async def _events(api: str, want: int, *, within: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=api) as client:
        while True:
            events: list[dict[str, Any]] = (await client.get("/events/recent?limit=100")).json()[
                "events"
            ]
            if len(events) >= want:
                return sorted(events, key=lambda e: e["timestamp"])
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {want} events, got {events}")
            await asyncio.sleep(0.05)


async def test_script_against_live_server(
    chromium: Any,
    live_server: Callable[..., Any],
    page_server: tuple[str, dict[str, str]],
) -> None:
    server = live_server()
    origin, pages = page_server
    pages["/shop"] = (
        "<!doctype html><title>Shop</title>"
        "<script>window.gati=window.gati||function(){(gati.q=gati.q||[]).push(arguments)}</script>"
        f'<script defer data-site="shop-site" src="{server.url}/js/gati.js"></script>'
    )
    # One headless context (flagged as a bot) and one with an ordinary Chrome user agent.
    headless = await chromium.new_context()
    person = await chromium.new_context(user_agent=CHROME_UA)
    try:
        page = await headless.new_page()
        await page.goto(
            f"{origin}/shop?utm_source=newsletter&utm_medium=email&utm_campaign=may",
            referer="https://www.google.com/",
        )
        await _events(server.url, 1)
        await page.evaluate("history.pushState({}, '', '/shop/cart')")
        await _events(server.url, 2)
        await page.evaluate("gati('event', 'checkout', {total: 42, currency: 'EUR'})")
        events = await _events(server.url, 3)

        landing, cart, checkout = events
        assert landing["event_type"] == "pageview"
        assert landing["site_id"] == "shop-site"
        assert landing["path"] == "/shop"
        assert landing["url"].endswith(
            "/shop?utm_source=newsletter&utm_medium=email&utm_campaign=may"
        )
        assert landing["title"] == "Shop"
        assert landing["referrer"] == "https://www.google.com/"
        assert (landing["utm_source"], landing["utm_medium"], landing["utm_campaign"]) == (
            "newsletter",
            "email",
            "may",
        )
        assert landing["source"] == "newsletter"
        assert landing["browser"] == "HeadlessChrome" and landing["is_bot"] is True
        assert (cart["event_type"], cart["path"]) == ("pageview", "/shop/cart")
        assert cart["referrer"].startswith(f"{origin}/shop?utm_source=")
        assert cart["source"] is None  # an in-site navigation is not a new source
        assert checkout["event_type"] == "checkout"
        assert checkout["properties"] == {"total": 42, "currency": "EUR"}
        assert checkout["path"] == "/shop/cart"
        assert len({e["session_id"] for e in events}) == 1
        assert len({e["visitor_id"] for e in events}) == 1

        # An ordinary browser: counted in the statistics (the headless one is not).
        page = await person.new_page()
        await page.goto(f"{origin}/shop")
        await page.evaluate("history.pushState({}, '', '/shop/item/7')")
        await _events(server.url, 5)
        async with httpx.AsyncClient(base_url=server.url) as client:
            realtime = (await client.get("/api/v1/sites/shop-site/stats/realtime")).json()
            pages_breakdown = (
                await client.get(
                    "/api/v1/sites/shop-site/stats/breakdown",
                    params={"property": "page", "period": "day", "metrics": "pageviews"},
                )
            ).json()
        assert (realtime["visitors"], realtime["pageviews"]) == (1, 2)
        assert {r["page"]: r["pageviews"] for r in pages_breakdown["results"]} == {
            "/shop": 1,
            "/shop/item/7": 1,
        }
    finally:
        await headless.close()
        await person.close()
