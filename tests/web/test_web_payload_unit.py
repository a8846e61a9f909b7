from datetime import UTC, datetime

import orjson
import pytest

from gati.exceptions import AppError
from gati.web.payload import (
    MAX_COLLECT_BODY,
    parse_collect_body,
    parse_collect_query,
    query_to_event,
)

NOW = datetime(2025, 6, 22, 12, 30, tzinfo=UTC)
SEED_EVENT = {
    "eventType": "pageview",
    "sessionId": "sess_abc123",
    "visitorId": "vis_xyz789",
    "siteId": "example-com",
    "timestamp": "2025-06-22T12:00:00Z",
    "url": "https://example.com/page",
    "path": "/page",
    "attribution": {"utmParams": {"utm_source": "google", "utm_medium": "cpc"}},
}


def errors_of(exc: pytest.ExceptionInfo[AppError]) -> dict[str, str]:
    return {e["field"]: e["message"] for e in exc.value.extra["errors"]}


@pytest.mark.parametrize("content_type", ["application/json", "text/plain;charset=UTF-8", None])
def test_seed_event_parses(content_type: str | None) -> None:
    event = parse_collect_body(orjson.dumps(SEED_EVENT), content_type, now=NOW)
    assert event.event_type == "pageview"
    assert event.site_id == "example-com"
    assert event.session_id == "sess_abc123"
    assert event.visitor_id == "vis_xyz789"
    assert event.timestamp == datetime(2025, 6, 22, 12, 0, tzinfo=UTC)
    assert event.path == "/page"
    assert event.utm_params == {"utm_source": "google", "utm_medium": "cpc"}
    assert event.raw == SEED_EVENT


def test_seed_curl_test_event_and_defaults() -> None:
    body = (
        b'{"eventType": "test", "sessionId": "test_session", "visitorId": "test_visitor",'
        b' "siteId": "localhost"}'
    )
    event = parse_collect_body(body, "application/json", now=NOW)
    assert (event.event_type, event.timestamp, event.url, event.path) == ("test", None, None, None)
    minimal = parse_collect_body(b'{"siteId": "s", "url": "https://a.io/x/y?q=1"}', None)
    assert minimal.event_type == "pageview"
    assert minimal.path == "/x/y"


def test_properties_and_props_alias() -> None:
    event = parse_collect_body(
        b'{"siteId":"s","eventType":"signup","props":{"plan":"pro","seats":3,"trial":true,'
        b'"coupon":null}}',
        None,
    )
    assert event.properties == {"plan": "pro", "seats": 3, "trial": True, "coupon": None}


def test_timestamp_forms() -> None:
    offset = parse_collect_body(b'{"siteId":"s","timestamp":"2025-06-22T14:00:00+02:00"}', None)
    assert offset.timestamp == datetime(2025, 6, 22, 12, 0, tzinfo=UTC)
    naive = parse_collect_body(b'{"siteId":"s","timestamp":"2025-06-22T12:00:00"}', None)
    assert naive.timestamp == datetime(2025, 6, 22, 12, 0, tzinfo=UTC)
    epoch = parse_collect_body(b'{"siteId":"s","timestamp":1750593600}', None)
    assert epoch.timestamp == datetime(2025, 6, 22, 12, 0, tzinfo=UTC)


def test_every_bad_field_is_named() -> None:
    with pytest.raises(AppError) as exc:
        parse_collect_body(
            orjson.dumps(
                {
                    "eventType": "",
                    "timestamp": "yesterday",
                    "url": "x" * 3000,
                    "properties": {"a": [1], **{f"k{i}": i for i in range(40)}},
                }
            ),
            "application/json",
        )
    assert exc.value.status == 422 and exc.value.code == "validation_error"
    fields = errors_of(exc)
    assert set(fields) == {"eventType", "siteId", "timestamp", "url", "properties"}
    assert "at most 30" in fields["properties"]


def test_nested_property_value_refused() -> None:
    with pytest.raises(AppError) as exc:
        parse_collect_body(b'{"siteId":"s","properties":{"a":{"b":1}}}', None)
    assert "must be a string, number, boolean or null" in errors_of(exc)["properties"]


def test_url_must_be_absolute_http() -> None:
    with pytest.raises(AppError) as exc:
        parse_collect_body(b'{"siteId":"s","url":"javascript:alert(1)"}', None)
    assert errors_of(exc) == {"url": "must be an absolute http(s) URL"}


def test_future_timestamp_refused() -> None:
    with pytest.raises(AppError) as exc:
        parse_collect_body(b'{"siteId":"s","timestamp":"2025-06-22T14:00:00Z"}', None, now=NOW)
    assert "future" in errors_of(exc)["timestamp"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"", "application/json", 400, "empty_body"),
        (b"{not json", "text/plain", 400, "malformed_json"),
        (b"[1,2]", "application/json", 422, "validation_error"),
        (b'"x"', "application/json", 422, "validation_error"),
        (b"{}", "application/xml", 415, "unsupported_media_type"),
        (b"{" + b" " * MAX_COLLECT_BODY + b"}", "application/json", 413, "payload_too_large"),
    ],
)
def test_malformed_bodies(body: bytes, content_type: str, status: int, code: str) -> None:
    with pytest.raises(AppError) as exc:
        parse_collect_body(body, content_type)
    assert (exc.value.status, exc.value.code) == (status, code)


def test_query_parameters() -> None:
    params = [
        ("siteId", "s"),
        ("url", "https://a.io/landing?utm_source=x"),
        ("utm_source", "newsletter"),
        ("utm_campaign", "june"),
        ("prop_plan", "pro"),
        ("properties", '{"seats": 2}'),
        ("siteId", "ignored-second-value"),
        ("screen", "1280x720"),
    ]
    event = parse_collect_query(params)
    assert event.site_id == "s"
    assert event.event_type == "pageview"
    assert event.utm_params == {"utm_source": "newsletter", "utm_campaign": "june"}
    assert event.properties == {"plan": "pro", "seats": 2}
    assert event.raw["screen"] == "1280x720"
    assert event.path == "/landing"


def test_query_bad_properties_json() -> None:
    with pytest.raises(AppError) as exc:
        query_to_event([("siteId", "s"), ("properties", "{nope")])
    assert errors_of(exc) == {"properties": "must be a JSON object when sent as a parameter"}
