"""Writers: files are read back with json/csv/pyarrow and compared row by row."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gati.exports.columns import iso_utc
from gati.exports.writers import (
    ExportFormat,
    ExportMetadata,
    ExportWriteError,
    file_extension,
    write_export,
)
from tests.exports.export_rows import COLUMNS, END, START, chunked, generated_chunks, make_rows


def metadata(count: int | None) -> ExportMetadata:
    return ExportMetadata(
        export_id="exp_test123",
        export_time=datetime(2025, 6, 22, 12, 0, 5, tzinfo=UTC),
        start=START,
        end=END,
        event_count=count,
        extra={"site_id": "example-com", "format": "test"},
    )


def expected_json_event(row: tuple[Any, ...]) -> dict[str, Any]:
    event: dict[str, Any] = {}
    for column, value in zip(COLUMNS, row, strict=True):
        if value is None:
            event[column.name] = None
        elif column.name == "event_id":
            event[column.name] = str(value)
        elif column.name == "timestamp":
            event[column.name] = iso_utc(value)
        else:
            event[column.name] = value
    return event


def expected_csv_row(row: tuple[Any, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for column, value in zip(COLUMNS, row, strict=True):
        if value is None:
            out[column.name] = ""
        elif column.name == "timestamp":
            out[column.name] = iso_utc(value)
        elif column.name == "is_bot":
            out[column.name] = "true" if value else "false"
        elif column.name == "raw_event_data":
            out[column.name] = orjson.dumps(value).decode()
        elif column.name == "duration":
            out[column.name] = repr(value)
        else:
            out[column.name] = str(value)
    return out


async def write(
    tmp_path: Path, fmt: ExportFormat, rows: list[Any], *, gz: bool = False, chunk: int = 97
) -> tuple[Path, Any]:
    path = tmp_path / f"out.{file_extension(fmt, gzip=gz)}"
    with path.open("wb") as sink:
        result = await write_export(
            fmt,
            COLUMNS,
            chunked(rows, chunk),
            sink,
            metadata=metadata(len(rows)),
            gzip_output=gz,
        )
    return path, result


@pytest.mark.parametrize("gz", [False, True])
async def test_json_has_seed_metadata_then_events_row_by_row(tmp_path: Path, gz: bool) -> None:
    rows = make_rows(1000)
    path, result = await write(tmp_path, ExportFormat.JSON, rows, gz=gz)
    raw = path.read_bytes()
    assert result.rows == 1000
    assert result.bytes == len(raw)
    assert result.sha256 == hashlib.sha256(raw).hexdigest()
    text = gzip.decompress(raw) if gz else raw
    assert text.startswith(b'{"export_metadata":')  # header first, as in the seed
    document = orjson.loads(text)
    assert list(document) == ["export_metadata", "events"]
    meta = document["export_metadata"]
    assert meta["export_id"] == "exp_test123"
    assert meta["export_time"] == "2025-06-22T12:00:05Z"
    assert meta["event_count"] == 1000
    assert meta["time_range"] == {"start": "2025-06-22T11:00:00Z", "end": "2025-06-22T12:00:00Z"}
    assert meta["site_id"] == "example-com"
    assert len(document["events"]) == 1000
    for got, row in zip(document["events"], rows, strict=True):
        assert got == expected_json_event(row)


@pytest.mark.parametrize("gz", [False, True])
async def test_csv_round_trip_row_by_row(tmp_path: Path, gz: bool) -> None:
    rows = make_rows(1000)
    path, result = await write(tmp_path, ExportFormat.CSV, rows, gz=gz)
    raw = path.read_bytes()
    assert result.sha256 == hashlib.sha256(raw).hexdigest()
    text = (gzip.decompress(raw) if gz else raw).decode("utf-8")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert reader.fieldnames == [column.name for column in COLUMNS]
    got_rows = list(reader)
    assert len(got_rows) == 1000 == result.rows
    for got, row in zip(got_rows, rows, strict=True):
        assert got == expected_csv_row(row)


async def test_parquet_is_typed_one_row_group_per_chunk_and_round_trips(tmp_path: Path) -> None:
    rows = make_rows(1000)
    path, result = await write(tmp_path, ExportFormat.PARQUET, rows, chunk=300)
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    parquet = pq.ParquetFile(path)
    assert parquet.metadata.num_rows == 1000
    assert parquet.metadata.num_row_groups == 4  # 300 + 300 + 300 + 100
    schema = parquet.schema_arrow
    assert schema.field("id").type == pa.int64()
    assert schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert schema.field("duration").type == pa.float64()
    assert schema.field("is_bot").type == pa.bool_()
    assert schema.field("raw_event_data").type == pa.string()
    assert schema.field("raw_event_data").metadata == {b"gati.kind": b"json"}
    assert not schema.field("id").nullable
    meta = orjson.loads(schema.metadata[b"export_metadata"])
    assert meta["event_count"] == 1000
    table = parquet.read()
    for got, row in zip(table.to_pylist(), rows, strict=True):
        expected = dict(zip([c.name for c in COLUMNS], row, strict=True))
        expected["event_id"] = str(expected["event_id"])
        raw_json = got.pop("raw_event_data")
        want_json = expected.pop("raw_event_data")
        assert (None if raw_json is None else orjson.loads(raw_json)) == want_json
        assert got == expected


@pytest.mark.parametrize("fmt", list(ExportFormat))
async def test_empty_window_is_a_valid_file(tmp_path: Path, fmt: ExportFormat) -> None:
    path, result = await write(tmp_path, fmt, [])
    assert result.rows == 0
    if fmt is ExportFormat.JSON:
        document = orjson.loads(path.read_bytes())
        assert document["events"] == []
        assert document["export_metadata"]["event_count"] == 0
    elif fmt is ExportFormat.CSV:
        assert path.read_text() == ",".join(c.name for c in COLUMNS) + "\n"
    else:
        table = pq.read_table(path)
        assert table.num_rows == 0
        assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")


async def test_announced_count_must_match_what_is_written(tmp_path: Path) -> None:
    rows = make_rows(10)
    with (tmp_path / "x.json").open("wb") as sink, pytest.raises(ExportWriteError, match="11"):
        await write_export(
            ExportFormat.JSON, COLUMNS, chunked(rows, 4), sink, metadata=metadata(11)
        )


async def test_json_without_count_is_refused(tmp_path: Path) -> None:
    with (tmp_path / "x.json").open("wb") as sink, pytest.raises(ExportWriteError):
        await write_export(
            ExportFormat.JSON, COLUMNS, chunked([], 4), sink, metadata=metadata(None)
        )


def test_parquet_with_gzip_is_refused() -> None:
    with pytest.raises(ExportWriteError, match="Parquet"):
        file_extension(ExportFormat.PARQUET, gzip=True)
    assert file_extension(ExportFormat.CSV, gzip=True) == "csv.gz"
    assert file_extension(ExportFormat.JSON, gzip=False) == "json"


async def test_gzip_output_is_deterministic(tmp_path: Path) -> None:
    rows = make_rows(300)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, a = await write(tmp_path / "a", ExportFormat.CSV, rows, gz=True)
    second, b = await write(tmp_path / "b", ExportFormat.CSV, rows, gz=True)
    assert a.sha256 == b.sha256
    assert first.read_bytes() == second.read_bytes()


async def test_progress_reports_rows_after_each_chunk(tmp_path: Path) -> None:
    seen: list[int] = []
    with (tmp_path / "p.csv").open("wb") as sink:
        await write_export(
            ExportFormat.CSV,
            COLUMNS,
            generated_chunks(1000, 250),
            sink,
            metadata=metadata(None),
            on_progress=seen.append,
        )
    assert seen == [250, 500, 750, 1000]


class CountingSink(io.RawIOBase):
    """Discards bytes; remembers how many arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        self.total += size
        return size


