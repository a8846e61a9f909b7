import base64
import zlib

import orjson
import pytest

from gati.errors.envelope import (
    EnvelopeError,
    SentryAuthError,
    build_dsn,
    extract_sentry_credentials,
    parse_dsn,
    parse_envelope,
    parse_sentry_auth_header,
    parse_store_body,
    rate_limit_headers,
)
from gati.exceptions import AppError

EVENT = orjson.dumps({"event_id": "9ec79c33ec9942ab8353589fcb2e04dc", "message": "hi"})


def _item(payload: bytes, *, with_length: bool = True, type_: str = "event") -> bytes:
    header: dict[str, object] = {"type": type_}
    if with_length:
        header["length"] = len(payload)
    return orjson.dumps(header) + b"\n" + payload


def test_envelope_with_lengths_and_trailing_newline() -> None:
    body = b'{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}\n' + _item(EVENT) + b"\n"
    env = parse_envelope(body)
    assert env.event_id == "9ec79c33ec9942ab8353589fcb2e04dc"
    assert [i.type for i in env.items] == ["event"]
    assert env.items[0].json_object()["message"] == "hi"


@pytest.mark.parametrize("trailer", [b"", b"\n", b"\n\n", b"\r\n"])
def test_envelope_without_lengths_any_trailer(trailer: bytes) -> None:
    body = (
        b"{}\n"
        + _item(EVENT, with_length=False)
        + b"\n"
        + _item(b"{}", with_length=False, type_="session")
        + trailer
    )
    env = parse_envelope(body)
    assert [i.type for i in env.items] == ["event", "session"]
    assert env.items[0].json_object()["message"] == "hi"
    assert env.error_items() == [env.items[0]]


def test_envelope_length_payload_may_contain_newlines() -> None:
    attachment = b"line1\nline2\n"
    body = b"{}\n" + _item(attachment, type_="attachment") + b"\n" + _item(EVENT)
    env = parse_envelope(body)
    assert env.items[0].payload == attachment
    assert env.items[1].json_object()["message"] == "hi"


def test_envelope_zero_length_item_and_mixed() -> None:
    body = b'{"dsn":"https://pk@h/3"}\n{"type":"attachment","length":0}\n\n' + _item(
        EVENT, with_length=False
    )
    env = parse_envelope(body)
    assert env.dsn == "https://pk@h/3"
    assert env.items[0].payload == b""
    assert env.items[1].type == "event"


def test_header_only_envelope_is_valid() -> None:
    assert parse_envelope(b"{}").items == []
    assert parse_envelope(b"{}\n").items == []


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"not json\n", "envelope header (line 1) is not valid JSON"),
        (b"[1,2]\n", "must be a JSON object"),
        (b"{}\nnope\n{}", "item 0 header is not valid JSON"),
        (b'{}\n{"length":2}\n{}', "'type' must be a non-empty string"),
        (b'{}\n{"type":"event","length":100}\n{"a":1}', "length 100 exceeds the 7 bytes left"),
        (b'{}\n{"type":"event","length":3}\n{"a":1}\n', "no newline after the 3-byte payload"),
        (b'{}\n{"type":"event","length":-1}\n{}', "non-negative integer"),
        (b'{}\n{"type":"event","length":"2"}\n{}', "non-negative integer"),
        (b'{}\n{"type":"event","length":true}\n{}', "non-negative integer"),
        (b'{}\n{"type":"event"}', "truncated, no payload"),
    ],
)
def test_malformed_envelopes_name_the_problem(body: bytes, fragment: str) -> None:
    with pytest.raises(EnvelopeError) as info:
        parse_envelope(body)
    assert fragment in info.value.detail
    assert info.value.status == 400


def test_bad_event_payload_json_is_reported_when_read() -> None:
    env = parse_envelope(b'{}\n{"type":"event"}\n{not json\n')
    with pytest.raises(EnvelopeError, match=r"item 0 \(event\) payload is not valid JSON"):
        env.items[0].json_object()
    env = parse_envelope(b'{}\n{"type":"event"}\n[1]\n')
    with pytest.raises(EnvelopeError, match="must be a JSON object"):
        env.items[0].json_object()


def test_too_many_items() -> None:
    body = b"{}\n" + b"\n".join(_item(b"{}", type_="session") for _ in range(5))
    assert len(parse_envelope(body, max_items=5).items) == 5
    with pytest.raises(EnvelopeError, match="more than 4 items"):
        parse_envelope(body, max_items=4)


