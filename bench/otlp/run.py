"""bench/otlp: OTLP/HTTP protobuf spans/s against POST /api/events with the same content.

    uv run python -m bench.otlp.run --dialect sqlite
    uv run python -m bench.otlp.run --dialect postgresql --workers 2

One real `gati serve`, one fresh database. Requests of 1,000 spans (10 traces of 100 spans:
an ``invoke_agent`` root, ``chat`` spans with model/provider/token counts and no cost — so the
price table runs — and ``execute_tool`` spans; ~10 attributes and a 150-character prompt each).
The /api/events requests carry exactly what the OTLP decoder makes of an equivalent OTLP request
(same events, other ids so nothing is a duplicate). The two kinds run in alternating rounds
(A B A B ...) with ``--clients`` concurrent clients, so drift hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import random
import tempfile
import time
from pathlib import Path

import httpx
import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from bench.common import fresh_pg_database, fresh_sqlite_database, machine, run, start_server
from gati.tracing.otlp import decode_protobuf

SPANS_PER_REQUEST = 1_000
SPANS_PER_TRACE = 100
MODELS = [("gpt-4o", "openai"), ("gpt-4o-mini", "openai"), ("claude-3-5-sonnet", "anthropic")]


def _kv(key: str, value: str | int | float) -> KeyValue:
    if isinstance(value, str):
        return KeyValue(key=key, value=AnyValue(string_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(double_value=value))


def otlp_request(rng: random.Random, start_ns: int) -> bytes:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(
        [_kv("service.name", "bench-agents"), _kv("telemetry.sdk.language", "python")]
    )
    scope = resource_spans.scope_spans.add()
    scope.scope.name = "bench"
    for _ in range(SPANS_PER_REQUEST // SPANS_PER_TRACE):
        trace_id = rng.randbytes(16)
        root_id = rng.randbytes(8)
        agent = f"agent-{rng.randrange(10)}"
        t0 = start_ns + rng.randrange(10**9)
        root = scope.spans.add(
            trace_id=trace_id,
            span_id=root_id,
            name=f"invoke_agent {agent}",
            kind=1,
            start_time_unix_nano=t0,
            end_time_unix_nano=t0 + 30 * 10**9,
        )
        root.attributes.extend(
            [_kv("gen_ai.operation.name", "invoke_agent"), _kv("gen_ai.agent.name", agent)]
        )
        for i in range(SPANS_PER_TRACE - 1):
            begin = t0 + (i + 1) * 10**8
            span = scope.spans.add(
                trace_id=trace_id,
                span_id=rng.randbytes(8),
                parent_span_id=root_id,
                kind=3,
                start_time_unix_nano=begin,
                end_time_unix_nano=begin + rng.randrange(50, 3000) * 10**6,
            )
            if rng.random() < 0.6:
                model, provider = rng.choice(MODELS)
                span.name = f"chat {model}"
                span.attributes.extend(
                    [
                        _kv("gen_ai.operation.name", "chat"),
                        _kv("gen_ai.provider.name", provider),
                        _kv("gen_ai.request.model", model),
                        _kv("gen_ai.response.model", model),
                        _kv("gen_ai.usage.input_tokens", rng.randint(10, 4000)),
                        _kv("gen_ai.usage.output_tokens", rng.randint(5, 800)),
                        _kv("gen_ai.request.temperature", 0.2),
                        _kv("gen_ai.response.id", f"chatcmpl-{rng.getrandbits(64):x}"),
                        _kv("gen_ai.prompt", "x" * 150),
                    ]
                )
            else:
                tool = rng.choice(["search", "fetch", "calculator"])
                span.name = f"execute_tool {tool}"
                span.attributes.extend(
                    [
                        _kv("gen_ai.operation.name", "execute_tool"),
                        _kv("gen_ai.tool.name", tool),
                        _kv("gen_ai.tool.call.id", f"call_{rng.getrandbits(48):x}"),
                        _kv("gen_ai.tool.call.arguments", "x" * 150),
                    ]
                )
    return request.SerializeToString()


def events_request(otlp_body: bytes) -> bytes:
    """The same content, as seed-000 events (what the OTLP decoder stores)."""
    return orjson.dumps({"events": decode_protobuf(otlp_body).events})


async def send_all(
    url: str, path: str, bodies: list[bytes], headers: dict[str, str], clients: int
) -> float:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def worker(client: httpx.AsyncClient) -> None:
        while True:
            try:
                body = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            response = await client.post(path, content=body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{path}: HTTP {response.status_code} {response.text[:300]}")
            if path == "/v1/traces" and response.content not in (b"", b"{}"):
                raise RuntimeError(f"partial success: {response.content[:300]!r}")

    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dialect", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=4, help="A/B rounds")
    parser.add_argument("--requests", type=int, default=5, help="requests per kind per round")
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--gzip", action="store_true", help="gzip both kinds of bodies")
    args = parser.parse_args()

    rng = random.Random(7)
    start_ns = 1_793_000_000 * 10**9
    total = args.rounds * args.requests
    warm = 2
    otlp_bodies = [otlp_request(rng, start_ns) for _ in range(total + warm)]
    event_bodies = [events_request(otlp_request(rng, start_ns)) for _ in range(total + warm)]
    otlp_headers = {"Content-Type": "application/x-protobuf"}
    event_headers = {"Content-Type": "application/json"}
    if args.gzip:
        otlp_bodies = [gzip.compress(b, 5) for b in otlp_bodies]
        event_bodies = [gzip.compress(b, 5) for b in event_bodies]
        otlp_headers["Content-Encoding"] = event_headers["Content-Encoding"] = "gzip"

    with tempfile.TemporaryDirectory() as tmp:
        if args.dialect == "sqlite":
            url = await fresh_sqlite_database(Path(tmp) / "bench.db")
        else:
            url = await fresh_pg_database("gati_bench_otlp")
        server = start_server(url, workers=args.workers)
        try:
            await send_all(server.url, "/v1/traces", otlp_bodies[:warm], otlp_headers, 1)
            await send_all(server.url, "/api/events", event_bodies[:warm], event_headers, 1)
            otlp_time = events_time = 0.0
            for r in range(args.rounds):
                chunk = slice(warm + r * args.requests, warm + (r + 1) * args.requests)
                otlp_time += await send_all(
                    server.url, "/v1/traces", otlp_bodies[chunk], otlp_headers, args.clients
                )
                events_time += await send_all(
                    server.url, "/api/events", event_bodies[chunk], event_headers, args.clients
                )
            async with httpx.AsyncClient(base_url=server.url) as client:
                summary = (await client.get("/api/metrics/summary")).json()
        finally:
            server.stop()

    spans = total * SPANS_PER_REQUEST
    otlp_rate = spans / otlp_time
    events_rate = spans / events_time
    print(f"machine: {machine()}")
    print(
        f"dialect={args.dialect} workers={args.workers} clients={args.clients} "
        f"gzip={args.gzip} requests={total} per kind x {SPANS_PER_REQUEST} spans"
    )
    print(f"avg OTLP protobuf body: {sum(map(len, otlp_bodies)) / len(otlp_bodies) / 1024:.0f} KiB")
    print(
        f"avg /api/events body:   {sum(map(len, event_bodies)) / len(event_bodies) / 1024:.0f} KiB"
    )
    print(f"POST /v1/traces (protobuf): {otlp_rate:,.0f} spans/s")
    print(f"POST /api/events (same):    {events_rate:,.0f} events/s")
    print(f"ratio OTLP / events: {otlp_rate / events_rate:.0%}")
    print(f"stored events: {summary.get('total_events')}, total cost: {summary.get('total_cost')}")


if __name__ == "__main__":
    run(main())
