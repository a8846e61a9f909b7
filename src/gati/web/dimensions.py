"""Dimensions of the statistics API and the ``filters=`` syntax.

``filters`` is a ``;``-separated list of ``DIMENSION OPERATOR VALUE[|VALUE...]`` where the
operator is ``==`` (equals any value), ``!=`` (equals none), ``~`` (contains any, case
insensitive) or ``!~`` (contains none). ``\\;`` and ``\\|`` escape the separators. Plausible's
``event:`` and ``visit:`` prefixes are accepted. Examples::

    filters=page==/pricing|/signup;source==Google
    filters=property:plan==pro;browser!=Chrome
    filters=utm_campaign~spring

Custom property names (``property:NAME``) are 1 to 300 characters (what ``/collect`` accepts)
without quotes, backslashes or control characters (the rule of ``GET /api/v1/events`` property
filters). JSON escapes those characters where the properties are stored, and
SQLite's JSON paths cannot address them (a quote even ends the path: ``$."a"b"`` is an error
there), so both databases refuse such names alike.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from gati.web.periods import bad

MAX_FILTERS = 20
MAX_VALUES = 50
MAX_PROPERTY_NAME = 300  # gati.web.schemas.MAX_PROPERTY_KEY


class Scope(enum.StrEnum):
    EVENT = "event"  # a column of each event
    SESSION = "session"  # a column of the visit the event belongs to


# name -> (scope, column)
DIMENSIONS: dict[str, tuple[Scope, str]] = {
    "page": (Scope.EVENT, "path"),
    "event": (Scope.EVENT, "event_type"),
    "hostname": (Scope.EVENT, "hostname"),
    "entry_page": (Scope.SESSION, "entry_page"),
    "exit_page": (Scope.SESSION, "exit_page"),
    "source": (Scope.SESSION, "source"),
    "referrer": (Scope.SESSION, "referrer"),
    "utm_source": (Scope.SESSION, "utm_source"),
    "utm_medium": (Scope.SESSION, "utm_medium"),
    "utm_campaign": (Scope.SESSION, "utm_campaign"),
    "utm_term": (Scope.SESSION, "utm_term"),
    "utm_content": (Scope.SESSION, "utm_content"),
    "browser": (Scope.SESSION, "browser"),
    "os": (Scope.SESSION, "os"),
    "device": (Scope.SESSION, "device"),
    "country": (Scope.SESSION, "country"),
}
PROPERTY_PREFIX = "property:"
_ALIASES = {"name": "event", "event_name": "event", "path": "page", "pathname": "page"}


class Operator(enum.StrEnum):
    EQ = "=="
    NE = "!="
    CONTAINS = "~"
    NOT_CONTAINS = "!~"


@dataclass(frozen=True, slots=True)
class Dimension:
    name: str  # "page", "source", "property:plan"
    scope: Scope
    column: str  # column name, or the property key for properties

    @property
    def is_property(self) -> bool:
        return self.name.startswith(PROPERTY_PREFIX)


@dataclass(frozen=True, slots=True)
class Filter:
    dimension: Dimension
    operator: Operator
    values: tuple[str, ...]


def dimension(text: str, *, field: str = "property") -> Dimension:
    name = text.strip()
    for prefix in ("event:", "visit:"):
        if name.startswith(prefix) and not name.startswith("event:props"):
            name = name[len(prefix) :]
    if name.startswith("event:props:"):
        name = PROPERTY_PREFIX + name[len("event:props:") :]
    name = _ALIASES.get(name, name)
    if name.startswith(PROPERTY_PREFIX):
        key = name[len(PROPERTY_PREFIX) :]
        if not key:
            raise bad(field, "property: needs a property name, as in property:plan")
        if len(key) > MAX_PROPERTY_NAME:
            raise bad(field, f"property names are at most {MAX_PROPERTY_NAME} characters")
        if any(ch in '"\\' or ord(ch) < 32 for ch in key):
            raise bad(
                field,
                f"property name {key!r} may not contain quotes, backslashes or control characters",
            )
        return Dimension(name, Scope.EVENT, key)
    if name not in DIMENSIONS:
        known = ", ".join([*DIMENSIONS, "property:NAME"])
        raise bad(field, f"{text!r} is not a dimension; use one of {known}")
    scope, column = DIMENSIONS[name]
    return Dimension(name, scope, column)


_SPLIT_FILTERS = re.compile(r"(?<!\\);")
_SPLIT_VALUES = re.compile(r"(?<!\\)\|")
_OPERATOR = re.compile(r"^(.*?)(==|!=|!~|~)(.*)$", re.S)


def _unescape(text: str) -> str:
    return text.replace("\\;", ";").replace("\\|", "|")


def parse_filters(text: str | None) -> list[Filter]:
    if not text or not text.strip():
        return []
    parts = [p for p in _SPLIT_FILTERS.split(text) if p.strip()]
    if len(parts) > MAX_FILTERS:
        raise bad("filters", f"at most {MAX_FILTERS} filters")
    filters: list[Filter] = []
    for part in parts:
        match = _OPERATOR.match(part)
        if match is None:
            raise bad(
                "filters",
                f"{part!r} has no operator; write DIMENSION==VALUE, !=, ~ (contains) or !~",
            )
        name, op, raw_values = match.groups()
        values = tuple(_unescape(v) for v in _SPLIT_VALUES.split(raw_values))
        if op in ("~", "!~") and any(v == "" for v in values):
            raise bad("filters", f"{part!r}: contains needs a non-empty value")
        if len(values) > MAX_VALUES:
            raise bad("filters", f"{part!r}: at most {MAX_VALUES} values")
        filters.append(Filter(dimension(name, field="filters"), Operator(op), values))
    return filters
