from gati.errors.stacktrace import guess_in_app, parse_stack

PY = """Traceback (most recent call last):
  File "/srv/app/api/views.py", line 42, in get_user
    user = repo.load(user_id)
  File "/srv/app/.venv/lib/python3.11/site-packages/sqlalchemy/orm/session.py", line 10, in execute
    return self._execute()
  File "/srv/app/api/repo.py", line 7, in load
    raise LookupError(f"user {user_id} not found")
LookupError: user 42 not found
"""

PY_CHAINED = """Traceback (most recent call last):
  File "/app/a.py", line 1, in first
    x = {}["k"]
KeyError: 'k'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/b.py", line 5, in second
    raise ValueError("bad\\nvalue")
    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "<frozen importlib._bootstrap>", line 3, in _load
ValueError: bad
value
"""

V8 = """TypeError: Cannot read properties of undefined (reading 'id')
    at getUser (/app/src/users.js:10:15)
    at async Promise.all (index 0)
    at Object.<anonymous> (/app/node_modules/express/lib/router.js:284:7)
    at new Handler (http://example.com/static/app.3f2a1c9b.js?v=2:1:1200)
    at /app/src/index.js:3:7
    at eval (eval at compile (/app/src/tpl.js:5:3), <anonymous>:1:1)
    at node:internal/process/task_queues:95:5
    at native
"""

FIREFOX = """getUser@http://example.com/js/users.js:10:15
handler/<@http://example.com/js/app.js:20:3
@http://example.com/js/app.js:30:1
dispatch@http://example.com/node_modules/lib/x.js:1:1
"""


def test_python_traceback() -> None:
    parsed = parse_stack(PY)
    assert parsed.platform == "python"
    assert parsed.exception_type == "LookupError"
    assert parsed.exception_value == "user 42 not found"
    assert [f.function for f in parsed.frames] == ["get_user", "execute", "load"]
    assert [f.lineno for f in parsed.frames] == [42, 10, 7]
    assert [f.in_app for f in parsed.frames] == [True, False, True]
    assert parsed.frames[0].context_line == "user = repo.load(user_id)"
    assert parsed.frames[-1].filename == "/srv/app/api/repo.py"


def test_python_chained_takes_the_last_traceback() -> None:
    parsed = parse_stack(PY_CHAINED)
    assert parsed.exception_type == "ValueError"
    assert parsed.exception_value == "bad\nvalue"
    assert [f.function for f in parsed.frames] == ["second", "_load"]
    assert [f.in_app for f in parsed.frames] == [True, False]
    assert parsed.frames[0].context_line == 'raise ValueError("bad\\nvalue")'


def test_python_frames_without_header_and_exception_groups() -> None:
    parsed = parse_stack('  File "x.py", line 3, in <module>\nRuntimeError')
    assert parsed.platform == "python"
    assert parsed.exception_type == "RuntimeError" and parsed.exception_value is None
    group = """  + Exception Group Traceback (most recent call last):
  |   File "/app/g.py", line 9, in main
  |     raise ExceptionGroup("many", [ValueError(1)])
  | ExceptionGroup: many (1 sub-exception)
"""
    parsed = parse_stack(group)
    assert [f.function for f in parsed.frames] == ["main"]
    assert parsed.exception_type == "ExceptionGroup"


def test_v8_stack() -> None:
    parsed = parse_stack(V8)
    assert parsed.platform == "javascript"
    assert parsed.exception_type == "TypeError"
    assert parsed.exception_value == "Cannot read properties of undefined (reading 'id')"
    frames = list(reversed(parsed.frames))  # newest first, as printed
    assert frames[0].function == "getUser"
    assert (frames[0].filename, frames[0].lineno, frames[0].colno) == ("/app/src/users.js", 10, 15)
    assert frames[0].in_app is True
    assert frames[1].function == "Promise.all" and frames[1].in_app is False
    assert frames[2].function == "Object.<anonymous>" and frames[2].in_app is False
    assert frames[3].function == "new Handler"
    assert frames[3].filename == "/static/app.3f2a1c9b.js"
    assert frames[3].abs_path == "http://example.com/static/app.3f2a1c9b.js?v=2"
    assert (frames[3].lineno, frames[3].colno) == (1, 1200)
    assert frames[4].function is None and frames[4].filename == "/app/src/index.js"
    assert frames[5].function == "eval" and frames[5].filename == "/app/src/tpl.js"
    assert frames[6].in_app is False  # node:internal
    assert frames[7].filename == "native" and frames[7].in_app is False


def test_firefox_stack() -> None:
    parsed = parse_stack(FIREFOX)
    assert parsed.platform == "javascript"
    frames = list(reversed(parsed.frames))
    assert [f.function for f in frames] == ["getUser", "handler", None, "dispatch"]
    assert frames[0].filename == "/js/users.js" and frames[0].lineno == 10
    assert [f.in_app for f in frames] == [True, True, True, False]
    assert parsed.exception_type is None


def test_seed_style_stack_and_unknown_text() -> None:
    parsed = parse_stack("Error: message\n    at handler (/srv/api/users.js:12:3)")
    assert (parsed.exception_type, parsed.exception_value) == ("Error", "message")
    assert len(parsed.frames) == 1
    assert parse_stack(None).frames == []
    assert parse_stack("   ").platform == "other"
    unknown = parse_stack("something went wrong somewhere")
    assert unknown.platform == "other" and unknown.frames == [] and unknown.exception_type is None
    only_line = parse_stack("DatabaseError: connection refused")
    assert (only_line.exception_type, only_line.exception_value) == (
        "DatabaseError",
        "connection refused",
    )
    assert parse_stack("Note: not an exception").exception_type is None


def test_guess_in_app() -> None:
    assert guess_in_app(filename="app.py", abs_path="/srv/app.py", module="app", platform="python")
    assert not guess_in_app(
        filename="json/decoder.py", abs_path=None, module="json.decoder", platform="python"
    )
    assert not guess_in_app(
        filename="x.py",
        abs_path="/usr/lib/python3/dist-packages/x.py",
        module=None,
        platform="python",
    )
    assert not guess_in_app(filename="<string>", abs_path=None, module=None, platform="python")
    assert guess_in_app(filename="<stdin>", abs_path=None, module=None, platform="python")
    assert guess_in_app(filename=None, abs_path=None, module="myapp.views", platform="python")
    assert not guess_in_app(filename=None, abs_path=None, module=None, platform="javascript")
    assert not guess_in_app(
        filename="/x.js",
        abs_path="webpack://app/node_modules/react/x.js",
        module=None,
        platform="javascript",
    )
