from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from gati.web.visitor import new_salt, salt_day, visitor_hash


def test_same_inputs_same_id_and_prefix() -> None:
    salt = new_salt()
    a = visitor_hash(salt=salt, site="s", ip="1.2.3.4", user_agent="UA")
    assert a == visitor_hash(salt=salt, site="s", ip="1.2.3.4", user_agent="UA")
    assert a.startswith("v_") and len(a) == 2 + 32


@pytest.mark.parametrize(
    "change",
    [
        {"site": "other"},
        {"ip": "1.2.3.5"},
        {"user_agent": "UA2"},
    ],
)
def test_each_input_changes_the_id(change: dict[str, str]) -> None:
    salt = new_salt()
    base = {"site": "s", "ip": "1.2.3.4", "user_agent": "UA"}
    assert visitor_hash(salt=salt, **base) != visitor_hash(salt=salt, **{**base, **change})


def test_new_salt_changes_the_id() -> None:
    args = {"site": "s", "ip": "1.2.3.4", "user_agent": "UA"}
    assert visitor_hash(salt=new_salt(), **args) != visitor_hash(salt=new_salt(), **args)


def test_fields_cannot_collide_by_concatenation() -> None:
    salt = new_salt()
    assert visitor_hash(salt=salt, site="ab", ip="c", user_agent="") != visitor_hash(
        salt=salt, site="a", ip="bc", user_agent=""
    )


def test_empty_salt_refused() -> None:
    with pytest.raises(ValueError):
        visitor_hash(salt=b"", site="s", ip=None, user_agent=None)


def test_salt_day_is_utc() -> None:
    late_in_new_york = datetime(2025, 6, 22, 22, 30, tzinfo=timezone(timedelta(hours=-4)))
    assert salt_day(late_in_new_york) == date(2025, 6, 23)
    assert salt_day(datetime(2025, 6, 22, 0, 0)) == date(2025, 6, 22)
    assert salt_day(datetime(2025, 6, 22, 23, 59, tzinfo=UTC)) == date(2025, 6, 22)
