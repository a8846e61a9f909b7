"""The Sentry endpoints over HTTP (ASGI), on SQLite and PostgreSQL: encodings, auth, malformed
bodies, bombs, skipped item types, rate limits. Every refusal stores nothing."""

from __future__ import annotations

import asyncio
import gzip
import uuid
import zlib
from collections.abc import Callable
from typing import Any

import brotli
import orjson
import pytest
import zstandard

from gati.db.engine import Database
from tests.errors.helpers import auth, count_events, count_issues, envelope, sentry_event


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


ENCODINGS: dict[str, Callable[[bytes], bytes]] = {
    "identity": lambda b: b,
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "deflate-raw": _raw_deflate,
    "br": brotli.compress,
    "zstd": zstandard.ZstdCompressor().compress,
}


@pytest.mark.parametrize("encoding", list(ENCODINGS))
async def test_envelope_in_every_encoding_is_stored(
    encoding: str, make_app: Any, make_project: Any, db: Database
) -> None:
    project = await make_project()
    event = sentry_event()
    body = ENCODINGS[encoding](envelope(event))
    headers = auth(project["public_key"])
    if encoding != "identity":
        headers["Content-Encoding"] = "deflate" if encoding == "deflate-raw" else encoding
    async with make_app() as client:
        r = await client.post(f"/api/{project['id']}/envelope/", content=body, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json() == {"id": event["event_id"]}
        stored = await client.get(f"/api/v1/error-events/{event['event_id']}")
    assert stored.status_code == 200
    data = stored.json()
    assert data["exception"] == {"type": "ValueError", "value": "bad input 42"}
    assert data["environment"] == "production" and data["release"] == "shop@1.0.0"
    assert [f["function"] for f in data["frames"]] == ["checkout", "total"]
    assert await count_events(db, project["id"]) == 1


async def test_store_endpoint_and_auth_sources(
    make_app: Any, make_project: Any, db: Database
) -> None:
    project = await make_project()
    pid, key = project["id"], project["public_key"]
    async with make_app() as client:
        # X-Sentry-Auth on /store/
        r = await client.post(
            f"/api/{pid}/store/", content=orjson.dumps(sentry_event()), headers=auth(key)
        )
        assert r.status_code == 200, r.text
        # sentry_key query parameter
        r = await client.post(
            f"/api/{pid}/envelope/?sentry_key={key}&sentry_version=7",
            content=envelope(sentry_event()),
        )
        assert r.status_code == 200, r.text
        # dsn in the envelope header (browser SDKs through a tunnel), no slash at the end
        body = envelope(sentry_event(), header={"dsn": f"https://{key}@errors.example.com/{pid}"})
        r = await client.post(f"/api/{pid}/envelope", content=body)
        assert r.status_code == 200, r.text
        # secret keys work as sentry_key too
        r = await client.post(
            f"/api/{pid}/envelope/",
            content=envelope(sentry_event()),
            headers=auth(project["secret_key"]),
        )
        assert r.status_code == 200, r.text
    assert await count_events(db, pid) == 4


async def test_wrong_keys_and_other_projects_are_refused(
    make_app: Any, make_project: Any, db: Database
) -> None:
    mine = await make_project("mine")
    other = await make_project("other")
    event = sentry_event()
    async with make_app() as client:
        cases = [
            (f"/api/{mine['id']}/envelope/", {}, envelope(event), 401, "invalid_sentry_auth"),
            (
                f"/api/{mine['id']}/envelope/",
                auth("pk_doesnotexist"),
                envelope(event),
                401,
                "invalid_sentry_auth",
            ),
            (
                f"/api/{mine['id']}/envelope/",
                {"X-Sentry-Auth": "Sentry sentry_version=7"},
                envelope(event),
                401,
                "invalid_sentry_auth",
            ),
            # another project's id with this project's key
            (
                f"/api/{other['id']}/envelope/",
                auth(mine["public_key"]),
                envelope(event),
                403,
                "project_mismatch",
            ),
            (
                f"/api/{other['id']}/store/",
                auth(mine["public_key"]),
                orjson.dumps(event),
                403,
                "project_mismatch",
            ),
            # the envelope's DSN names a different project than the URL
            (
                f"/api/{mine['id']}/envelope/",
                {},
                envelope(event, header={"dsn": f"http://{mine['public_key']}@h/{other['id']}"}),
                403,
                "project_mismatch",
            ),
            (
                "/api/not-a-number/envelope/",
                auth(mine["public_key"]),
                envelope(event),
                404,
                "project_not_found",
            ),
        ]
        for path, headers, body, status, code in cases:
            r = await client.post(path, content=body, headers=headers)
            assert r.status_code == status, (path, headers, r.text)
            assert r.json()["error"] == code
    assert await count_events(db) == 0
    assert await count_issues(db) == 0


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (
            b'{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}\n{"type":"event","length":500}\n{"message":"x"}\n',
            "exceeds",
        ),
        (b'{}\n{"type":"event","length":5}\n{"message":"x"}\n', "no newline after"),
        (b'{}\n{"type":"event"}\n{"message": \n', "not valid JSON"),
        (b"{not json}\n", "envelope header"),
        (b"", "empty"),
        (b'{}\n{"type":"event"}\n["a list"]\n', "must be a JSON object"),
        (b'{}\n{"type":"event"}\n{"event_id":"zzz","message":"x"}\n', "not a UUID"),
    ],
)
async def test_malformed_envelopes_are_400_and_store_nothing(
    body: bytes, fragment: str, make_app: Any, make_project: Any, db: Database
) -> None:
    project = await make_project()
    # a valid event first in the same envelope must not be stored either
    good = orjson.dumps(sentry_event())
    if body.startswith(b"{}\n"):
        body = (
            b"{}\n"
            + orjson.dumps({"type": "event", "length": len(good)})
            + b"\n"
            + good
            + b"\n"
            + body[3:]
        )
    async with make_app() as client:
        r = await client.post(
            f"/api/{project['id']}/envelope/", content=body, headers=auth(project["public_key"])
        )
    assert r.status_code == 400, r.text
    assert fragment in r.json()["detail"]
    assert await count_events(db) == 0


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
async def test_compression_bombs_are_413(
    encoding: str, make_app: Any, make_project: Any, db: Database
) -> None:
    project = await make_project()
    # 64 MiB of zeros after a valid-looking start; the server allows 1 MiB decompressed
    payload = envelope(sentry_event()) + b"\0" * (64 * 1024 * 1024)
    compressed = ENCODINGS[encoding](payload)
    assert len(compressed) < 1024 * 1024
    async with make_app(max_decompressed_body_mb=1) as client:
        r = await client.post(
            f"/api/{project['id']}/envelope/",
            content=compressed,
            headers={**auth(project["public_key"]), "Content-Encoding": encoding},
        )
    assert r.status_code == 413, r.text
    assert await count_events(db) == 0