def test_store_body_json_and_legacy_base64_zlib() -> None:
    assert parse_store_body(EVENT, max_decompressed_bytes=1000)["message"] == "hi"
    legacy = base64.b64encode(zlib.compress(EVENT))
    assert parse_store_body(legacy, max_decompressed_bytes=1000)["message"] == "hi"
    with pytest.raises(EnvelopeError, match="store body is empty"):
        parse_store_body(b"  ", max_decompressed_bytes=1000)
    with pytest.raises(EnvelopeError, match="store body is not valid JSON"):
        parse_store_body(b"%%%", max_decompressed_bytes=1000)
    with pytest.raises(EnvelopeError, match="not zlib-compressed"):
        parse_store_body(base64.b64encode(b"plain"), max_decompressed_bytes=1000)
    with pytest.raises(EnvelopeError, match="must be a JSON object"):
        parse_store_body(b"[]", max_decompressed_bytes=1000)
    bomb = base64.b64encode(zlib.compress(b"{" + b" " * 1_000_000 + b"}"))
    with pytest.raises(AppError) as info:
        parse_store_body(bomb, max_decompressed_bytes=10_000)
    assert info.value.status == 413


def test_dsn_round_trip() -> None:
    dsn = parse_dsn("https://abc123@errors.example.com:8443/sub/path/42")
    assert (dsn.public_key, dsn.host, dsn.path_prefix, dsn.project_id) == (
        "abc123",
        "errors.example.com:8443",
        "/sub/path",
        "42",
    )
    assert str(dsn) == "https://abc123@errors.example.com:8443/sub/path/42"
    assert parse_dsn("http://k:secret@h/7").public_key == "k"
    assert build_dsn(base_url="http://localhost:8000/", public_key="pk", project_id=5) == (
        "http://pk@localhost:8000/5"
    )
    for bad in ("ftp://k@h/1", "http://h/1", "http://k@h/", "nonsense"):
        with pytest.raises(SentryAuthError):
            parse_dsn(bad)


def test_auth_header_parsing() -> None:
    pairs = parse_sentry_auth_header(
        "Sentry sentry_version=7, sentry_client=sentry.python/2.0, sentry_key=abc,sentry_secret="
    )
    assert pairs == {
        "sentry_version": "7",
        "sentry_client": "sentry.python/2.0",
        "sentry_key": "abc",
    }
    assert parse_sentry_auth_header("sentry_key=xyz")["sentry_key"] == "xyz"


def test_credentials_precedence_and_sources() -> None:
    creds = extract_sentry_credentials(
        headers={"x-sentry-auth": "Sentry sentry_key=fromheader"},
        query={"sentry_key": "fromquery"},
        envelope_dsn="http://fromdsn@h/1",
    )
    assert creds is not None and (creds.public_key, creds.source) == ("fromheader", "x-sentry-auth")
    creds = extract_sentry_credentials(headers={}, query={"sentry_key": "q"}, envelope_dsn=None)
    assert creds is not None and creds.source == "query"
    creds = extract_sentry_credentials(headers={}, query={}, envelope_dsn="http://d@h/9")
    assert creds is not None and (creds.public_key, creds.dsn_project_id) == ("d", "9")
    creds = extract_sentry_credentials(
        headers={"authorization": "Sentry sentry_key=a1"}, query={}, envelope_dsn=None
    )
    assert creds is not None and creds.source == "authorization"
    # a bearer token is not Sentry auth
    assert (
        extract_sentry_credentials(
            headers={"authorization": "Bearer x"}, query={}, envelope_dsn=None
        )
        is None
    )
    with pytest.raises(SentryAuthError, match="no sentry_key"):
        extract_sentry_credentials(
            headers={"x-sentry-auth": "Sentry sentry_version=7"}, query={}, envelope_dsn=None
        )


def test_rate_limit_headers() -> None:
    assert rate_limit_headers(retry_after_seconds=60) == {
        "Retry-After": "60",
        "X-Sentry-Rate-Limits": "60::project",
    }
    headers = rate_limit_headers(
        retry_after_seconds=0.2,  # type: ignore[arg-type]
        categories=("error", "default"),
        scope="key",
        reason_code="project_quota",
    )
    assert headers["X-Sentry-Rate-Limits"] == "1:error;default:key:project_quota"
