"""TEMPORARY fuzz probe (to be deleted)."""
from __future__ import annotations
import sys, json, gzip
sys.path.insert(0, "/tmp/b")
import pytest
from harness import probe  # noqa

BIG = str(2**70)
INTS = ["-1", "0", BIG, "-" + BIG, "1.5", "1e3", "NaN", "inf", "", "abc", "9223372036854775807", "9223372036854775808", "%FF"]
DATES = ["0000-01-01", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59", "9999-12-31T23:59:59-12:00",
         "0001-01-01T00:00:00+14:00", "1e20", "-1e20", "99999999999999999999", "2024-02-30", "nan", "",
         "2024-01-01T00:00:00+25:00", "%FF", "\u00e9", "-62135596800", "253402300800", "1e11", "inf"]

async def seed(c, d):
    A = "seed"
    await probe(c, "seed tracing", "POST", "/api/events", dialect=d, area=A, json={"events": [
        {"event_type": "agent_start", "run_id": "r1", "agent_name": "ag", "event_id": "e1", "data": {"model": "gpt-4o", "tokens_in": 10}},
        {"event_type": "llm_call", "run_id": "r1", "agent_name": "ag", "event_id": "e2", "data": {"parent_run_id": "e1", "model": "gpt-4o", "tokens_in": 10, "tokens_out": 5, "latency_ms": 3}},
        {"event_type": "agent_end", "run_id": "r1", "agent_name": "ag", "event_id": "e3"}]})
    await probe(c, "seed ev", "POST", "/api/v1/events", dialect=d, area=A, json={"event_type": "signup", "event_id": "pe1", "properties": {"plan": "pro", "seats": 3}})
    await probe(c, "seed metric", "POST", "/api/v1/metrics", dialect=d, area=A, json={"name": "cpu", "value": 1.0, "tags": {"host": "a"}})
    await probe(c, "seed collect", "POST", "/collect", dialect=d, area=A, json={"siteId": "default", "url": "https://ex.com/p?utm_source=x", "referrer": "https://google.com/", "properties": {"a": "b"}}, headers={"user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36"})
    await probe(c, "seed err", "POST", "/api/v1/events", dialect=d, area=A, json={"project_key": "default", "message": "boom", "stack": "Error: x\n    at f (/a.js:1:2)"})


