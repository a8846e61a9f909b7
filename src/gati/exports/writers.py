"""Streaming export writers: JSON (the seed's ``export_metadata`` then ``events``), CSV, Parquet.

Each writer takes row chunks (tuples aligned with the export's columns) one at a time and writes
them to a binary sink at once, so memory holds one or two chunks, never the window. The bytes that
reach the sink are counted and hashed (SHA-256) on the way, after optional gzip.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import hashlib
import io
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, BinaryIO

import pyarrow.parquet as pq

from gati.exports.columns import (
    ExportColumn,
    arrow_batch,
    arrow_schema,
    csv_row_converters,
    dumps_json,
    iso_utc,
    json_row_converters,
)

Row = Sequence[Any]
RowChunk = Sequence[Row]

PARQUET_COMPRESSION = "zstd"
GZIP_LEVEL = 6


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    PARQUET = "parquet"


CONTENT_TYPES = {
    ExportFormat.JSON: "application/json",
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.PARQUET: "application/vnd.apache.parquet",
}


class ExportWriteError(Exception):
    """A file could not be written as asked (bad option, or fewer/more rows than announced)."""


def file_extension(fmt: ExportFormat, *, gzip: bool) -> str:
    if gzip and fmt is ExportFormat.PARQUET:
        raise ExportWriteError("gzip applies to JSON and CSV; Parquet is compressed inside")
    return f"{fmt.value}.gz" if gzip else fmt.value


def content_type(fmt: ExportFormat) -> str:
    return CONTENT_TYPES[fmt]


@dataclass(frozen=True, slots=True)
class ExportMetadata:
    """The seed's ``export_metadata`` object (plus a few Gati fields under ``extra``)."""

    export_id: str
    export_time: datetime
    start: datetime
    end: datetime
    event_count: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "export_id": self.export_id,
            "export_time": iso_utc(self.export_time),
            "event_count": self.event_count,
            "time_range": {"start": iso_utc(self.start), "end": iso_utc(self.end)},
            **self.extra,
        }


@dataclass(frozen=True, slots=True)
class WriteResult:
    rows: int
    bytes: int
    sha256: str


class ChecksumSink(io.RawIOBase):
    """Passes bytes to ``target`` while counting them and updating a SHA-256."""

    def __init__(self, target: BinaryIO) -> None:
        super().__init__()
        self._target = target
        self._hash = hashlib.sha256()
        self.bytes_written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._target.write(view)
        self._hash.update(view)
        self.bytes_written += len(view)
        return len(view)

    def tell(self) -> int:
        return self.bytes_written

    def flush(self) -> None:
        self._target.flush()

    def close(self) -> None:
        # The caller owns the target; closing this view only flushes it.
        if not self.closed:
            self.flush()
        super().close()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class ChunkWriter(ABC):
    """Writes chunks of rows to a sink; ``finish`` ends the document."""

    def __init__(
        self,
        sink: BinaryIO,
        columns: Sequence[ExportColumn],
        metadata: ExportMetadata,
        *,
        gzip_output: bool = False,
    ) -> None:
        self.columns = list(columns)
        self.metadata = metadata
        self.rows = 0
        self._checksum = ChecksumSink(sink)
        self._gzip: gzip.GzipFile | None = None
        self._out: Any = self._checksum
        if gzip_output:
            # mtime=0: the same rows give the same bytes, hence the same checksum.
            self._gzip = gzip.GzipFile(
                fileobj=self._checksum, mode="wb", compresslevel=GZIP_LEVEL, mtime=0
            )
            self._out = self._gzip

    def write_chunk(self, rows: RowChunk) -> None:
        if rows:
            self._write_rows(rows)
            self.rows += len(rows)

    def finish(self) -> WriteResult:
        expected = self.metadata.event_count
        if expected is not None and expected != self.rows:
            raise ExportWriteError(
                f"the export announced {expected} events but {self.rows} were written"
            )
        self._finish_document()
        if self._gzip is not None:
            self._gzip.close()
        self._checksum.close()
        return WriteResult(
            rows=self.rows, bytes=self._checksum.bytes_written, sha256=self._checksum.sha256
        )

    @abstractmethod
    def _write_rows(self, rows: RowChunk) -> None: ...

    @abstractmethod
    def _finish_document(self) -> None: ...


