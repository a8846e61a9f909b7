"""Made-up event rows for writer tests: every column kind, NULLs, awkward text."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from gati.exports.columns import ColumnKind, ExportColumn

COLUMNS = [
    ExportColumn("id", ColumnKind.INTEGER, nullable=False),
    ExportColumn("event_id", ColumnKind.UUID, nullable=False),
    ExportColumn("event_type", ColumnKind.STRING, nullable=False),
    ExportColumn("session_id", ColumnKind.STRING),
    ExportColumn("visitor_id", ColumnKind.STRING),
    ExportColumn("site_id", ColumnKind.STRING),
    ExportColumn("timestamp", ColumnKind.DATETIME, nullable=False),
    ExportColumn("url", ColumnKind.STRING),
    ExportColumn("path", ColumnKind.STRING),
    ExportColumn("duration", ColumnKind.FLOAT),
    ExportColumn("is_bot", ColumnKind.BOOLEAN),
    ExportColumn("raw_event_data", ColumnKind.JSON),
]

START = datetime(2025, 6, 22, 11, 0, tzinfo=UTC)
END = datetime(2025, 6, 22, 12, 0, tzinfo=UTC)


def make_row(i: int) -> tuple[Any, ...]:
    awkward = 'quote " comma , newline \n unicode é 日本' if i % 7 == 0 else f"/page/{i}"
    return (
        i,
        uuid.UUID(int=i * 7919 + 1),
        "pageview" if i % 3 else "custom",
        None if i % 5 == 0 else f"sess_{i // 10}",
        f"vis_{i % 97}",
        "example-com",
        START + timedelta(milliseconds=i * 37, microseconds=i % 1000),
        f"https://example.com{awkward}" if i % 11 else None,
        awkward,
        None if i % 4 == 0 else i / 3,
        None if i % 6 == 0 else bool(i % 2),
        None
        if i % 13 == 0
        else {"attribution": {"utmParams": {"utm_source": "google", "n": i}}, "t": awkward},
    )


def make_rows(count: int) -> list[tuple[Any, ...]]:
    return [make_row(i) for i in range(1, count + 1)]


async def chunked(rows: Sequence[tuple[Any, ...]], size: int) -> AsyncIterator[list[Any]]:
    for offset in range(0, len(rows), size):
        yield list(rows[offset : offset + size])


async def generated_chunks(total: int, size: int) -> AsyncIterator[list[tuple[Any, ...]]]:
    for offset in range(0, total, size):
        yield [make_row(i) for i in range(offset + 1, min(offset + size, total) + 1)]
