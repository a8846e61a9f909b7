"""Stack traces as text (seed-002 ``stack``) into frames, plus the in-app guess shared with Sentry.

Understood formats:

* Python tracebacks (``Traceback (most recent call last):`` / ``File "x.py", line 3, in f``),
  including chained tracebacks (the last one is the error that was raised) and 3.11 exception
  groups (``|`` prefixes) and caret lines;
* JavaScript V8 (Chrome, Node, Edge): ``    at fn (file.js:10:5)`` / ``    at file.js:10:5``;
* JavaScript Firefox/Safari: ``fn@http://host/file.js:10:5``.

Frames come out in Sentry order: the oldest call first, the frame that raised last.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

Platform = Literal["python", "javascript", "other"]


@dataclass(slots=True)
class Frame:
    filename: str | None = None
    abs_path: str | None = None
    module: str | None = None
    function: str | None = None
    lineno: int | None = None
    colno: int | None = None
    in_app: bool = False
    context_line: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("filename", "abs_path", "module", "function", "lineno", "colno"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out["in_app"] = self.in_app
        if self.context_line is not None:
            out["context_line"] = self.context_line
        return out


@dataclass(slots=True)
class ParsedStack:
    platform: Platform
    frames: list[Frame] = field(default_factory=list)
    exception_type: str | None = None
    exception_value: str | None = None


# --------------------------------------------------------------------------------------------
# In-app guess
# --------------------------------------------------------------------------------------------

_PY_LIBRARY_MARKERS = (
    "site-packages",
    "dist-packages",
    "/lib/python",
    "\\lib\\",
    "/lib64/python",
    "<frozen",
    "/.pyenv/",
    "/usr/lib/",
    "/usr/local/lib/",
)
_JS_LIBRARY_MARKERS = (
    "node_modules",
    "node:",
    "internal/",
    "webpack/bootstrap",
    "webpack/runtime",
    "/@vite/",
    "chrome-extension://",
    "moz-extension://",
    "safari-extension://",
    "[native code]",
)
_STDLIB = frozenset(sys.stdlib_module_names)


def guess_in_app(
    *, filename: str | None, abs_path: str | None, module: str | None, platform: str
) -> bool:
    """Is this frame the application's own code (not a library, the runtime or synthetic)?"""
    path = (abs_path or filename or "").replace("\\", "/") if (abs_path or filename) else ""
    raw_path = abs_path or filename or ""
    if module:
        top = module.split(".", 1)[0]
        if top in _STDLIB and top != "__main__":
            return False
    if not path:
        return bool(module) and platform == "python"
    if platform == "python" or path.endswith(".py"):
        if any(m in path or m in raw_path for m in _PY_LIBRARY_MARKERS):
            return False
        # <string>, <frozen ...>, <template> are synthetic; <stdin> is the user's own code
        return not (path.startswith("<") and path != "<stdin>")
    lowered = path.lower()
    if any(m in lowered for m in _JS_LIBRARY_MARKERS):
        return False
    return lowered not in ("native", "<anonymous>", "anonymous", "unknown location")


# --------------------------------------------------------------------------------------------
# Python
# --------------------------------------------------------------------------------------------

_PY_HEADER = "Traceback (most recent call last):"
_PY_FILE = re.compile(
    r'^[\s|+]*File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+?))?\s*$'
)
_PY_CARET = re.compile(r"^[\s|]*[\^~\s]+$")
_PY_EXC = re.compile(r"^[\s|]*(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<value>.*))?$")
_PY_CHAIN_LINES = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)


def _parse_python(text: str) -> ParsedStack:
    lines = text.splitlines()
    # The last traceback block is the exception that was finally raised.
    start = 0
    for i, line in enumerate(lines):
        if line.strip().lstrip("|+ ").startswith(_PY_HEADER):
            start = i + 1
    frames: list[Frame] = []
    tail: list[str] = []
    last_frame_line = -1
    for i in range(start, len(lines)):
        line = lines[i]
        match = _PY_FILE.match(line)
        if match:
            path = match.group("file")
            frames.append(
                Frame(
                    filename=path,
                    abs_path=path,
                    function=match.group("func"),
                    lineno=int(match.group("line")),
                    in_app=guess_in_app(
                        filename=path, abs_path=path, module=None, platform="python"
                    ),
                )
            )
            last_frame_line = i
            tail = []
            continue
        stripped = line.strip()
        if not stripped or _PY_CARET.match(line):
            continue
        if frames and i == last_frame_line + 1 and line[:1].isspace():
            frames[-1].context_line = stripped
            continue
        if stripped in _PY_CHAIN_LINES:
            continue
        tail.append(line)
    exc_type = exc_value = None
    if tail:
        match = _PY_EXC.match(tail[0])
        if match:
            exc_type = match.group("type")
            rest = [match.group("value") or ""] + [t.strip() for t in tail[1:]]
            exc_value = "\n".join(r for r in rest if r) or None
    return ParsedStack(
        platform="python", frames=frames, exception_type=exc_type, exception_value=exc_value
    )


