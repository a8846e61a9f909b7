"""Property-equality filters: both spellings, typing, merging and refusals."""

import pytest

from gati.events.filters import MAX_FILTER_KEYS, PropertyFilter, parse_property_filters
from gati.exceptions import AppError


def _values(filters: list[PropertyFilter]) -> dict[str, tuple]:
    return {f.key: f.values for f in filters}


def test_shorthand_string() -> None:
    assert parse_property_filters([("property.plan", "pro")]) == [PropertyFilter("plan", ("pro",))]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", ("3", 3)),
        ("-2.5", ("-2.5", -2.5)),
        ("1e3", ("1e3", 1000.0)),
        ("true", ("true", True)),
        ("false", ("false", False)),
        ("null", ("null", None)),
        ("01", ("01",)),  # not a JSON number
        ('"quoted"', ('"quoted"',)),  # a JSON string is not unwrapped: the text is the value
        ("", ("",)),
        ("NaN", ("NaN",)),
    ],
)
def test_shorthand_scalars(text: str, expected: tuple) -> None:
    [flt] = parse_property_filters([("property.k", text)])
    assert flt.values == expected
    assert [type(v) for v in flt.values] == [type(v) for v in expected]


def test_json_form_is_typed() -> None:
    filters = parse_property_filters(
        [("properties", '{"plan":"pro","seats":3,"trial":false,"coupon":null,"ratio":0.5}')]
    )
    assert _values(filters) == {
        "plan": ("pro",),
        "seats": (3,),
        "trial": (False,),
        "coupon": (None,),
        "ratio": (0.5,),
    }
    assert type(_values(filters)["seats"][0]) is int


def test_same_key_is_any_of_and_keys_are_anded() -> None:
    filters = parse_property_filters(
        [
            ("property.plan", "pro"),
            ("property.plan", "team"),
            ("property.plan", "pro"),  # duplicates collapse
            ("properties", '{"plan": "free", "country": "NP"}'),
            ("limit", "10"),  # other parameters are ignored
            ("event_type", "signup"),
        ]
    )
    assert _values(filters) == {"plan": ("pro", "team", "free"), "country": ("NP",)}


def test_true_and_one_stay_distinct() -> None:
    [flt] = parse_property_filters([("properties", '{"a": 1}'), ("property.a", "true")])
    assert flt.values == (1, "true", True)


def test_dotted_key_is_a_name() -> None:
    assert parse_property_filters([("property.utm.source", "x")])[0].key == "utm.source"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ([("properties", "{bad json")], "properties"),
        ([("properties", "[1,2]")], "properties"),
        ([("properties", '{"a": {"b": 1}}')], "properties.a"),
        ([("properties", '{"a": [1]}')], "properties.a"),
        ([("property.", "x")], "property."),
        ([('property.a"b', "x")], 'property.a"b'),
        ([("property.a\\b", "x")], "property.a\\b"),
        ([("property." + "k" * 201, "x")], "property." + "k" * 201),
        ([("properties", '{"": 1}')], "properties."),
    ],
)
def test_refusals_name_the_field(params: list[tuple[str, str]], field: str) -> None:
    with pytest.raises(AppError) as info:
        parse_property_filters(params)
    assert info.value.status == 422
    assert info.value.detail.startswith(f"{field}:")


def test_limits() -> None:
    too_many_keys = [(f"property.k{i}", "v") for i in range(MAX_FILTER_KEYS + 1)]
    with pytest.raises(AppError):
        parse_property_filters(too_many_keys)
    too_many_values = [("property.k", f"v{i}") for i in range(21)]
    with pytest.raises(AppError):
        parse_property_filters(too_many_values)