async def test_reads(make_app, dialect):
    d = dialect
    async with make_app() as c:
        await seed(c, d)
        A = "tracing"
        for v in INTS:
            for p in ["limit", "offset"]:
                await probe(c, f"runs {p}={v}", "GET", f"/api/agents/ag/runs?{p}={v}", dialect=d, area=A)
            await probe(c, f"summary top={v}", "GET", f"/api/metrics/summary?top={v}", dialect=d, area=A)
            await probe(c, f"project={v}", "GET", f"/api/agents?project={v}", dialect=d, area=A)
            await probe(c, f"events project={v}", "GET", f"/api/v1/events?project={v}", dialect=d, area=A)
        for v in DATES:
            for p in ["since", "until"]:
                for per in ["hourly", "daily", "monthly"]:
                    await probe(c, f"agent metrics {p}={v}", "GET", f"/api/agents/ag/metrics?period={per}&{p}={v}", dialect=d, area=A)
            for p in ["start", "end"]:
                await probe(c, f"v1 events {p}={v}", "GET", f"/api/v1/events?{p}={v}", dialect=d, area="events")
                await probe(c, f"metrics {p}={v}", "GET", f"/api/v1/metrics?{p}={v}", dialect=d, area="metrics")
                await probe(c, f"metrics agg {p}={v}", "GET", f"/api/v1/metrics/aggregate/cpu?{p}={v}", dialect=d, area="metrics")
            await probe(c, f"export run since={v}", "POST", f"/export/run?since={v}&until=2024-01-01", dialect=d, area="exports")
        for path in ["/api/runs/{}", "/api/runs/{}/timeline", "/api/runs/{}/trace", "/api/events/{}/children", "/api/agents/{}", "/api/agents/{}/runs",
                     "/api/agents/{}/metrics", "/api/v1/events/{}", "/api/v1/metrics/{}", "/api/v1/issues/{}", "/api/v1/issues/{}/events",
                     "/api/v1/error-events/{}", "/export/runs/{}", "/api/v1/metrics/latest/{}", "/api/v1/metrics/aggregate/{}",
                     "/api/v1/projects/{}", "/api/v1/projects/{}/issues", "/api/v1/projects/{}/dsn", "/api/v1/projects/{}/error-settings",
                     "/api/v1/sites/{}/settings", "/api/v1/sites/{}/stats/aggregate", "/api/v1/sites/{}/stats/realtime",
                     "/api/v1/projects/{}/members", "/api/v1/projects/{}/keys"]:
            for v in ["-1", "0", BIG, "9223372036854775808", "1.5", "abc", "%FF", "%C3%28", "x" * 5000, "%ED%A0%80", "..", "NaN", "1e400"]:
                await probe(c, f"path {path} {v[:20]}", "GET", path.format(v), dialect=d, area="paths")
        # events list filters / cursor
        A = "events"
        import base64
        def cur(obj):
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
        curs = ["!!!", "a", "AAAA", cur([1, 0, 2**70, "x"]), cur([1, 2**62, 1, "x"]), cur([1, -2**62, 1, "x"]),
                cur([1, 253402300799999999, 1, "x"]), cur([1, -62135596800000000, 1, "x"]), cur([1, 0, -(2**63) - 1, "x"]),
                cur([1, 0, 1, "x" * 600]), cur([1, 1.5, 1, "x"]), cur([1, 0, 1, "\ud800"]), cur([1.0, 0, 1, "x"]),
                cur({"a": 1}), cur([2**70]), cur([[1], 0, 1, "x"]),
                base64.urlsafe_b64encode(b"[1,0,1,\"\\ud800\"]").decode(), base64.urlsafe_b64encode(b"\xff\xfe").decode()]
        for cc in curs:
            await probe(c, f"events cursor {cc[:30]}", "GET", "/api/v1/events", params={"cursor": cc}, dialect=d, area=A)
            await probe(c, f"metrics cursor {cc[:30]}", "GET", "/api/v1/metrics", params={"cursor": cc}, dialect=d, area="metrics")
        for q in [{"property.plan": "pro"}, {"property.seats": "3"}, {"property.": "x"}, {"property." + "x" * 3000: "1"},
                  {"property.a.b.c": "1"}, {"property.plan": BIG}, {"property.plan": "1e400"}, {"property.plan": "NaN"},
                  {"property.plan": "-0"}, {"property.plan": "x" * 30000}, {"properties": "[]"}, {"properties": "{"},
                  {"properties": json.dumps({"a": 2**70})}, {"properties": json.dumps({"a": {"b": 1}})}, {"properties": json.dumps({"a": [1]})},
                  {"properties": json.dumps({"a": None})}, {"properties": json.dumps({"a": 1.5e308})}, {"properties": "{\"a\": 1e400}"},
                  {"properties": json.dumps({"a": True})}, {"properties": json.dumps({"": 1})}, {"properties": json.dumps({"a'b": 1})},
                  {"properties": json.dumps({"a\"b": 1})}, {"property.a'b": "1"}, {"property.a\\b": "1"}, {"property.$.a": "1"},
                  {"event_type": ["a"] * 2000}, {"event_type": "x" * 30000}, {"limit": "1", "cursor": ""},
                  {"properties": json.dumps({"a": -(2**63)})}, {"properties": json.dumps({"a": 2**64})}, {"properties": json.dumps({"k": "x" * 10})}]:
            await probe(c, f"events q {str(q)[:60]}", "GET", "/api/v1/events", params=q, dialect=d, area=A)
        await probe(c, "events dup start", "GET", "/api/v1/events?start=2020-01-01&start=2030-01-01&end=2010-01-01", dialect=d, area=A)
        await probe(c, "events prop encoded", "GET", "/api/v1/events?property.%FF=%FF", dialect=d, area=A)
        # metrics reads
        A = "metrics"
        for q in [{"tag": "a"}, {"tag": ":"}, {"tag": "a:" + "x" * 10000}, {"tag": ["a:b"] * 200}, {"name": "x" * 1000}, {"name": "%"},
                  {"limit": "0"}, {"limit": BIG}, {"name": "cpu", "start": "2030-01-01", "end": "2020-01-01"}, {"start": "1" * 400},
                  {"start": "0"}, {"start": "9" * 30}, {"start": "1.5"}, {"start": "1e400"}, {"start": "1" * 12}, {"start": "253402300800000"}]:
            await probe(c, f"metrics q {str(q)[:60]}", "GET", "/api/v1/metrics", params=q, dialect=d, area=A)
        for q in [{"interval": x} for x in ["0", "-1", "1s", "1ms", "1000000d", BIG + "s", "x", "", "1.5m", "1w", "1y", "100000000w"]] + \
                 [{"tz": x} for x in ["Nope/Nope", "", "../../etc/passwd", "UTC\u00e9", "x" * 5000, "Etc/GMT+14", "America/St_Johns", "Europe/London", "posixrules", "Factory", "EST5EDT", "/etc/localtime", "localtime", "UTC ", "+05:00"]] + \
                 [{"fn": x} for x in ["p0", "p100", "p101", "p-1", "median", "", ",", "p50,p50", "p99.9", "p1e3", "p" + BIG]] + \
                 [{"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T23:59:59Z", "interval": "1m"},
                  {"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T23:59:59Z"},
                  {"start": "2024-01-01T00:00:00Z", "end": "2024-01-01T00:00:00Z"},
                  {"start": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"},
                  {"start": "2024-01-01T00:00:00Z", "end": "2024-12-31T00:00:00Z", "interval": "1s"},
                  {"start": "9999-12-31T00:00:00Z", "end": "9999-12-31T23:59:59Z", "interval": "1d", "tz": "Pacific/Kiritimati"},
                  {"start": "0001-01-01T00:00:00Z", "end": "0001-01-02T00:00:00Z", "interval": "1h", "tz": "America/Adak"},
                  {"tag": "host:a", "fn": "p50", "interval": "1h"}]:
            for name in ["cpu", "nosuch"]:
                await probe(c, f"agg {name} {str(q)[:80]}", "GET", f"/api/v1/metrics/aggregate/{name}", params=q, dialect=d, area=A)
        for q in [{"tag": "host:a"}, {"tag": "bad"}, {"project": BIG}]:
            await probe(c, f"latest {q}", "GET", "/api/v1/metrics/latest/cpu", params=q, dialect=d, area=A)


def nested(n, leaf="1"):
    return "[" * n + leaf + "]" * n

def nested_obj(n):
    return '{"a":' * n + "1" + "}" * n

WEIRD_VALUES = [2**70, -(2**70), 2**63, -(2**63) - 1, 1.5, float("1e308"), -1, 0, True, None, [], {}, "x" * 100000,
                "", "\u00e9\u4e2d", [1, 2], {"a": 1}]
RAW_BODIES = [b"\xff\xfe", b'{"a": "\\ud800"}', b'{"a": "\\udc00\\ud800"}', b"NaN", b"[NaN]", b'{"a": Infinity}',
              nested(5000).encode(), nested(100000).encode(), nested_obj(5000).encode(), b"1e400", b'"str"', b"[]", b"{}",
              b"null", b"123", b'{"' + b"k" * 100 + b'": 1}', b"\xef\xbb\xbf{}", b'{"a":1,"a":2}']

async def test_ingest(make_app, dialect):
    d = dialect
    async with make_app() as c:
        await seed(c, d)
        r = await c.get("/api/v1/projects/default")
        proj = r.json()
        pid, pk = proj.get("id"), proj.get("public_key")
        A = "ingest-raw"
        endpoints = [("POST", "/api/events"), ("POST", "/api/v1/events"), ("POST", "/api/v1/events/batch"), ("POST", "/api/v1/metrics"),
                     ("POST", "/collect"), ("POST", "/v1/traces"), ("POST", f"/api/{pid}/store/?sentry_key={pk}"),
                     ("POST", f"/api/{pid}/envelope/?sentry_key={pk}"), ("PUT", "/export/config"), ("POST", "/api/pricing/prices"),
                     ("PATCH", "/api/v1/sites/default/settings"), ("PATCH", "/api/v1/projects/default/error-settings"),
                     ("POST", "/api/v1/auth/register"), ("POST", "/api/v1/auth/login"), ("POST", "/api/v1/auth/refresh"),
                     ("POST", "/api/v1/projects"), ("PATCH", "/api/v1/projects/default")]
        for m, u in endpoints:
            for b in RAW_BODIES:
                for ct in ["application/json", "text/plain"]:
                    await probe(c, f"raw {u} {b[:20]!r}", m, u, content=b, headers={"content-type": ct}, dialect=d, area=A)
            for enc, body in [("gzip", b"notgzip"), ("gzip", gzip.compress(b"")), ("deflate", b"\x00"), ("br", b"\x00\x01"), ("zstd", b"\x28\xb5\x2f\xfd"),
                              ("gzip, gzip", gzip.compress(gzip.compress(b"{}"))), ("identity", b"{}"), ("\xff", b"{}")]:
                await probe(c, f"enc {u} {enc}", m, u, content=body, headers={"content-type": "application/json", "content-encoding": enc.encode("latin-1")}, dialect=d, area=A)
            for cl in ["-1", "abc", "1" * 30, "0"]:
                await probe(c, f"CL {u} {cl}", m, u, content=b"{}", headers={"content-type": "application/json", "content-length": cl}, dialect=d, area=A, timeout=10)
        # tracing item fuzz
        A = "tracing-ingest"
        base = {"event_type": "llm_call", "run_id": "rx", "agent_name": "ag2"}
        fields = {"event_type": WEIRD_VALUES + ["x" * 101], "run_id": WEIRD_VALUES + ["x" * 129], "agent_name": WEIRD_VALUES,
                  "timestamp": WEIRD_VALUES + DATES + [1e20, -1e20, 1e11, 253402300800, -62135596801, float("1e19"), 99999999999999, "2024-01-01T00:00:00+99:00", "24:00"],
                  "event_id": WEIRD_VALUES + ["x" * 129], "data": WEIRD_VALUES}
        datakeys = ["parent_run_id", "latency_ms", "duration_ms", "cost", "total_cost", "tokens_in", "tokens_out", "input_tokens", "output_tokens",
                    "prompt_tokens", "completion_tokens", "model", "status", "environment", "run_metadata", "metadata", "cost_source", "provider",
                    "tokens_cache_read", "tokens_reasoning", "tokens_cache_creation", "usage"]
        i = 0
        for f, vals in fields.items():
            for v in vals:
                i += 1
                ev = dict(base, **{f: v}, event_id=f"t{i}") if f != "event_id" else dict(base, event_id=v)
                await probe(c, f"trace {f}={str(v)[:30]}", "POST", "/api/events", json={"events": [ev]}, dialect=d, area=A)
        for k in datakeys:
            for v in WEIRD_VALUES + ["NaN", "1e400", -1e308, float("nan") if False else 1e308]:
                i += 1
                for et in ["agent_start", "llm_call"]:
                    ev = dict(base, event_type=et, event_id=f"d{i}{et}", data={k: v, "model": "gpt-4o"} if k != "model" else {k: v})
                    await probe(c, f"trace data.{k}={str(v)[:30]}", "POST", "/api/events", json=[ev], dialect=d, area=A)
        # metadata clash / merges
        await probe(c, "trace data huge batch of runs", "POST", "/api/events", json=[dict(base, run_id=f"m{j}", event_id=f"mm{j}", data={"cost": 1e308, "tokens_in": 2**62}) for j in range(3)], dialect=d, area=A)
        await probe(c, "trace cost overflow sum", "POST", "/api/events", json=[dict(base, run_id="ovf", event_id=f"ov{j}", data={"cost": 1.7e308, "tokens_in": 2**62, "latency_ms": 2**62}) for j in range(4)], dialect=d, area=A)
        await probe(c, "runs after overflow", "GET", "/api/runs/ovf", dialect=d, area=A)
        await probe(c, "agent after overflow", "GET", "/api/agents/ag2", dialect=d, area=A)
        await probe(c, "agent metrics after overflow", "GET", "/api/agents/ag2/metrics", dialect=d, area=A)
        await probe(c, "summary after overflow", "GET", "/api/metrics/summary", dialect=d, area=A)
        await probe(c, "agents list", "GET", "/api/agents", dialect=d, area=A)
        # v1 events
        A = "v1-events-ingest"
        pbase = {"event_type": "signup"}
        for f in ["event_type", "name", "event_id", "timestamp", "properties", "user_id", "session_id", "project", "distinct_id", "context"]:
            for v in WEIRD_VALUES + DATES[:8] + [1e20, 1e11]:
                i += 1
                ev = dict(pbase, **{f: v})
                await probe(c, f"v1 {f}={str(v)[:30]}", "POST", "/api/v1/events", json=ev, dialect=d, area=A)
                await probe(c, f"v1 batch {f}={str(v)[:30]}", "POST", "/api/v1/events/batch", json={"events": [ev]}, dialect=d, area=A)
        for pv in [{"a": 2**70}, {"a": -(2**64)}, {"a": 1e308}, {"": 1}, {"x" * 10000: 1}, {"a": {"b": {"c": [1, {"d": 2**65}]}}}, ]:
            await probe(c, f"v1 props {str(pv)[:40]}", "POST", "/api/v1/events", json=dict(pbase, properties=pv), dialect=d, area=A)
        await probe(c, "v1 props lone surrogate raw", "POST", "/api/v1/events", content=b'{"event_type":"a","properties":{"k":"\\ud800"}}', headers={"content-type": "application/json"}, dialect=d, area=A)
        await probe(c, "v1 props deep", "POST", "/api/v1/events", content=('{"event_type":"a","properties":' + nested_obj(1000) + "}").encode(), headers={"content-type": "application/json"}, dialect=d, area=A)
        await probe(c, "v1 batch events not list", "POST", "/api/v1/events/batch", json={"events": {"a": 1}}, dialect=d, area=A)
        await probe(c, "v1 batch list", "POST", "/api/v1/events/batch", json=[1, "a", None, [], {}], dialect=d, area=A)
        await probe(c, "v1 batch dup ids", "POST", "/api/v1/events/batch", json={"events": [dict(pbase, event_id="dup"), dict(pbase, event_id="dup", event_type="other")]}, dialect=d, area=A)
        # error reports
        A = "error-report-ingest"
        ebase = {"project_key": "default", "message": "m"}
        for f in ["message", "stack", "method", "path", "status_code", "timestamp", "event_id", "level", "environment", "release", "platform", "tags", "user", "fingerprint", "project_key"]:
            for v in WEIRD_VALUES + ["not-a-uuid", "00000000-0000-0000-0000-000000000000", [None], [{"a": 1}], [2**70], {"a": {"b": 1}}, {"k": 2**70}] + DATES[:6]:
                await probe(c, f"err {f}={str(v)[:30]}", "POST", "/api/v1/events", json=dict(ebase, **{f: v}), dialect=d, area=A)
        stacks = ["Traceback (most recent call last):\n  File \"a.py\", line 99999999999999999999999, in f\nE: x",
                  "Error: x\n    at f (/a.js:99999999999999999999:1)", "Error\n    at f (a.js:1:" + "9" * 40 + ")",
                  "f@a.js:" + "9" * 40 + ":1", "Traceback (most recent call last):\n" + "  File \"a.py\", line 1, in f\n" * 20000 + "E: x",
                  "During handling\n" * 1000, "Error: x\n" + "    at f (a.js:-1:-1)\n", "Traceback (most recent call last):\n  File \"a.py\", line -5, in f\nE: x"]
        for s in stacks:
            await probe(c, f"err stack {s[:40]!r}", "POST", "/api/v1/events", json=dict(ebase, stack=s[:200000]), dialect=d, area=A)


async def test_misc(make_app, dialect):
    d = dialect
    async with make_app() as c:
        await seed(c, d)
        r = await c.get("/api/v1/projects/default")
        proj = r.json()
        pid, pk = proj.get("id"), proj.get("public_key")
        i = 0
        # metrics ingest
        A = "metrics-ingest"
        mbase = {"name": "m1", "value": 1}
        for f in ["name", "value", "timestamp", "tags", "id", "project"]:
            for v in WEIRD_VALUES + DATES + [1e20, -1e20, 1e11, 1e300, -1e300, 253402300800, -62135596801, 9.9e15, {"a": 2**70}, {"a": 1e308}, {"a" * 65: "b"}, {"a": "\u00e9" * 300}, {str(k): "v" for k in range(40)}]:
                i += 1
                await probe(c, f"metric {f}={str(v)[:30]}", "POST", "/api/v1/metrics", json=dict(mbase, **{f: v}), dialect=d, area=A)
                await probe(c, f"metric list {f}={str(v)[:30]}", "POST", "/api/v1/metrics", json=[dict(mbase, **{f: v}), mbase], dialect=d, area=A)
        await probe(c, "metric value 1e308 x2 then agg sum", "POST", "/api/v1/metrics", json=[{"name": "big", "value": 1.7e308, "timestamp": "2024-01-01T00:00:00Z"}, {"name": "big", "value": 1.7e308, "timestamp": "2024-01-01T00:00:01Z"}], dialect=d, area=A)
        for fn in ["sum", "avg", "p50", "max", "count"]:
            await probe(c, f"agg big {fn}", "GET", f"/api/v1/metrics/aggregate/big?fn={fn}&start=2023-12-31T00:00:00Z&end=2024-01-02T00:00:00Z", dialect=d, area="metrics")
        await probe(c, "latest big", "GET", "/api/v1/metrics/latest/big", dialect=d, area="metrics")
        await probe(c, "list big", "GET", "/api/v1/metrics?name=big", dialect=d, area="metrics")
        # collect
        A = "collect"
        cbase = {"siteId": "default", "url": "https://ex.com/a"}
        ua = {"user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120 Safari/537.36"}
        for f in ["siteId", "eventType", "sessionId", "visitorId", "timestamp", "url", "path", "referrer", "title", "attribution", "properties", "props", "eventId", "screen", "language"]:
            for v in WEIRD_VALUES + DATES + [1e20, 1e11, -1e11, "http://[::1", "http://a:99999/", "javascript:alert(1)", "https://ex.com/" + "a" * 5000, "//x", "http://%FF/",
                                            {"utmParams": {"utm_source": 2**70}}, {"utmParams": [1]}, {"a": 2**70}, {"a": [1]}, {"a": {"b": 1}}, {str(k): k for k in range(31)}]:
                for ct in ["application/json", "text/plain"]:
                    await probe(c, f"collect {f}={str(v)[:30]}", "POST", "/collect", json=dict(cbase, **{f: v}), headers=dict(ua, **{"content-type": ct}), dialect=d, area=A)
                if isinstance(v, (str, int, float)) and len(str(v)) < 30000:
                    await probe(c, f"pixel {f}={str(v)[:30]}", "GET", "/collect", params=dict(cbase, **{f: str(v)}), headers=ua, dialect=d, area=A)
        for raw in ["siteId=default&url=%FF", "siteId=%FF", "siteId=default&siteId=other", "siteId=default&props=%7B", "siteId=default&props=%5B%5D",
                    "siteId=default&properties=%7B%22a%22%3A1e400%7D", "siteId=default&timestamp=9999-12-31T23:59:59-12:00", "siteId=default&p.a=1&p.a=2",
                    "siteId=", "siteId=default&url=http%3A%2F%2F%5B%3A%3A1", "siteId=default&referrer=http%3A%2F%2F%5Bx", "siteId=default&u=http://[::1]:99999/"]:
            await probe(c, f"pixel raw {raw}", "GET", "/collect?" + raw, headers=ua, dialect=d, area=A)
        for h in [{"x-forwarded-for": "999.1.1.1"}, {"user-agent": "\u00e9".encode("latin-1")}, {"user-agent": "x" * 20000}, {"origin": "null"}, {"origin": "http://[::1"},
                  {"user-agent": ""}, {"accept-language": "x" * 10000}]:
            await probe(c, f"collect header {str(h)[:40]}", "POST", "/collect", json=dict(cbase), headers=h, dialect=d, area=A)
        await probe(c, "collect referer bad ipv6", "POST", "/collect", json=dict(cbase, referrer="http://[::1/x"), headers=ua, dialect=d, area=A)
        await probe(c, "collect url bad ipv6", "POST", "/collect", json=dict(cbase, url="http://[::1/x"), headers=ua, dialect=d, area=A)
        await probe(c, "collect url bad port", "POST", "/collect", json=dict(cbase, url="http://ex.com:99999999/x"), headers=ua, dialect=d, area=A)
        await probe(c, "collect referrer bad port", "POST", "/collect", json=dict(cbase, referrer="http://ex.com:99999999/x"), headers=ua, dialect=d, area=A)
        await probe(c, "options collect", "OPTIONS", "/collect?siteId=%FF", headers={"origin": "http://[::1", "access-control-request-method": "POST"}, dialect=d, area=A)
        for q in ["", "?limit=0", "?limit=" + BIG, "?project=" + BIG, "?site=%FF"]:
            await probe(c, f"recent {q}", "GET", "/events/recent" + q, dialect=d, area="web-stats")
        # web stats
        A = "web-stats"
        for ep in ["aggregate", "timeseries", "breakdown"]:
            extra = {"property": "page"} if ep == "breakdown" else {}
            qs = [{"period": p} for p in ["day", "7d", "30d", "month", "12mo", "custom", "6mo", "realtime", "all", "", "x", "0d", "-1d", BIG + "d", "1000000d", "99999d"]] + \
                 [{"period": "day", "date": x} for x in ["0001-01-01", "9999-12-31", "0000-01-01", "2024-02-30", "x", "", "2024-1-1", "+2024-01-01", "１２３４-01-01"]] + \
                 [{"period": "month", "date": x} for x in ["0001-01-01", "9999-12-31"]] + [{"period": "12mo", "date": x} for x in ["0001-01-01", "9999-12-31", "0001-12-31"]] + \
                 [{"period": "7d", "date": x} for x in ["0001-01-01", "0001-01-05", "9999-12-31"]] + [{"period": "30d", "date": "0001-01-20"}] + \
                 [{"period": "custom", "date": x} for x in ["0001-01-01,9999-12-31", "2024-01-02,2024-01-01", "2024-01-01", ",", "2024-01-01,", "a,b", "2024-01-01,2024-01-02,2024-01-03", "0001-01-01,0001-01-01", "9999-12-31,9999-12-31"]] + \
                 [{"interval": x} for x in ["minute", "hour", "day", "week", "month", "year", "", "x"]] + \
                 [{"period": "custom", "date": "2000-01-01,2024-01-01", "interval": "minute"}, {"period": "custom", "date": "0001-01-01,9999-12-31", "interval": "minute"},
                  {"period": "custom", "date": "0001-01-01,0001-01-31", "interval": "week"}, {"period": "custom", "date": "9999-12-01,9999-12-31", "interval": "week"},
                  {"period": "custom", "date": "9999-12-01,9999-12-31", "interval": "month"}, {"period": "custom", "date": "0001-01-01,0001-03-01", "interval": "month"},
                  {"period": "day", "date": "9999-12-31", "interval": "minute"}, {"period": "day", "date": "0001-01-01", "interval": "hour"}] + \
                 [{"filters": x} for x in ["page==/a", "page==", "==", "page", "nope==1", "page!=", ";;", "page==a|b|" + "c|" * 500, "page==~x", "page~=x", "page==(", "page==%", "page==_", "page==\\",
                                            "property:==1", "property:a==1", "property:" + "x" * 1000 + "==1", "event==pageview", "country==ZZZZ", "page==*", "page=~a", "page!~a", "page contains a", "source==Google;source!=Google",
                                            "property:a'b==1", "property:a\"b==1", "property:$.a==1", "property:a==" + "x" * 50000]] + \
                 [{"metrics": x} for x in ["visitors", "bounce_rate", "visit_duration", "views_per_visit", "events", "nope", "", ",", "visitors," * 100, "conversion_rate", "time_on_page"]] + \
                 [{"compare": x} for x in ["previous_period", "true", "year_over_year", "x"]] + \
                 [{"period": "custom", "date": "0001-01-01,0001-01-02", "compare": "previous_period"}, {"period": "day", "date": "0001-01-01", "compare": "previous_period"},
                  {"period": "12mo", "date": "0001-06-01", "compare": "previous_period"}, {"period": "month", "date": "0001-01-15", "compare": "previous_period"},
                  {"period": "7d", "date": "0001-01-03", "compare": "previous_period"}]
            if ep == "breakdown":
                qs += [{"property": x} for x in ["page", "entry_page", "exit_page", "source", "referrer", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "browser", "browser_version",
                                                  "os", "os_version", "device", "country", "region", "city", "event", "property:", "property:a", "property:" + "x" * 1000, "property:a'b", "nope", "", "hostname", "event:page", "visit:source"]]
                qs += [{"limit": x} for x in INTS] + [{"page": x} for x in INTS] + [{"limit": BIG, "page": BIG}, {"limit": "9223372036854775807", "page": "2"}]
            for q in qs:
                await probe(c, f"stats {ep} {str(q)[:70]}", "GET", f"/api/v1/sites/default/stats/{ep}", params=dict(extra, **q), dialect=d, area=A)
        # site settings & tz
        for body in [{"timezone": x} for x in ["Nope/Nope", "", "UTC", "Etc/GMT+14", "Pacific/Kiritimati", "../../etc/passwd", "posixrules", "Factory", "localtime", "/etc/localtime", "EST5EDT", "x" * 64, "\u00e9", " UTC", "build/etc/localtime", "UCT", "right/UTC", "zone.tab", "tzdata.zi", "iso3166.tab", "leapseconds", "America", "Etc/", "."]] + \
                    [{"hostnames": x} for x in [["a"] * 1000, [""], ["x" * 255], [1], "a", None, ["\u00e9.com"], ["*.com"], ["http://x"]]] + \
                    [{"ip_mode": "x"}, {"timezone": 1}, [], {"extra": 1}]:
            r = await probe(c, f"site settings {str(body)[:60]}", "PATCH", "/api/v1/sites/default/settings", json=body, dialect=d, area=A)
            if r is not None and r.status_code == 200 and "timezone" in body:
                for ep in ["aggregate", "timeseries", "breakdown?property=page", "realtime"]:
                    await probe(c, f"stats after tz {body['timezone'][:30]} {ep}", "GET", f"/api/v1/sites/default/stats/{ep}", dialect=d, area=A)
                await probe(c, f"stats after tz {body['timezone'][:30]} day min", "GET", "/api/v1/sites/default/stats/timeseries?period=day&date=0001-01-01&interval=minute", dialect=d, area=A)
                await probe(c, f"stats after tz {body['timezone'][:30]} 9999", "GET", "/api/v1/sites/default/stats/timeseries?period=month&date=9999-12-31", dialect=d, area=A)
                await probe(c, f"stats after tz {body['timezone'][:30]} settings", "GET", "/api/v1/sites/default/settings", dialect=d, area=A)
        await probe(c, "restore tz", "PATCH", "/api/v1/sites/default/settings", json={"timezone": "UTC"}, dialect=d, area=A)
        # errors reads & patch
        A = "errors"
        for q in [{"status": "x"}, {"sort": "x"}, {"query": "%"}, {"query": "_"}, {"query": "\\"}, {"query": "'"}, {"query": "a" * 201}, {"environment": "x" * 10000}, {"release": "%"},
                  {"limit": "0"}, {"limit": BIG}, {"offset": BIG}, {"offset": "9223372036854775807"}, {"offset": "-1"}, {"query": "%FF"}, {"query": "[a-"}, {"query": "*"}, {"query": "\u00e9"}]:
            await probe(c, f"issues {q}", "GET", f"/api/v1/projects/default/issues", params=q, dialect=d, area=A)
        issues = (await c.get("/api/v1/projects/default/issues")).json().get("issues") or (await c.get("/api/v1/projects/default/issues")).json().get("results") or []
        iid = issues[0]["id"] if issues else 1
        for body in [{"status": "resolved"}, {"status": "x"}, {"status": None}, [], {"status": "resolved", "x": 1}, {}, {"status": 1}]:
            await probe(c, f"patch issue {body}", "PATCH", f"/api/v1/issues/{iid}", json=body, dialect=d, area=A)
        for v in ["0", "-1", BIG, "9223372036854775808"]:
            await probe(c, f"patch issue id {v}", "PATCH", f"/api/v1/issues/{v}", json={"status": "resolved"}, dialect=d, area=A)
        for q in [{"offset": BIG}, {"offset": "9223372036854775807"}, {"limit": "101"}]:
            await probe(c, f"issue events {q}", "GET", f"/api/v1/issues/{iid}/events", params=q, dialect=d, area=A)
        for body in [{"retention_days": 0}, {"retention_days": 36501}, {"retention_days": BIG}, {"retention_days": 2**70}, {"rate_limit": "x"}, {"rate_limit": "0/second"}, {"rate_limit": "-1/second"},
                     {"rate_limit": BIG + "/second"}, {"rate_limit": "1/second;burst=" + BIG}, {"rate_limit": "1/second;burst=-1"}, {"rate_limit": "1/second;burst=0"}, {"rate_limit": "1.5/second"},
                     {"rate_limit": "1/fortnight"}, {"rate_limit": "1e400/second"}, {"rate_limit": "NaN/second"}, {"rate_limit": "inf/second"}, {"rate_limit": "1/second;burst=1;burst=2"}, {"rate_limit": "off"},
                     {"rate_limit": "1/second;x=1"}, {"rate_limit": "１/second"}]:
            r = await probe(c, f"error settings {body}", "PATCH", "/api/v1/projects/default/error-settings", json=body, dialect=d, area=A)
            if r is not None and r.status_code == 200:
                await probe(c, f"err ingest after settings {body}", "POST", "/api/v1/events", json={"project_key": "default", "message": "after"}, dialect=d, area=A)
                await probe(c, f"sentry after settings {body}", "POST", f"/api/{pid}/store/?sentry_key={pk}", json={"message": "x"}, dialect=d, area=A)
        await probe(c, "restore err settings", "PATCH", "/api/v1/projects/default/error-settings", json={"rate_limit": None, "retention_days": None}, dialect=d, area=A)
        for ident in ["0", "-1", BIG, "9223372036854775808", "abc", "00000000-0000-0000-0000-000000000000", "x" * 300, "%FF"]:
            await probe(c, f"error-event {ident[:20]}", "GET", f"/api/v1/error-events/{ident}", dialect=d, area=A)
        # sentry
        A = "sentry"
        SV = [2**70, -1, 1e20, "x" * 100000, [], {}, None, True, "2024-02-30", "9999-12-31T23:59:59-12:00", 1e11, -1e20, "\u00e9"]
        skeys = ["event_id", "timestamp", "level", "platform", "message", "logentry", "exception", "tags", "user", "request", "contexts", "fingerprint", "release", "environment", "breadcrumbs", "extra", "transaction", "logger", "server_name", "sdk", "start_timestamp", "threads", "modules"]
        for k in skeys:
            for v in SV:
                await probe(c, f"store {k}={str(v)[:30]}", "POST", f"/api/{pid}/store/?sentry_key={pk}", json={"message": "x", k: v}, dialect=d, area=A)
        for exc in [{"values": [{"type": "E", "value": "v", "stacktrace": {"frames": [{"lineno": 2**70, "colno": -1, "filename": "a"}]}}]},
                    {"values": [{"type": "E", "stacktrace": {"frames": [{"lineno": "x", "in_app": "yes", "vars": {"a": 2**70}}]}}]},
                    {"values": [{"type": "E", "stacktrace": {"frames": "x"}}]}, {"values": [1, "a", None]}, {"values": {"a": 1}}, [{"type": "E"}],
                    {"values": [{"type": 1, "value": 2, "module": [], "mechanism": {"handled": "x", "exception_id": 2**70}}]},
                    {"values": [{"type": "E", "stacktrace": {"frames": [{"lineno": 1.5, "colno": 1e20, "function": 1, "abs_path": {}, "context_line": [], "pre_context": "x"}]}}]},
                    {"values": [{"type": "E", "stacktrace": {"frames": [{}] * 10000}}]}]:
            await probe(c, f"store exception {str(exc)[:60]}", "POST", f"/api/{pid}/store/?sentry_key={pk}", json={"exception": exc}, dialect=d, area=A)
        await probe(c, "store logentry weird", "POST", f"/api/{pid}/store/?sentry_key={pk}", json={"logentry": {"message": "%s %d", "params": [1]}}, dialect=d, area=A)
        await probe(c, "store logentry weird2", "POST", f"/api/{pid}/store/?sentry_key={pk}", json={"logentry": {"message": "%(a)s %", "params": {"a": 1}, "formatted": 1}}, dialect=d, area=A)
        for pidv in ["0", "-1", BIG, "9223372036854775808", "abc", "%FF", "1.5"]:
            await probe(c, f"store pid {pidv}", "POST", f"/api/{pidv}/store/?sentry_key={pk}", json={"message": "x"}, dialect=d, area=A)
            await probe(c, f"envelope pid {pidv}", "POST", f"/api/{pidv}/envelope/?sentry_key={pk}", content=b'{}\n{"type":"event"}\n{"message":"x"}\n', dialect=d, area=A)
        for skey in ["", "x", "%FF", "pk_" + "x" * 5000]:
            await probe(c, f"store skey {skey[:20]}", "POST", f"/api/{pid}/store/?sentry_key={skey}", json={"message": "x"}, dialect=d, area=A)
        for auth in ["Sentry", "Sentry sentry_key=", "Sentry sentry_key=" + pk + ", sentry_version=x", "Sentry ,,,=,=", "x" * 10000]:
            await probe(c, f"store auth {auth[:30]}", "POST", f"/api/{pid}/store/", json={"message": "x"}, headers={"x-sentry-auth": auth}, dialect=d, area=A)
        envs = [b"", b"\n", b"{}", b"{}\n", b"[]\n{}\n{}", b"{}\n{\"type\":\"event\",\"length\":" + BIG.encode() + b"}\n{}", b"{}\n{\"type\":\"event\",\"length\":-1}\n{}",
                b"{}\n{\"type\":\"event\",\"length\":1.5}\n{}", b"{}\n{\"type\":\"event\",\"length\":\"x\"}\n{}", b"{}\n{\"type\":\"event\",\"length\":100}\n{}",
                b"{}\n{\"type\":\"event\"}\n[]", b"{}\n{\"type\":\"event\"}\nnull", b"{}\n{\"type\":\"event\"}\n\xff", b"{}\n{\"type\":1}\n{}", b"{}\n{\"type\":\"event\"}\n" + nested(5000).encode(),
                b"{\"dsn\":\"http://x@[::1/1\"}\n{\"type\":\"event\"}\n{}", b"{\"dsn\":1}\n{\"type\":\"event\"}\n{}", b"{\"dsn\":\"x\"}\n{\"type\":\"event\"}\n{}",
                b"{\"event_id\":1}\n{\"type\":\"event\"}\n{}", b"{\"sent_at\":\"x\"}\n{\"type\":\"event\"}\n{}", b"{}\n{\"type\":\"transaction\"}\n{}", b"{}\n{\"type\":\"session\"}\n{\"x\":1}",
                b"{}\n{\"type\":\"attachment\",\"length\":3}\nabc", b"{}\n{\"type\":\"client_report\"}\n{\"discarded_events\":[{\"quantity\":" + BIG.encode() + b"}]}",
                b"{}\n{\"type\":\"event\"}\n{\"message\":\"x\"}\n" * 5000, b"{}\n{\"type\":\"event\",\"length\":0}\n\n", b"{}\r\n{\"type\":\"event\"}\r\n{}\r\n"]
        for e in envs:
            await probe(c, f"envelope {e[:50]!r}", "POST", f"/api/{pid}/envelope/?sentry_key={pk}", content=e, headers={"content-type": "application/x-sentry-envelope"}, dialect=d, area=A)
        # OTLP JSON
        A = "otlp"
        def span(**kw):
            s = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "s", "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000001000000000"}
            s.update(kw); return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]}, "scopeSpans": [{"spans": [s]}]}]}
        for kw in [{"startTimeUnixNano": BIG}, {"startTimeUnixNano": "-1"}, {"endTimeUnixNano": BIG}, {"startTimeUnixNano": "99999999999999999999"}, {"startTimeUnixNano": 1.5},
                   {"startTimeUnixNano": "x"}, {"endTimeUnixNano": "0"}, {"traceId": ""}, {"traceId": "zz"}, {"spanId": "x" * 1000}, {"parentSpanId": "b7ad6b7169203331"},
                   {"attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": BIG}}]}, {"attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "-" + BIG}}]},
                   {"attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"doubleValue": 1e308}}]}, {"attributes": [{"key": "gen_ai.usage.cost", "value": {"doubleValue": "NaN"}}]},
                   {"attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"stringValue": BIG}}]}, {"attributes": [{"key": "gen_ai.request.model", "value": {"arrayValue": {"values": [{"intValue": BIG}]}}}]},
                   {"attributes": [{"key": "x", "value": {"kvlistValue": {"values": [{"key": "a", "value": {"intValue": "1"}}]}}}]}, {"attributes": [{"key": "x", "value": {"bytesValue": "!!!"}}]},
                   {"attributes": "x"}, {"attributes": [1]}, {"status": {"code": BIG}}, {"status": {"code": "STATUS_CODE_ERROR", "message": 1}}, {"kind": BIG}, {"kind": "x"},
                   {"events": [{"timeUnixNano": BIG, "name": "exception"}]}, {"links": [1]}, {"attributes": [{"key": "gen_ai.usage.cost", "value": {"doubleValue": 1e308}}, {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "9223372036854775807"}}]}]:
            await probe(c, f"otlp {str(kw)[:70]}", "POST", "/v1/traces", json=span(**kw), dialect=d, area=A)
        for raw in [b"\x0a\xff\xff\xff\xff\x0f", b"\x0a\x05\x0a\x03\x0a\x01", b"\xff" * 20, b"", b"\x0a\x00" * 10000]:
            await probe(c, f"otlp proto {raw[:10]!r}", "POST", "/v1/traces", content=raw, headers={"content-type": "application/x-protobuf"}, dialect=d, area=A)
        for body in [{"resourceSpans": 1}, {"resourceSpans": [1]}, {"resourceSpans": [{"scopeSpans": [{"spans": [1]}]}]}, {"resourceSpans": [{"scopeSpans": 1}]}, [], {}]:
            await probe(c, f"otlp shape {str(body)[:60]}", "POST", "/v1/traces", json=body, dialect=d, area=A)
        # exports
        A = "exports"
        cfgs = [{"primary": {"type": "local", "path": "../../etc"}}, {"primary": {"type": "local", "path": "/etc"}}, {"primary": {"type": "local", "path": "a\\..\\..\\b"}},
                {"primary": {"type": "local", "prefix": "../x"}}, {"primary": {"type": "local", "prefix": "a//b"}}, {"primary": {"type": "local", "start_from": "0001-01-01T00:00:00Z"}},
                {"primary": {"type": "local", "start_from": "9999-12-31T23:59:59Z"}}, {"primary": {"type": "local", "start_from": "9999-12-31T23:59:59-12:00"}},
                {"primary": {"type": "s3", "bucket": "abc", "endpoint_url": "http://[::1"}}, {"primary": {"type": "s3", "bucket": "abc", "endpoint_url": "x"}},
                {"primary": {"type": "s3", "bucket": "a" * 63, "region": "\u00e9"}}, {"primary": {"type": "x"}}, {"primary": 1}, {"format": "x"}, {"schedule": "x"},
                {"primary": {"type": "local", "path": "p1"}, "backup": {"type": "local", "path": "p1"}}, {"primary": {"type": "local", "path": "x" * 1024}},
                {"primary": {"type": "local", "prefix": "x/" * 256}}, {"primary": {"type": "local", "path": "a\u00e9"}}, {"primary": {"type": "local", "path": "."}},
                {"primary": {"type": "local", "start_from": "2024-01-01T00:00:00+14:00"}}, {"primary": {"type": "local"}, "format": "parquet"}, {"primary": {"type": "local"}, "format": "csv", "schedule": "daily"}]
        for cfg in cfgs:
            r = await probe(c, f"export config {str(cfg)[:80]}", "PUT", "/export/config", json=cfg, dialect=d, area=A)
            if r is not None and r.status_code == 200:
                await probe(c, f"export status after {str(cfg)[:60]}", "GET", "/export/status", dialect=d, area=A)
                await probe(c, f"export config get after {str(cfg)[:60]}", "GET", "/export/config", dialect=d, area=A)
                await probe(c, f"export run after {str(cfg)[:60]}", "POST", "/export/run?wait=true", dialect=d, area=A, timeout=60)
        for q in ["format=x", "since=2024-01-02&until=2024-01-01", "since=0001-01-01T00:00:00Z&until=9999-12-31T00:00:00Z&wait=true", "since=2024-01-01&until=2024-01-01",
                  "since=0001-01-01&until=0001-01-02&wait=true", "since=9999-12-30&until=9999-12-31&wait=true", "gzip=maybe", "wait=2", "since=2024-01-01T00:00:00.5Z&until=2024-01-01T01:00:00.7Z&wait=true",
                  "since=1970-01-01&until=2030-01-01&format=parquet&wait=true", "since=2024-01-01T00:00:00-23:59&until=2024-01-02&wait=true"]:
            await probe(c, f"export run {q}", "POST", "/export/run?" + q, dialect=d, area=A, timeout=60)
        # pricing
        A = "pricing"
        for q in [{"model": "gpt-4o", "tokens_in": BIG}, {"model": "gpt-4o", "tokens_out": "9223372036854775808"}, {"model": "x" * 200, "provider": "x"}, {"model": "gpt-4o", "at": "9999-12-31T23:59:59-12:00"},
                  {"model": "gpt-4o", "at": "0001-01-01"}, {"model": "%"}, {"model": "gpt-4o", "tokens_in": "1", "tokens_cache_read": BIG, "tokens_reasoning": BIG}]:
            await probe(c, f"quote {str(q)[:70]}", "GET", "/api/pricing/quote", params=q, dialect=d, area=A)
        for q in [{"days": "3650"}, {"days": "0"}, {"limit": BIG}]:
            await probe(c, f"unknown models {q}", "GET", "/api/pricing/unknown-models", params=q, dialect=d, area=A)
        pbody = {"model": "m", "input_per_million": 1, "output_per_million": 2}
        for f in ["model", "provider", "input_per_million", "output_per_million", "cache_read_per_million", "cache_creation_per_million", "reasoning_per_million", "valid_from", "valid_to", "effective_from", "match"]:
            for v in [2**70, -1, 1e308, 1e400 if False else 1e300, "x" * 1000, None, [], "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "%", "NaN"]:
                await probe(c, f"price {f}={str(v)[:30]}", "POST", "/api/pricing/prices", json=dict(pbody, **{f: v}), dialect=d, area=A)
        await probe(c, "prices list", "GET", "/api/pricing/prices", dialect=d, area=A)
        for v in ["0", "-1", BIG, "9223372036854775808"]:
            await probe(c, f"delete price {v}", "DELETE", f"/api/pricing/prices/{v}", dialect=d, area=A)
        await probe(c, "trace after prices", "POST", "/api/events", json=[{"event_type": "llm_call", "run_id": "pr", "agent_name": "ag", "data": {"model": "m", "tokens_in": 2**62, "tokens_out": 2**62}}], dialect=d, area=A)
        await probe(c, "trace after prices 2", "POST", "/api/events", json=[{"event_type": "llm_call", "run_id": "pr", "agent_name": "ag", "data": {"model": "%", "tokens_in": 10}}], dialect=d, area=A)

    await probe(c, "events lone surrogate in url", "GET", "/api/v1/events?property.plan=%ED%A0%80", dialect=d, area="events")


async def test_redos_and_prod(make_app, production_settings, dialect):
    d = dialect
    from tests.auth.helpers import register
    async with make_app() as c:
        r = await c.get("/api/v1/projects/default")
        pid, pk = r.json()["id"], r.json()["public_key"]
        A = "error-grouping-redos"
        await probe(c, "report message 10000 x", "POST", "/api/v1/events", json={"project_key": "default", "message": "x" * 10000}, dialect=d, area=A, timeout=120)
        await probe(c, "report stack long exc value", "POST", "/api/v1/events", json={"project_key": "default", "message": "m", "stack": "ValueError: " + "x" * 199000}, dialect=d, area=A, timeout=120)
        await probe(c, "sentry exception value 100k", "POST", f"/api/{pid}/store/?sentry_key={pk}", json={"exception": {"values": [{"type": "E", "value": "0" * 100000}]}}, dialect=d, area=A, timeout=120)
        await probe(c, "sentry message 60k a.", "POST", f"/api/{pid}/store/?sentry_key={pk}", json={"message": "a." * 30000}, dialect=d, area=A, timeout=120)
        await probe(c, "health during", "GET", "/health", dialect=d, area=A)
    async with make_app(**production_settings) as c:
        A = "auth-users-projects"
        u = await register(c)
        h = u["headers"]
        for body in [{"email": "a" * 10000 + "@x.com", "password": "x" * 20}, {"email": "a@x.com", "password": "x" * 100000}, {"email": "a@[::1", "password": "x" * 20},
                     {"email": 1, "password": 1}, {"email": "\u00e9@\u00e9.com", "password": "y" * 20}, {"email": "a@x.com", "password": "x" * 20, "name": "x" * 100000},
                     {"email": "A@X.COM", "password": "x" * 20}, {"email": "a@x.com", "password": "x" * 20}]:
            await probe(c, f"register {str(body)[:50]}", "POST", "/api/v1/auth/register", json=body, dialect=d, area=A)
        for body in [{"email": u["email"], "password": "x" * 100000}, {"email": "x", "password": 1}, {"email": u["email"].upper(), "password": "wrong"}]:
            await probe(c, f"login {str(body)[:50]}", "POST", "/api/v1/auth/login", json=body, dialect=d, area=A)
        for tok in ["x", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI5OTk5OTk5OTk5OTk5OTk5OTk5OTkiLCJ0eXAiOiJhY2Nlc3MifQ.x", "Bearer", "pk_x", "sk_" + "x" * 5000]:
            await probe(c, f"bad token {tok[:20]}", "GET", "/api/v1/users/me", headers={"authorization": "Bearer " + tok}, dialect=d, area=A)
            await probe(c, f"refresh {tok[:20]}", "POST", "/api/v1/auth/refresh", json={"refresh_token": tok}, dialect=d, area=A)
        for body in [{"name": "x" * 10000}, {"email": "bad"}, {"password": "short"}, {"name": None}, {"email": u["email"]}, [], {"x": 1}]:
            await probe(c, f"put me {str(body)[:50]}", "PUT", "/api/v1/users/me", json=body, headers=h, dialect=d, area=A)
        for body in [{"name": "x" * 10000}, {"name": ""}, {"name": "\u00e9"}, {"name": "p", "slug": "x" * 1000}, {"name": "p", "slug": "Bad Slug"}, {"name": "p", "slug": "1"}, {"name": "p", "slug": BIG}, {"name": 1}]:
            await probe(c, f"create project {str(body)[:50]}", "POST", "/api/v1/projects", json=body, headers=h, dialect=d, area=A)
        r = await c.post("/api/v1/projects", json={"name": "fuzzp"}, headers=h)
        slug = r.json().get("slug", "fuzzp")
        for body in [{"email": "nobody@x.com", "role": "member"}, {"user_id": 2**70, "role": "member"}, {"user_id": -1}, {"email": u["email"], "role": "owner"}, {"role": "x"}]:
            await probe(c, f"add member {str(body)[:50]}", "POST", f"/api/v1/projects/{slug}/members", json=body, headers=h, dialect=d, area=A)
        for uid in ["0", BIG, "9223372036854775808", "abc"]:
            await probe(c, f"patch member {uid}", "PATCH", f"/api/v1/projects/{slug}/members/{uid}", json={"role": "member"}, headers=h, dialect=d, area=A)
            await probe(c, f"del member {uid}", "DELETE", f"/api/v1/projects/{slug}/members/{uid}", headers=h, dialect=d, area=A)
            await probe(c, f"del key {uid}", "DELETE", f"/api/v1/projects/{slug}/keys/{uid}", headers=h, dialect=d, area=A)
        for body in [{"name": "x" * 10000}, {"name": 1}, {"expires_at": "9999-12-31T23:59:59-12:00"}, {"scopes": [1]}]:
            await probe(c, f"create key {str(body)[:50]}", "POST", f"/api/v1/projects/{slug}/keys", json=body, headers=h, dialect=d, area=A)
        for body in [{"name": "x" * 10000}, {"name": ""}, {"slug": "default"}, [], {"name": None}]:
            await probe(c, f"patch project {str(body)[:50]}", "PATCH", f"/api/v1/projects/{slug}", json=body, headers=h, dialect=d, area=A)
        for path in ["/api/v1/projects/" + BIG, "/api/v1/projects/" + BIG + "/members", "/api/v1/projects/9223372036854775808/keys", "/api/v1/events?project=" + BIG, "/api/agents?project=" + BIG]:
            await probe(c, f"prod path {path[:60]}", "GET", path, headers=h, dialect=d, area=A)
        await probe(c, "logout weird", "POST", "/api/v1/auth/logout", json={"refresh_token": "x", "all": "yes"}, headers=h, dialect=d, area=A)
        await probe(c, "delete me weird", "DELETE", "/api/v1/users/me", json={"password": 1}, headers=h, dialect=d, area=A)
        await probe(c, "ws path", "GET", "/api/v1/ws/metrics?token=" + "x" * 100, dialect=d, area=A)


async def test_quick(make_app, dialect, caplog):
    import logging
    caplog.set_level(logging.WARNING)
    d = dialect
    async with make_app() as c:
        await seed(c, d)
        for u in ['/api/v1/sites/default/stats/aggregate?filters=property:a%22b==1', '/api/v1/events?project=2147483648', '/api/v1/events?property.plan=%ED%A0%80',
                  '/api/v1/sites/default/stats/breakdown?property=property:a%22b', '/api/v1/events?property.a%22b=1']:
            r = await probe(c, "quick " + u, "GET", u, dialect=d, area="quick")
            print("QUICK", d, u, r.status_code if r is not None else None, (r.text[:150] if r is not None else ""))
        r = await probe(c, "quick collect siteId 2147483648", "POST", "/collect", json={"siteId": "2147483648"}, dialect=d, area="quick")
        print("QUICK", d, "collect siteId=2147483648", r.status_code if r is not None else None)
        for rec in caplog.records:
            if "database unavailable" in rec.getMessage():
                print("WARNLOG", d, rec.getMessage()[:300])
