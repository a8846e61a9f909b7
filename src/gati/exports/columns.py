"""The typed column list of an export and how each kind of value is written in each format.

Rows travel through the exporter as tuples aligned with a list of :class:`ExportColumn`,
never as ORM objects: the same tuple feeds the JSON, CSV and Parquet writers.
"""

from __future__ import annotations

import base64
import decimal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import orjson
import pyarrow as pa


class ColumnKind(StrEnum):
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    STRING = "string"
    DATETIME = "datetime"
    DATE = "date"
    JSON = "json"
    UUID = "uuid"
    BINARY = "binary"


@dataclass(frozen=True, slots=True)
class ExportColumn:
    name: str
    kind: ColumnKind
    nullable: bool = True


ARROW_TYPES: dict[ColumnKind, pa.DataType] = {
    ColumnKind.INTEGER: pa.int64(),
    ColumnKind.FLOAT: pa.float64(),
    ColumnKind.BOOLEAN: pa.bool_(),
    ColumnKind.STRING: pa.string(),
    ColumnKind.DATETIME: pa.timestamp("us", tz="UTC"),
    ColumnKind.DATE: pa.date32(),
    # JSON documents and UUIDs are strings in Parquet: every reader understands them; the
    # field metadata says what they hold.
    ColumnKind.JSON: pa.string(),
    ColumnKind.UUID: pa.string(),
    ColumnKind.BINARY: pa.binary(),
}


def arrow_schema(columns: Sequence[ExportColumn]) -> pa.Schema:
    return pa.schema(
        [
            pa.field(
                column.name,
                ARROW_TYPES[column.kind],
                nullable=column.nullable,
                metadata={"gati.kind": column.kind.value},
            )
            for column in columns
        ]
    )


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso_utc(value: datetime) -> str:
    """``2025-06-22T11:30:15Z`` (microseconds only when present), the seed's timestamp form."""
    value = _utc(value)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"cannot export a value of type {type(value).__name__}")


JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS


def dumps_json(value: Any) -> bytes:
    return orjson.dumps(value, default=_json_default, option=JSON_OPTIONS)


def _embed_json_text(value: Any) -> Any:
    # JSON columns selected as text (the fast path) are embedded as they are, not re-parsed.
    if isinstance(value, str | bytes):
        return orjson.Fragment(value)
    return value


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return dumps_json(value).decode("utf-8")


# --- JSON: one object per event, JSON columns embedded as documents -------------------------


def _json_value_converter(kind: ColumnKind) -> Callable[[Any], Any] | None:
    if kind is ColumnKind.JSON:
        return _embed_json_text
    if kind is ColumnKind.BINARY:
        return lambda v: base64.b64encode(bytes(v)).decode("ascii")
    if kind is ColumnKind.UUID:
        return str
    if kind is ColumnKind.DATETIME:
        return lambda v: iso_utc(v) if isinstance(v, datetime) else v
    return None


def json_row_converters(columns: Sequence[ExportColumn]) -> list[Callable[[Any], Any] | None]:
    return [_json_value_converter(column.kind) for column in columns]


# --- CSV: every value as text; empty field for NULL ---------------------------------------


def _csv_value(kind: ColumnKind) -> Callable[[Any], str]:
    if kind is ColumnKind.DATETIME:
        return lambda v: iso_utc(v) if isinstance(v, datetime) else str(v)
    if kind is ColumnKind.DATE:
        return lambda v: v.isoformat() if isinstance(v, date) else str(v)
    if kind is ColumnKind.BOOLEAN:
        return lambda v: "true" if v else "false"
    if kind is ColumnKind.JSON:
        return _json_text
    if kind is ColumnKind.BINARY:
        return lambda v: base64.b64encode(bytes(v)).decode("ascii")
    if kind is ColumnKind.FLOAT:
        return repr
    return str


def csv_row_converters(columns: Sequence[ExportColumn]) -> list[Callable[[Any], str]]:
    return [_csv_value(column.kind) for column in columns]


# --- Parquet: one Arrow array per column per chunk -----------------------------------------


def _arrow_values(kind: ColumnKind, values: Sequence[Any]) -> Sequence[Any]:
    # Aware datetimes are converted to UTC by Arrow itself, naive ones are taken as UTC: no
    # per-value Python work for timestamps.
    if kind is ColumnKind.JSON:
        return [v if v is None or v.__class__ is str else _json_text(v) for v in values]
    if kind is ColumnKind.UUID:
        return [v if v is None or v.__class__ is str else str(v) for v in values]
    if kind is ColumnKind.FLOAT:
        return [v if v is None or v.__class__ is float else float(v) for v in values]
    return values


def arrow_batch(
    columns: Sequence[ExportColumn], schema: pa.Schema, rows: Sequence[Sequence[Any]]
) -> pa.RecordBatch:
    transposed = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    arrays = [
        pa.array(_arrow_values(column.kind, values), type=schema.field(index).type)
        for index, (column, values) in enumerate(zip(columns, transposed, strict=True))
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


__all__ = [
    "ARROW_TYPES",
    "ColumnKind",
    "ExportColumn",
    "arrow_batch",
    "arrow_schema",
    "csv_row_converters",
    "dumps_json",
    "iso_utc",
    "json_row_converters",
]
