"""Opaque keyset cursors: round trips, stability, refusal of anything else."""

import base64
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from gati.events.cursor import Cursor, decode_cursor, encode_cursor
from gati.exceptions import AppError


@pytest.mark.parametrize(
    ("timestamp", "project_id", "row_id"),
    [
        (datetime(2024, 1, 15, 12, 0, 0, 123456, tzinfo=UTC), 1, "42"),
        (datetime(1970, 1, 1, tzinfo=UTC), 7, "a"),
        (datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), 7, "b"),
        (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), 2**40, "c"),
        (datetime(2024, 6, 1, 0, 0, tzinfo=UTC), 3, "client-id/with:odd chars é"),
    ],
)
def test_round_trip(timestamp: datetime, project_id: int, row_id: str) -> None:
    cursor = encode_cursor(timestamp, project_id, row_id)
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor
    assert decode_cursor(cursor) == Cursor(timestamp=timestamp, project_id=project_id, id=row_id)


def test_offset_and_naive_timestamps_are_utc() -> None:
    aware = datetime(2024, 1, 15, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    naive = datetime(2024, 1, 15, 12, 0)
    expected = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
    assert decode_cursor(encode_cursor(aware, 1, "x")).timestamp == expected
    assert decode_cursor(encode_cursor(naive, 1, "x")).timestamp == expected


def test_stable_and_distinct() -> None:
    ts = datetime(2024, 1, 15, tzinfo=UTC)
    assert encode_cursor(ts, 1, "5") == encode_cursor(ts, 1, "5")
    assert encode_cursor(ts, 1, "5") != encode_cursor(ts, 1, "6")
    assert encode_cursor(ts, 1, "5") != encode_cursor(ts, 2, "5")
    assert encode_cursor(ts, 1, "5") != encode_cursor(ts + timedelta(microseconds=1), 1, "5")


def _raw(payload: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not base64 !!",
        "x" * 2000,
        base64.urlsafe_b64encode(b"\\xff\\xfe").decode(),
        _raw({"a": 1}),
        _raw([]),
        _raw([1, 2, 3]),
        _raw([2, 0, 1, "x"]),  # unknown version
        _raw([1, "soon", 1, "x"]),
        _raw([1, True, 1, "x"]),
        _raw([1, 0, True, "x"]),
        _raw([1, 0, "1", "x"]),
        _raw([1, 0, 1, 5]),
        _raw([1, 0, 1, None]),
        _raw([1, 2**62, 1, "x"]),  # out of datetime range
    ],
)
def test_refuses_garbage(value: str) -> None:
    with pytest.raises(AppError) as info:
        decode_cursor(value)
    assert info.value.status == 400
    assert info.value.code == "invalid_cursor"
    assert info.value.detail.startswith("cursor:")


def test_unknown_version_says_so() -> None:
    with pytest.raises(AppError) as info:
        decode_cursor(_raw([2, 0, 1, "x"]))
    assert "version" in info.value.detail