# --------------------------------------------------------------------------------------------
# JavaScript
# --------------------------------------------------------------------------------------------

_V8_AT = re.compile(r"^\s*at (?:(?P<func>.+?) \((?P<loc>.*)\)|(?P<bare>.+))\s*$")
_LOCATION = re.compile(r"^(?P<file>.+?)(?::(?P<line>\d+))?(?::(?P<col>\d+))?$")
_EVAL_INNER = re.compile(r"\(([^()]+?:\d+:\d+)\)")
_GECKO = re.compile(r"^\s*(?P<func>[^@\s]*(?: [^@]*)?)@(?P<loc>.+?)\s*$")
_GECKO_LOC_END = re.compile(r"(?::\d+(?::\d+)?|\[native code\])$")
_EXCEPTION_NAME = re.compile(r"(?:Error|Exception|Warning|Fault|Panic)$")
_JS_EXC = re.compile(r"^(?:Uncaught\s+)?(?P<type>[A-Za-z_$][\w$.]*)(?::\s?(?P<value>.*))?$")


def _js_location(loc: str) -> tuple[str, int | None, int | None]:
    if loc.startswith("eval at ") or " > eval" in loc:
        inner = _EVAL_INNER.search(loc)
        loc = inner.group(1) if inner else loc.split(" line ", 1)[0]
    match = _LOCATION.match(loc.strip())
    if not match:  # pragma: no cover - the pattern accepts any non-empty string
        return loc, None, None
    line, col = match.group("line"), match.group("col")
    return match.group("file"), int(line) if line else None, int(col) if col else None


def _js_frame(function: str | None, loc: str) -> Frame:
    abs_path, lineno, colno = _js_location(loc)
    filename = abs_path
    if "://" in abs_path:
        parts = urlsplit(abs_path)
        filename = parts.path or abs_path
    func = (function or "").strip()
    if func.startswith("async "):
        func = func[len("async ") :]
    func = re.sub(r" \[as [^\]]+\]$", "", func)
    func = re.sub(r"(?:/<)+$", "", func)  # Firefox anonymous inner functions: outer/<
    func = func.rstrip("/") or ""
    in_app = lineno is not None and guess_in_app(
        filename=filename, abs_path=abs_path, module=None, platform="javascript"
    )
    return Frame(
        filename=filename,
        abs_path=abs_path,
        function=func or None,
        lineno=lineno,
        colno=colno,
        in_app=in_app,
    )


def _parse_javascript(text: str) -> ParsedStack:
    frames: list[Frame] = []
    head: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        v8 = _V8_AT.match(line)
        if v8:
            loc = v8.group("loc") if v8.group("loc") is not None else v8.group("bare")
            func = v8.group("func")
            if v8.group("bare") is not None and " " not in loc.strip() and ":" not in loc:
                # "at native" / "at <anonymous>": a location-less frame
                frames.append(Frame(function=None, filename=loc.strip(), in_app=False))
                continue
            frames.append(_js_frame(func, loc))
            continue
        gecko = _GECKO.match(line)
        if gecko and _GECKO_LOC_END.search(gecko.group("loc")):
            frames.append(_js_frame(gecko.group("func"), gecko.group("loc")))
            continue
        if not frames:
            head.append(line.strip())
    frames.reverse()  # JavaScript prints the newest call first
    exc_type = exc_value = None
    if head:
        match = _JS_EXC.match(head[0])
        if match:
            exc_type = match.group("type")
            rest = [match.group("value") or "", *head[1:]]
            exc_value = "\n".join(r for r in rest if r) or None
    return ParsedStack(
        platform="javascript", frames=frames, exception_type=exc_type, exception_value=exc_value
    )


# --------------------------------------------------------------------------------------------


def detect_platform(text: str) -> Platform:
    if _PY_HEADER in text or any(_PY_FILE.match(line) for line in text.splitlines()):
        return "python"
    for line in text.splitlines():
        if _V8_AT.match(line):
            return "javascript"
        gecko = _GECKO.match(line)
        if gecko and _GECKO_LOC_END.search(gecko.group("loc")):
            return "javascript"
    return "other"


def parse_stack(text: str | None) -> ParsedStack:
    """Parse a stack trace written as text. Unknown formats give no frames, never an error."""
    if not text or not text.strip():
        return ParsedStack(platform="other")
    platform = detect_platform(text)
    if platform == "python":
        return _parse_python(text)
    if platform == "javascript":
        return _parse_javascript(text)
    first = text.strip().splitlines()[0].strip()
    match = _JS_EXC.match(first)
    if match and match.group("value") is not None and _EXCEPTION_NAME.search(match.group("type")):
        return ParsedStack(
            platform="other",
            exception_type=match.group("type"),
            exception_value=match.group("value"),
        )
    return ParsedStack(platform="other")