async def test_garbage_compression_and_oversized_bodies(
    make_app: Any, make_project: Any, db: Database
) -> None:
    project = await make_project()
    headers = auth(project["public_key"])
    async with make_app(max_request_body_mb=0.01) as client:
        r = await client.post(
            f"/api/{project['id']}/envelope/",
            content=b"not gzip at all",
            headers={**headers, "Content-Encoding": "gzip"},
        )
        assert r.status_code == 400 and r.json()["error"] == "bad_compression"
        truncated = gzip.compress(envelope(sentry_event()))[:-12]
        r = await client.post(
            f"/api/{project['id']}/envelope/",
            content=truncated,
            headers={**headers, "Content-Encoding": "gzip"},
        )
        assert r.status_code == 400, r.text
        r = await client.post(
            f"/api/{project['id']}/envelope/", content=b"x" * 20_000, headers=headers
        )
        assert r.status_code == 413
        big_event = sentry_event(extra={"blob": "y" * 5000})
        r = await client.post(
            f"/api/{project['id']}/envelope/",
            content=gzip.compress(envelope(big_event)),
            headers={**headers, "Content-Encoding": "gzip"},
        )
        assert r.status_code == 200  # 10 KB limit is on the compressed body
    async with make_app(errors_max_event_bytes=2000) as client:
        r = await client.post(
            f"/api/{project['id']}/envelope/", content=envelope(big_event), headers=headers
        )
        assert r.status_code == 413 and r.json()["error"] == "event_too_large"
    assert await count_events(db) == 1


