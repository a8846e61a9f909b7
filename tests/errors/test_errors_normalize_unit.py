from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope as SdkEnvelope
from sentry_sdk.transport import Transport

from gati.errors.envelope import parse_envelope
from gati.errors.normalize import (
    InvalidEventError,
    normalize_error_report,
    normalize_event_id,
    normalize_level,
    normalize_sentry_event,
    normalize_tags,
    parse_timestamp,
)

NOW = datetime(2024, 1, 15, 12, 0, 0, tzinfo=UTC)


class _Capture(Transport):
    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.bodies: list[bytes] = []

    def capture_envelope(self, envelope: SdkEnvelope) -> None:
        self.bodies.append(envelope.serialize())


def _sdk_events() -> list[dict[str, Any]]:
    """Real sentry-sdk events, serialized by the SDK and parsed by our envelope parser."""
    transport = _Capture()
    client = sentry_sdk.Client(
        dsn="http://pk@localhost:1/1",
        transport=transport,
        release="shop@1.2.3",
        environment="staging",
        send_default_pii=True,
        default_integrations=False,
        max_breadcrumbs=10,
    )
    with sentry_sdk.isolation_scope() as scope:
        scope.set_client(client)
        sentry_sdk.set_tag("region", "eu")
        sentry_sdk.set_user({"id": "u1", "email": "a@example.com"})
        sentry_sdk.add_breadcrumb(message="clicked", category="ui")

        def divide(x: int) -> float:
            return 1 / x

        try:
            divide(0)
        except ZeroDivisionError as exc:
            sentry_sdk.capture_exception(exc)
        sentry_sdk.capture_message("cache miss for key 42", level="warning")
    client.flush()
    events = []
    for body in transport.bodies:
        env = parse_envelope(body)
        events.extend(item.json_object() for item in env.error_items())
    return events


def test_real_sdk_exception_and_message() -> None:
    exc_event, msg_event = _sdk_events()
    n = normalize_sentry_event(exc_event, received_at=datetime.now(UTC))
    assert n.source == "sentry" and n.platform == "python"
    assert n.exception_type == "ZeroDivisionError"
    assert n.exception_value == "division by zero"
    assert n.title == "ZeroDivisionError: division by zero"
    assert n.frames[-1].function == "divide" and n.frames[-1].in_app
    assert n.culprit.endswith("in divide")
    assert n.environment == "staging" and n.release == "shop@1.2.3"
    assert n.tags == {"region": "eu"}
    assert n.user == {"id": "u1", "email": "a@example.com"}
    assert [b["message"] for b in n.breadcrumbs] == ["clicked"]
    assert n.event_id == exc_event["event_id"]
    assert n.level == "error"
    assert n.grouping_components[0] == "type:ZeroDivisionError"

    m = normalize_sentry_event(msg_event, received_at=datetime.now(UTC))
    assert m.message == "cache miss for key 42" and m.level == "warning"
    assert m.exception_type is None and m.title == "cache miss for key 42"
    assert m.grouping_components == ["type:", "message:cache miss for key <num>"]


