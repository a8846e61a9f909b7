import pytest

from gati.errors.grouping import (
    _VARIABLE_PARTS,
    MESSAGE_GROUPING_CHARS,
    compute_grouping,
    derive_culprit,
    derive_title,
    normalize_filename,
    normalize_message,
)
from gati.errors.stacktrace import Frame


def _frames(*specs: tuple[str, str, bool], lineno: int = 1) -> list[Frame]:
    return [Frame(filename=f, function=fn, in_app=ia, lineno=lineno) for f, fn, ia in specs]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("user 42 not found", "user <num> not found"),
        ("user 43 not found", "user <num> not found"),
        ("order 9b2f1c4e-6a1d-4c1e-9f3a-2b6c8d0e1f2a failed", "order <uuid> failed"),
        ("order 9b2f1c4e6a1d4c1e9f3a2b6c8d0e1f2a failed", "order <uuid> failed"),
        ("mail to bob.smith+x@example.co.uk bounced", "mail to <email> bounced"),
        ("GET https://api.example.com/v1/users/7?x=1 timed out", "GET <url> timed out"),
        ("connect to 10.0.0.12:5432 refused", "connect to <ip> refused"),
        ("connect to fe80::1ff:fe23:4567:890a refused", "connect to <ip> refused"),
        ("at 2024-01-15T12:00:00Z and 2024-01-15 12:00:01.5+02:00", "at <date> and <date>"),
        ("on 15/01/2024 at 12:00:59", "on <date> at <time>"),
        (
            "segfault at 0x7ffd5e8c and object 507f1f77bcf86cd799439011",
            "segfault at <hex> and object <hex>",
        ),
        ("took 3.14 seconds, 1,024 bytes", "took <num> seconds, <num> bytes"),
        ("http2 and user_7 and v2", "http2 and user_<num> and v2"),
        ("  spaces   collapse  ", "spaces collapse"),
        ("decade deadbeef", "decade deadbeef"),
    ],
)
def test_normalize_message(message: str, expected: str) -> None:
    assert normalize_message(message) == expected


