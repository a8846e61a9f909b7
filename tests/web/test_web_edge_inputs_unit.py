"""The bounds behind tests/web/test_web_edge_inputs.py, exactly at their edges (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from gati.exceptions import AppError
from gati.web.dimensions import dimension, parse_filters
from gati.web.payload import MIN_TIMESTAMP, parse_collect_body
from gati.web.periods import MAX_DATE, MIN_DATE, resolve_period
from gati.web.sites import creatable_slug, origin_host, project_id_ref, valid_hostname

NOW = datetime(2025, 6, 22, 12, 0, tzinfo=UTC)


def timestamp_of(value: object) -> datetime | None:
    body = orjson.dumps({"siteId": "s", "timestamp": value})
    return parse_collect_body(body, None, now=NOW).timestamp


def timestamp_error(value: object) -> str:
    with pytest.raises(AppError) as exc:
        timestamp_of(value)
    assert exc.value.status == 422
    [error] = exc.value.extra["errors"]
    assert error["field"] == "timestamp"
    return str(error["message"])


def test_event_timestamps_from_the_epoch_to_an_hour_ahead() -> None:
    assert timestamp_of("1970-01-01T00:00:00Z") == MIN_TIMESTAMP
    assert timestamp_of(0) == MIN_TIMESTAMP
    assert timestamp_of("1970-01-01T05:00:00+05:00") == MIN_TIMESTAMP
    assert timestamp_of((NOW + timedelta(hours=1)).isoformat()) == NOW + timedelta(hours=1)
    for old in ("1969-12-31T23:59:59.999999Z", -1, "0001-01-01T00:00:00+14:00", "0001-01-01"):
        assert "before 1970-01-01T00:00:00Z" in timestamp_error(old), old
    later = NOW + timedelta(hours=1, microseconds=1)
    for new in (later.isoformat(), "9999-12-31T23:59:59-12:00", "9999-12-31T23:59:59.999999"):
        assert "more than 1 hour in the future" in timestamp_error(new), new


@pytest.mark.parametrize("tz", ["UTC", "Pacific/Kiritimati", "Etc/GMT+12", "America/St_Johns"])
@pytest.mark.parametrize("period", ["day", "7d", "30d", "month", "12mo"])
def test_every_period_computes_at_the_edges_of_the_date_range(tz: str, period: str) -> None:
    zone = ZoneInfo(tz)
    for day in (MIN_DATE, MAX_DATE):
        result = resolve_period(period, tz=zone, date_param=day.isoformat())
        assert result.window.first <= day <= result.window.last
        assert result.previous.last < result.window.first
    for interval in ("day", "week", "month"):
        edge = f"{MAX_DATE.replace(day=1).isoformat()},{MAX_DATE.isoformat()}"
        resolve_period("custom", tz=zone, date_param=edge, interval=interval)
    first = f"{MIN_DATE.isoformat()},{(MIN_DATE + timedelta(3 * 366 - 1)).isoformat()}"
    assert resolve_period("custom", tz=zone, date_param=first).previous.first.year == 1966


@pytest.mark.parametrize(
    "date_param",
    [
        (MIN_DATE - timedelta(1)).isoformat(),
        (MAX_DATE + timedelta(1)).isoformat(),
        "0001-01-01",
        "9999-12-31",
    ],
)
def test_dates_outside_the_range_name_date(date_param: str) -> None:
    for period, text in (("day", date_param), ("custom", f"{date_param},{date_param}")):
        with pytest.raises(AppError) as exc:
            resolve_period(period, tz=ZoneInfo("UTC"), date_param=text)
        assert exc.value.extra["errors"][0]["field"] == "date"
    assert (date(1970, 1, 1), date(9998, 12, 31)) == (MIN_DATE, MAX_DATE)


def test_property_names_follow_the_events_rule() -> None:
    assert dimension("property:a.b").column == "a.b"
    assert dimension("event:props:" + "x" * 300).column == "x" * 300
    for name in ('a"b', "a\\b", "a\tb", "x" * 301, ""):
        with pytest.raises(AppError) as exc:
            dimension("property:" + name)
        assert exc.value.extra["errors"][0]["field"] == "property"
        with pytest.raises(AppError) as exc:
            parse_filters(f"property:{name}==1")
        assert exc.value.extra["errors"][0]["field"] == "filters"


def test_site_reference_helpers() -> None:
    assert project_id_ref("1") == 1 and project_id_ref("007") == 7
    assert project_id_ref(str(2**31 - 1)) == 2**31 - 1
    for ref in (str(2**31), str(2**63), "9" * 5000, "0", "\u00b2", "\u0663", "-1", "1a"):
        assert project_id_ref(ref) is None, ref
    assert creatable_slug("example.com") and creatable_slug("a_b-c.d")
    for ref in ("Example.com", "my site", "abc-", "-abc", "123", "\u00b2", "x" * 101, ""):
        assert not creatable_slug(ref), ref
    assert origin_host("https://Shop.Example.com:8443") == "shop.example.com"
    for origin in (None, "", "null", "http://[::1", "http://a]b", "https://[not-an-ip]"):
        assert origin_host(origin) is None, origin
    for host in ("example.com", "xn--mnchen-3ya.de", "münchen.de", "localhost", "::1", "10.0.0.1"):
        assert valid_hostname(host), host
    for host in ("a b.com", "*.example.com", "a\x00b", "ex..com", ".ex.com", "a/b"):
        assert not valid_hostname(host), host