@pytest.mark.parametrize("fmt", list(ExportFormat))
async def test_memory_does_not_grow_with_the_window(fmt: ExportFormat) -> None:
    """Python heap (tracemalloc) and Arrow pool peaks for 5x the rows stay about the same."""
    import tracemalloc

    async def peak(total: int) -> tuple[int, int]:
        pool = pa.default_memory_pool()
        tracemalloc.start()
        arrow_peak = 0
        try:
            sink = CountingSink()

            def progress(_: int) -> None:
                nonlocal arrow_peak
                arrow_peak = max(arrow_peak, pool.bytes_allocated())

            await write_export(
                fmt,
                COLUMNS,
                generated_chunks(total, 2000),
                sink,  # type: ignore[arg-type]
                metadata=metadata(total),
                on_progress=progress,
            )
            assert sink.total > 0
            return tracemalloc.get_traced_memory()[1], arrow_peak
        finally:
            tracemalloc.stop()

    small_py, small_arrow = await peak(10_000)
    large_py, large_arrow = await peak(50_000)
    assert large_py < small_py * 1.5 + 512 * 1024
    assert large_arrow < small_arrow * 1.5 + 1024 * 1024


@pytest.mark.parametrize("fmt", list(ExportFormat))
async def test_json_columns_given_as_text_are_embedded_not_quoted(
    tmp_path: Path, fmt: ExportFormat
) -> None:
    rows = make_rows(20)
    as_text = [
        (*row[:-1], None if row[-1] is None else orjson.dumps(row[-1]).decode()) for row in rows
    ]
    path, _ = await write(tmp_path, fmt, as_text)
    if fmt is ExportFormat.JSON:
        got = [e["raw_event_data"] for e in orjson.loads(path.read_bytes())["events"]]
    elif fmt is ExportFormat.CSV:
        reader = csv.DictReader(io.StringIO(path.read_text(), newline=""))
        got = [orjson.loads(r["raw_event_data"]) if r["raw_event_data"] else None for r in reader]
    else:
        column = pq.read_table(path).column("raw_event_data").to_pylist()
        got = [None if v is None else orjson.loads(v) for v in column]
    assert got == [row[-1] for row in rows]
