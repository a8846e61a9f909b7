"""Property-equality filters of ``GET /api/v1/events``.

Two spellings, which may be combined:

* ``?property.plan=pro`` — shorthand for one top-level property. The value is text from a URL,
  so it matches the string ``"pro"``; when the text is also a JSON scalar it matches that value
  too: ``property.seats=3`` matches ``"3"`` and ``3``, ``property.trial=true`` matches
  ``"true"`` and ``true``, ``property.coupon=null`` matches ``"null"`` and ``null``.
* ``?properties={"plan":"pro","seats":3}`` — a JSON object of exact, typed matches
  (``3`` matches the number 3 only, not the string ``"3"``).

Filters on different keys are ANDed. Several values for one key (``property.plan=pro&
property.plan=team``, or the same key in both spellings) mean "any of them". Only strings,
numbers, booleans and null can be compared; keys are top-level property names (a dot inside a
key is part of the name, not a path). A missing property never matches, not even ``null``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from gati.exceptions import AppError

PROPERTY_PREFIX = "property."
PROPERTIES_PARAM = "properties"
MAX_FILTER_KEYS = 20
MAX_KEY_LENGTH = 200
MAX_VALUES_PER_KEY = 20

Scalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class PropertyFilter:
    """Matches events whose ``properties[key]`` equals one of ``values`` (type-exact)."""

    key: str
    values: tuple[Scalar, ...]


def _bad(field: str, reason: str) -> AppError:
    return AppError(422, "validation_error", f"{field}: {reason}")


def _check_key(key: str, field: str) -> str:
    if not key:
        raise _bad(field, "the property name is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise _bad(field, f"the property name is longer than {MAX_KEY_LENGTH} characters")
    if any(ch in key for ch in '"\\') or any(ord(ch) < 32 for ch in key):
        raise _bad(
            field, "the property name may not contain quotes, backslashes or control characters"
        )
    return key


def _same(a: Scalar, b: Scalar) -> bool:
    return type(a) is type(b) and a == b


def _shorthand_values(text: str) -> list[Scalar]:
    values: list[Scalar] = [text]
    if text in ("true", "false", "null"):
        values.append({"true": True, "false": False, "null": None}[text])
        return values
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return values
    if isinstance(parsed, int | float) and not isinstance(parsed, bool):
        values.append(parsed)
    return values


def _typed_value(value: object, field: str) -> Scalar:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _bad(field, "numbers must be finite")
        return value
    raise _bad(field, "only strings, numbers, booleans and null can be compared")


def parse_property_filters(params: Iterable[tuple[str, str]]) -> list[PropertyFilter]:
    """Build the filters from a request's query parameters (all of them; others are ignored)."""
    by_key: dict[str, list[Scalar]] = {}

    def add(key: str, value: Scalar, field: str) -> None:
        values = by_key.setdefault(key, [])
        if any(_same(value, seen) for seen in values):
            return
        if len(values) >= MAX_VALUES_PER_KEY:
            raise _bad(field, f"at most {MAX_VALUES_PER_KEY} values per property")
        values.append(value)

    for name, raw in params:
        if name.startswith(PROPERTY_PREFIX):
            key = _check_key(name[len(PROPERTY_PREFIX) :], name)
            for value in _shorthand_values(raw):
                add(key, value, name)
        elif name == PROPERTIES_PARAM:
            try:
                parsed = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise _bad(PROPERTIES_PARAM, 'must be a JSON object, e.g. {"plan":"pro"}') from None
            if not isinstance(parsed, dict):
                raise _bad(PROPERTIES_PARAM, 'must be a JSON object, e.g. {"plan":"pro"}')
            for key, value in parsed.items():
                field = f"{PROPERTIES_PARAM}.{key}"
                add(_check_key(key, field), _typed_value(value, field), field)
        if len(by_key) > MAX_FILTER_KEYS:
            raise _bad(name, f"at most {MAX_FILTER_KEYS} properties can be filtered on")

    return [PropertyFilter(key=key, values=tuple(values)) for key, values in by_key.items()]
