"""gati.json: timestamps in responses and live messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from gati.json import isoformat_z


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, 1, 2, 3, 4, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 2, 3, 400000, tzinfo=timezone(timedelta(hours=5, minutes=45))),
        datetime(2026, 10, 25, 2, 30, tzinfo=ZoneInfo("Europe/Berlin")),
        datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=timezone(-timedelta(hours=3, minutes=30))),
        datetime(2026, 1, 1, 1, 2, 3),  # naive stays naive
    ],
)
def test_isoformat_z_is_isoformat_with_z_for_utc(value: datetime) -> None:
    assert isoformat_z(value) == value.isoformat().replace("+00:00", "Z")