async def test_other_item_types_are_accepted_and_skipped(
    make_app: Any, make_project: Any, db: Database
) -> None:
    project = await make_project()
    event = sentry_event()
    session = b'{"type":"session"}\n{"sid":"x","status":"ok"}\n'
    report = orjson.dumps({"timestamp": 1, "discarded_events": []})
    client_report = (
        orjson.dumps({"type": "client_report", "length": len(report)}) + b"\n" + report + b"\n"
    )
    attachment = b'{"type":"attachment","length":6,"filename":"a.txt"}\nhello\n\n'
    transaction = b'{"type":"transaction"}\n{"type":"transaction","spans":[]}\n'
    unknown = b'{"type":"something_new"}\n\x00\x01binary\n'
    extra = session + client_report + attachment + transaction + unknown
    async with make_app() as client:
        r = await client.post(
            f"/api/{project['id']}/envelope/",
            content=envelope(event, extra_items=extra),
            headers=auth(project["public_key"]),
        )
        assert r.status_code == 200, r.text
        # an envelope with no event at all: accepted, nothing stored
        only_sessions = b'{"sent_at":"2024-01-01T00:00:00Z"}\n' + session
        r = await client.post(
            f"/api/{project['id']}/envelope/",
            content=only_sessions,
            headers=auth(project["public_key"]),
        )
        assert r.status_code == 200 and r.json() == {}
        # a transaction sent to /store/ is skipped too
        r = await client.post(
            f"/api/{project['id']}/store/",
            content=orjson.dumps({"type": "transaction", "event_id": uuid.uuid4().hex}),
            headers=auth(project["public_key"]),
        )
        assert r.status_code == 200
    assert await count_events(db, project["id"]) == 1


async def test_rate_limit_answers_429_with_sentry_headers(
    make_app: Any, make_project: Any, db: Database
) -> None:
    limited = await make_project("limited", settings={"error_rate_limit": "2/minute"})
    unlimited = await make_project("free", settings={"error_rate_limit": "off"})
    async with make_app() as client:
        statuses = []
        for _ in range(3):
            r = await client.post(
                f"/api/{limited['id']}/envelope/",
                content=envelope(sentry_event()),
                headers=auth(limited["public_key"]),
            )
            statuses.append(r.status_code)
        assert statuses == [200, 200, 429]
        assert int(r.headers["Retry-After"]) >= 1
        limits = r.headers["X-Sentry-Rate-Limits"]
        seconds, categories, scope, reason = limits.split(":")
        assert int(seconds) == int(r.headers["Retry-After"])
        assert (
            categories == "error;default" and scope == "project" and reason == "project_rate_limit"
        )
        for _ in range(5):
            r = await client.post(
                f"/api/{unlimited['id']}/envelope/",
                content=envelope(sentry_event()),
                headers=auth(unlimited["public_key"]),
            )
            assert r.status_code == 200
    assert await count_events(db, limited["id"]) == 2
    assert await count_events(db, unlimited["id"]) == 5


async def test_retried_event_is_stored_once(make_app: Any, make_project: Any, db: Database) -> None:
    project = await make_project()
    event = sentry_event()
    async with make_app() as client:
        for _ in range(3):
            r = await client.post(
                f"/api/{project['id']}/envelope/",
                content=envelope(event),
                headers=auth(project["public_key"]),
            )
            assert r.status_code == 200 and r.json()["id"] == event["event_id"]
        issues = (await client.get(f"/api/v1/projects/{project['id']}/issues")).json()
    assert await count_events(db, project["id"]) == 1
    assert [i["event_count"] for i in issues["items"]] == [1]


async def test_nul_characters_are_stored_without_them(make_app: Any, make_project: Any) -> None:
    project = await make_project()
    event = sentry_event(message="nul\u0000here", tags={"k\u0000": "v\u0000"})
    async with make_app() as client:
        r = await client.post(
            f"/api/{project['id']}/envelope/",
            content=envelope(event),
            headers=auth(project["public_key"]),
        )
        assert r.status_code == 200, r.text
        stored = (await client.get(f"/api/v1/error-events/{event['event_id']}")).json()
    assert stored["message"] == "nulhere" and stored["tags"] == {"k": "v"}


async def test_concurrent_envelopes_share_one_key_lookup(
    make_app: Any, make_project: Any, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a DSN key is not cached (first use, or its entry expired), the envelopes in flight
    with it share one database lookup instead of one each."""
    from gati.errors import service

    project = await make_project()
    looked_up: list[str] = []
    real = service.projects_repo.get_by_public_key

    async def counting(session: Any, key: str) -> Any:
        looked_up.append(key)
        return await real(session, key)

    monkeypatch.setattr(service.projects_repo, "get_by_public_key", counting)
    async with make_app() as client:

        async def burst() -> list[int]:
            answers = await asyncio.gather(
                *(
                    client.post(
                        f"/api/{project['id']}/envelope/",
                        content=envelope(sentry_event(event_id=uuid.uuid4().hex)),
                        headers=auth(project["public_key"]),
                    )
                    for _ in range(12)
                )
            )
            return [answer.status_code for answer in answers]

        assert await burst() == [200] * 12
        assert looked_up == [project["public_key"]]
        runtime = client.app.state.errors  # type: ignore[attr-defined]
        runtime.forget_projects()  # as after a settings change: the next burst looks up again
        assert await burst() == [200] * 12
        assert looked_up == [project["public_key"]] * 2
    assert await count_events(db, project["id"]) == 24