@pytest.mark.parametrize(
    "run", ["x", "a.", "1", "a1", "0x", "ab12", "1.", "a-", "1-", "a@", "1:", "12:34:", "1/"]
)
def test_every_pattern_is_linear_on_long_runs(run: str) -> None:
    """Each pattern on 100,000 characters of a run that almost matches: with a pattern that
    restarts inside the run (as the email and URL patterns once did), this one test took
    minutes (30 s per message on the server's event loop); now it takes milliseconds."""
    text = run * (100_000 // len(run))
    for pattern, placeholder in _VARIABLE_PARTS:
        out = pattern.sub(placeholder, text)
        assert 0 < len(out) <= 5 * len(text)  # placeholders may be longer than what they replace


def test_only_the_start_of_a_message_groups_it() -> None:
    head = "user 42 not found "
    long_a = head + "a" * MESSAGE_GROUPING_CHARS + " tail one"
    long_b = head + "a" * MESSAGE_GROUPING_CHARS + " tail two"
    assert normalize_message(long_a) == normalize_message(long_b)
    assert normalize_message(long_a).startswith("user <num> not found")
    assert len(normalize_message("x" * 1_000_000)) == MESSAGE_GROUPING_CHARS
    # A URL or an email right after a long run of the characters the patterns repeat.
    assert normalize_message("a." * 200 + " see https://x.io/1") == "a." * 200 + " see <url>"
    assert normalize_message("x" * 300 + " from bob@example.com") == "x" * 300 + " from <email>"


def test_normalize_filename() -> None:
    assert (
        normalize_filename("http://cdn.example.com/static/js/app.3f2a1c9b.js?v=3")
        == "static/js/app.js"
    )
    assert normalize_filename("/srv/releases/20240115/app/views.py") == "srv/releases/app/views.py"
    assert normalize_filename("C:\\app\\main.py") == "C:/app/main.py"
    assert normalize_filename("/build/3f9a8e7d6c5b4a3f2e1d/app.js") == "build/app.js"


def test_stacktrace_grouping_ignores_lines_and_library_frames() -> None:
    a = compute_grouping(
        client_fingerprint=None,
        exception_type="ValueError",
        exception_value="bad 1",
        message=None,
        frames=_frames(("app/x.py", "f", True), ("lib/y.py", "g", False), lineno=10),
    )
    b = compute_grouping(
        client_fingerprint=None,
        exception_type="ValueError",
        exception_value="totally different",
        message=None,
        frames=_frames(("app/x.py", "f", True), ("lib/z.py", "h", False), lineno=99),
    )
    assert a.method == "stacktrace"
    assert a.fingerprint == b.fingerprint
    assert len(a.fingerprint) == 32
    c = compute_grouping(
        client_fingerprint=None,
        exception_type="TypeError",
        exception_value="bad 1",
        message=None,
        frames=_frames(("app/x.py", "f", True)),
    )
    assert c.fingerprint != a.fingerprint


def test_module_wins_over_file() -> None:
    frames_a = [
        Frame(module="app.views", filename="/srv/v1/app/views.py", function="f", in_app=True)
    ]
    frames_b = [
        Frame(module="app.views", filename="/other/app/views.py", function="f", in_app=True)
    ]
    kw = {
        "client_fingerprint": None,
        "exception_type": "E",
        "exception_value": None,
        "message": None,
    }
    assert (
        compute_grouping(frames=frames_a, **kw).fingerprint
        == compute_grouping(frames=frames_b, **kw).fingerprint
    )  # type: ignore[arg-type]


def test_message_grouping_without_in_app_frames() -> None:
    kw = {"client_fingerprint": None, "exception_type": "KeyError", "message": None}
    a = compute_grouping(
        exception_value="user 1 missing", frames=_frames(("lib.py", "g", False)), **kw
    )  # type: ignore[arg-type]
    b = compute_grouping(exception_value="user 2 missing", frames=[], **kw)  # type: ignore[arg-type]
    c = compute_grouping(exception_value="order 2 missing", frames=[], **kw)  # type: ignore[arg-type]
    assert a.method == "message"
    assert a.fingerprint == b.fingerprint != c.fingerprint
    m1 = compute_grouping(
        client_fingerprint=None,
        exception_type=None,
        exception_value=None,
        message="took 5 ms",
        frames=[],
    )
    m2 = compute_grouping(
        client_fingerprint=None,
        exception_type=None,
        exception_value=None,
        message="took 7 ms",
        frames=[],
    )
    assert m1.fingerprint == m2.fingerprint
    # a message event with a stack still groups by message: different messages, different issues
    m3 = compute_grouping(
        client_fingerprint=None,
        exception_type=None,
        exception_value=None,
        message="other thing",
        frames=_frames(("app.py", "f", True)),
    )
    assert m3.fingerprint != m1.fingerprint and m3.method == "message"


def test_client_fingerprint_wins_and_default_expands() -> None:
    base = {
        "exception_type": "ValueError",
        "exception_value": "x",
        "message": None,
        "frames": _frames(("app.py", "f", True)),
    }
    default = compute_grouping(client_fingerprint=None, **base)  # type: ignore[arg-type]
    custom = compute_grouping(client_fingerprint=["db-down"], **base)  # type: ignore[arg-type]
    other_error = compute_grouping(
        client_fingerprint=["db-down"],
        exception_type="KeyError",
        exception_value="y",
        message=None,
        frames=[],
    )
    assert custom.method == "fingerprint"
    assert custom.fingerprint == other_error.fingerprint != default.fingerprint
    expanded = compute_grouping(client_fingerprint=["{{ default }}"], **base)  # type: ignore[arg-type]
    assert expanded.components == default.components
    assert expanded.fingerprint == default.fingerprint
    split_a = compute_grouping(client_fingerprint=["{{default}}", "tenant-a"], **base)  # type: ignore[arg-type]
    split_b = compute_grouping(client_fingerprint=["{{ default }}", "tenant-b"], **base)  # type: ignore[arg-type]
    assert split_a.fingerprint != split_b.fingerprint
    assert split_a.components[: len(default.components)] == default.components
    assert compute_grouping(client_fingerprint=[42], **base).components == ["custom:42"]  # type: ignore[arg-type]


def test_title_and_culprit() -> None:
    assert (
        derive_title(exception_type="ValueError", exception_value="bad\nmore", message=None)
        == "ValueError: bad"
    )
    assert (
        derive_title(exception_type="ValueError", exception_value=None, message="m") == "ValueError"
    )
    assert (
        derive_title(exception_type=None, exception_value=None, message="hello\nworld") == "hello"
    )
    assert (
        derive_title(exception_type=None, exception_value=None, message=None) == "<unlabeled event>"
    )
    assert len(derive_title(exception_type=None, exception_value=None, message="x" * 500)) == 200

    frames = [
        Frame(module="app.views", function="outer", in_app=True),
        Frame(module="app.repo", function="load", in_app=True),
        Frame(module="lib", function="inner", in_app=False),
    ]
    kw = {"request_method": "GET", "request_path": "/u/1"}
    assert derive_culprit(explicit="x in y", transaction="t", frames=frames, **kw) == "x in y"
    assert (
        derive_culprit(explicit=None, transaction="/users/{id}", frames=frames, **kw)
        == "/users/{id}"
    )
    assert (
        derive_culprit(explicit=None, transaction=None, frames=frames, **kw) == "app.repo in load"
    )
    assert derive_culprit(explicit=None, transaction=None, frames=[], **kw) == "GET /u/1"
    assert (
        derive_culprit(
            explicit=None, transaction=None, frames=[], request_method=None, request_path=None
        )
        == ""
    )