def test_sentry_event_shapes() -> None:
    event = {
        "event_id": "9EC79C33-EC99-42AB-8353-589FCB2E04DC",
        "timestamp": 1705320000.5,
        "level": "warn",
        "platform": "javascript",
        "logentry": {
            "message": "user %s failed",
            "params": ["bob"],
            "formatted": "user bob failed",
        },
        "exception": [
            {"type": "Inner", "value": "first"},
            {
                "type": "TypeError",
                "value": "x is undefined",
                "stacktrace": {
                    "frames": [
                        {"filename": "/node_modules/lib.js", "function": "lib", "lineno": 1},
                        {
                            "abs_path": "http://h/app.js",
                            "filename": "/app.js",
                            "function": "go",
                            "lineno": "7",
                            "in_app": True,
                        },
                        "junk",
                    ]
                },
            },
        ],
        "request": {"method": "post", "url": "http://h/checkout", "query_string": "a=1"},
        "tags": [["browser", "Firefox"], ["bad"], ["n", 3]],
        "breadcrumbs": [{"message": "a"}, "junk"],
        "fingerprint": ["{{ default }}", "checkout"],
        "transaction": "/checkout",
        "user": "not-a-dict",
    }
    n = normalize_sentry_event(event, received_at=NOW)
    assert n.event_id == "9ec79c33ec9942ab8353589fcb2e04dc"
    assert n.timestamp == datetime(2024, 1, 15, 12, 0, 0, 500000, tzinfo=UTC)
    assert n.level == "warning"
    assert n.message == "user bob failed"
    assert n.exception_type == "TypeError"
    assert [f.function for f in n.frames] == ["lib", "go"]
    assert [f.in_app for f in n.frames] == [False, True]
    assert n.frames[1].lineno == 7
    assert n.request_method == "POST" and n.request_url == "http://h/checkout?a=1"
    assert n.tags == {"browser": "Firefox", "n": "3"}
    assert n.breadcrumbs == [{"message": "a"}]
    assert n.culprit == "/checkout"
    assert n.user is None
    assert n.grouping_components[-1] == "custom:checkout"


def test_message_template_groups_formatted_messages() -> None:
    a = normalize_sentry_event(
        {"logentry": {"message": "user %s failed", "formatted": "user bob failed"}}, received_at=NOW
    )
    b = normalize_sentry_event(
        {"logentry": {"message": "user %s failed", "formatted": "user alice failed"}},
        received_at=NOW,
    )
    assert a.fingerprint == b.fingerprint
    assert a.message == "user bob failed"


def test_threads_and_top_level_stacktrace_are_used_when_exception_has_none() -> None:
    frames = {"frames": [{"module": "app.jobs", "function": "run", "filename": "app/jobs.py"}]}
    n = normalize_sentry_event(
        {
            "exception": {"values": [{"type": "Boom", "value": "x", "thread_id": 1}]},
            "threads": {"values": [{"id": 1, "crashed": True, "stacktrace": frames}]},
        },
        received_at=NOW,
    )
    assert [f.function for f in n.frames] == ["run"] and n.frames[0].in_app
    m = normalize_sentry_event({"message": "hi", "stacktrace": frames}, received_at=NOW)
    assert m.frames[0].module == "app.jobs"


def test_timestamps_are_clamped_and_defaulted() -> None:
    future = (NOW + timedelta(hours=1)).isoformat()
    assert (
        normalize_sentry_event({"message": "x", "timestamp": future}, received_at=NOW).timestamp
        == NOW
    )
    assert normalize_sentry_event({"message": "x"}, received_at=NOW).timestamp == NOW
    assert (
        normalize_sentry_event({"message": "x", "timestamp": "garbage"}, received_at=NOW).timestamp
        == NOW
    )
    assert parse_timestamp("2024-01-15T12:00:00Z") == NOW
    assert parse_timestamp("2024-01-15T13:00:00+01:00") == NOW
    assert parse_timestamp("2024-01-15T12:00:00") == NOW
    assert parse_timestamp("1705320000") == NOW
    assert parse_timestamp(True) is None
    assert parse_timestamp(1e30) is None


def test_event_ids_levels_tags() -> None:
    assert len(normalize_event_id(None)) == 32
    assert (
        normalize_event_id("9ec79c33ec9942ab8353589fcb2e04dc") == "9ec79c33ec9942ab8353589fcb2e04dc"
    )
    with pytest.raises(InvalidEventError, match="is not a UUID"):
        normalize_event_id("nope")
    with pytest.raises(InvalidEventError, match="must be a string"):
        normalize_event_id(12)
    assert normalize_level("CRITICAL") == "fatal"
    assert normalize_level("bogus") == "error"
    assert normalize_level(None, default="info") == "info"
    assert normalize_tags({"a": 1, "": "x", "b": None, "c": {"x": 1}}) == {"a": "1"}
    with pytest.raises(InvalidEventError, match="no type or value"):
        normalize_sentry_event({"exception": {"values": [{"stacktrace": {}}]}}, received_at=NOW)