class JsonChunkWriter(ChunkWriter):
    """``{"export_metadata": {...}, "events": [ {...}, ... ]}`` written as the rows come.

    ``event_count`` sits in the header, before the events, so it must be known in advance
    (the exporter counts the window in the same snapshot it streams from); ``finish`` checks it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.metadata.event_count is None:
            raise ExportWriteError("a JSON export needs event_count before its events")
        self._names = [column.name for column in self.columns]
        self._converters = json_row_converters(self.columns)
        header = b'{"export_metadata":' + dumps_json(self.metadata.as_dict()) + b',"events":['
        self._out.write(header)

    def _write_rows(self, rows: RowChunk) -> None:
        names = self._names
        converters = self._converters
        events = []
        for row in rows:
            event = {}
            for name, convert, value in zip(names, converters, row, strict=True):
                event[name] = value if convert is None or value is None else convert(value)
            events.append(event)
        # One event a line, so that the file can also be read line by line.
        separator = b"\n" if self.rows == 0 else b",\n"
        self._out.write(separator + b",\n".join(dumps_json(event) for event in events))

    def _finish_document(self) -> None:
        self._out.write(b"\n]}\n" if self.rows else b"]}\n")


class CsvChunkWriter(ChunkWriter):
    """A header line of column names, then one line per event; NULL is an empty field."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._converters = csv_row_converters(self.columns)
        self._write_lines([[column.name for column in self.columns]])

    def _write_lines(self, lines: Sequence[Sequence[str]]) -> None:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(lines)
        self._out.write(text.getvalue().encode("utf-8"))

    def _write_rows(self, rows: RowChunk) -> None:
        converters = self._converters
        self._write_lines(
            [
                [
                    "" if value is None else convert(value)
                    for convert, value in zip(converters, row, strict=True)
                ]
                for row in rows
            ]
        )

    def _finish_document(self) -> None:
        return None


class ParquetChunkWriter(ChunkWriter):
    """Typed Parquet; each chunk becomes one row group. ``export_metadata`` is in the footer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._gzip is not None:
            raise ExportWriteError("gzip applies to JSON and CSV; Parquet is compressed inside")
        schema = arrow_schema(self.columns)
        self._schema = schema.with_metadata(
            {"export_metadata": dumps_json(self.metadata.as_dict()).decode("utf-8")}
        )
        self._writer = pq.ParquetWriter(
            self._out, self._schema, compression=PARQUET_COMPRESSION, write_statistics=True
        )

    def _write_rows(self, rows: RowChunk) -> None:
        batch = arrow_batch(self.columns, self._schema, rows)
        self._writer.write_batch(batch, row_group_size=len(rows))

    def _finish_document(self) -> None:
        self._writer.close()


WRITERS: dict[ExportFormat, type[ChunkWriter]] = {
    ExportFormat.JSON: JsonChunkWriter,
    ExportFormat.CSV: CsvChunkWriter,
    ExportFormat.PARQUET: ParquetChunkWriter,
}


def make_writer(
    fmt: ExportFormat,
    sink: BinaryIO,
    columns: Sequence[ExportColumn],
    metadata: ExportMetadata,
    *,
    gzip_output: bool = False,
) -> ChunkWriter:
    file_extension(fmt, gzip=gzip_output)  # refuses Parquet + gzip
    return WRITERS[fmt](sink, columns, metadata, gzip_output=gzip_output)


async def write_export(
    fmt: ExportFormat,
    columns: Sequence[ExportColumn],
    chunks: AsyncIterable[RowChunk],
    sink: BinaryIO,
    *,
    metadata: ExportMetadata,
    gzip_output: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> WriteResult:
    """Write every chunk of ``chunks`` to ``sink`` and return the row count and checksum.

    Encoding runs in a worker thread while the next chunk is fetched, so at most two chunks are
    held at a time and the event loop stays free.
    """
    writer = await asyncio.to_thread(
        make_writer, fmt, sink, columns, metadata, gzip_output=gzip_output
    )
    pending: asyncio.Future[None] | None = None
    try:
        async for chunk in chunks:
            if pending is not None:
                await pending
                if on_progress is not None:
                    on_progress(writer.rows)
            pending = asyncio.ensure_future(asyncio.to_thread(writer.write_chunk, chunk))
        if pending is not None:
            await pending
            pending = None
            if on_progress is not None:
                on_progress(writer.rows)
        return await asyncio.to_thread(writer.finish)
    finally:
        if pending is not None and not pending.done():
            # Let the thread finish with the sink before the caller closes it.
            await asyncio.gather(pending, return_exceptions=True)