def test_seed_report_with_javascript_stack() -> None:
    report = {
        "project_key": "my-project",
        "message": "Cannot read properties of undefined (reading 'id')",
        "stack": "TypeError: Cannot read properties of undefined (reading 'id')\n"
        "    at getUser (/srv/api/users.js:10:15)\n"
        "    at Layer.handle (/srv/node_modules/express/lib/router/layer.js:95:5)",
        "method": "get",
        "path": "/api/users/:id",
        "status_code": 500,
        "timestamp": "2024-01-15T12:00:00Z",
    }
    n = normalize_error_report(report, received_at=NOW + timedelta(seconds=5))
    assert n.source == "report" and n.platform == "javascript"
    assert n.timestamp == NOW
    assert n.exception_type == "TypeError"
    assert n.exception_value == report["message"]
    assert n.title == "TypeError: Cannot read properties of undefined (reading 'id')"
    assert n.request_method == "GET" and n.request_url == "/api/users/:id"
    assert n.transaction == "GET /api/users/:id" and n.culprit == "GET /api/users/:id"
    assert n.status_code == 500 and n.tags["status_code"] == "500"
    assert [f.function for f in n.frames] == ["Layer.handle", "getUser"]
    assert n.grouping_components == ["type:TypeError", "frame:srv/api/users.js:getUser"]
    assert n.payload["project_key"] == "my-project"
    # same code path, different line and message text: same issue
    other = dict(report, message="other text", stack=report["stack"].replace("10:15", "12:1"))
    assert normalize_error_report(other, received_at=NOW).fingerprint == n.fingerprint


def test_seed_report_python_stack_and_no_stack() -> None:
    py = normalize_error_report(
        {
            "message": "user 7 not found",
            "stack": 'Traceback (most recent call last):\n  File "/app/views.py", line 3, in get\n'
            "LookupError: user 7 not found",
            "timestamp": datetime(2024, 1, 15, 12, 0),
        },
        received_at=NOW,
    )
    assert py.platform == "python" and py.exception_type == "LookupError"
    assert py.timestamp == NOW and py.payload["timestamp"] == "2024-01-15T12:00:00"
    plain_a = normalize_error_report({"message": "Payment 123 declined"}, received_at=NOW)
    plain_b = normalize_error_report({"message": "Payment 456 declined"}, received_at=NOW)
    assert plain_a.exception_type is None and plain_a.title == "Payment 123 declined"
    assert plain_a.fingerprint == plain_b.fingerprint
    assert plain_a.timestamp == NOW and plain_a.culprit == ""
    unknown = normalize_error_report(
        {"message": "boom", "stack": "    at handler (/srv/a.js:1:1)"}, received_at=NOW
    )
    assert unknown.exception_type == "Error"
    with pytest.raises(InvalidEventError, match="message"):
        normalize_error_report({"message": "  "}, received_at=NOW)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-12-07T03:50:00.250000+00:00", datetime(2026, 12, 7, 3, 50, 0, 250000, UTC)),
        ("2026-12-07T05:50:00+02:00", datetime(2026, 12, 7, 3, 50, tzinfo=UTC)),
        ("2026-12-07T03:50:00Z", datetime(2026, 12, 7, 3, 50, tzinfo=UTC)),
        ("2026-12-07 03:50:00", datetime(2026, 12, 7, 3, 50, tzinfo=UTC)),  # naive is UTC
        ("2026-12-07", datetime(2026, 12, 7, tzinfo=UTC)),
        (" 1733543400.5 ", datetime(2024, 12, 7, 3, 50, 0, 500000, UTC)),
        ("-5", datetime(1969, 12, 31, 23, 59, 55, tzinfo=UTC)),
        ("1e-3", datetime(1970, 1, 1, 0, 0, 0, 1000, UTC)),  # a float with a minus sign inside
        (1733543400, datetime(2024, 12, 7, 3, 50, tzinfo=UTC)),
        ("2026-13-07T00:00:00", None),
        ("12:30", None),
        ("soon", None),
        ("", None),
        (True, None),
    ],
)
def test_timestamps_iso_or_epoch(raw: object, expected: datetime | None) -> None:
    assert parse_timestamp(raw) == expected
