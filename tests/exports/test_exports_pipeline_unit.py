"""A window exported to S3 (moto server) and a local folder; files read back row by row."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import io
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow.parquet as pq

from gati.exports.columns import iso_utc
from gati.exports.destinations import LocalFolderDestination, S3Destination, S3Options
from gati.exports.pipeline import NamedDestination, export_window, static_part
from gati.exports.retry import RetryPolicy
from gati.exports.writers import ExportFormat, ExportMetadata
from tests.exports.export_rows import COLUMNS, END, START, chunked, make_rows

FAST = RetryPolicy(attempts=2, initial_delay=0.01, max_delay=0.02, jitter=0.01)


def meta(count: int) -> ExportMetadata:
    return ExportMetadata(
        export_id="exp_pipe",
        export_time=datetime(2025, 6, 22, 12, 1, tzinfo=UTC),
        start=START,
        end=END,
        event_count=count,
    )


async def test_parquet_window_to_s3_primary_and_local_backup(
    s3_bucket: S3Options, tmp_path: Path
) -> None:
    rows = make_rows(2500)
    s3 = S3Destination(s3_bucket)
    local = LocalFolderDestination(tmp_path / "backup", prefix="raw")
    result = await export_window(
        export_id="exp_pipe",
        site="example-com",
        fmt=ExportFormat.PARQUET,
        gzip_output=False,
        parts=[static_part("web", COLUMNS, chunked(rows, 1000), count=len(rows))],
        metadata=meta(len(rows)),
        destinations=[NamedDestination("primary", s3), NamedDestination("backup", local)],
        policy=FAST,
        spool_dir=tmp_path / "spool",
    )
    assert result.ok
    assert result.write.rows == 2500
    primary, backup = result.outcomes
    assert primary.key == (
        "analytics/example-com/2025/06/22/20250622T110000Z-20250622T120000Z.parquet"
    )
    assert backup.key == "raw/example-com/2025/06/22/20250622T110000Z-20250622T120000Z.parquet"
    assert primary.manifest_key.endswith("20250622T110000Z-20250622T120000Z.manifest.json")
    assert primary.attempts == 1 and primary.errors == []
    assert list((tmp_path / "spool").iterdir()) == []  # spool file removed

    for outcome, destination in ((primary, s3), (backup, local)):
        data = await destination.read_bytes(outcome.key)
        assert hashlib.sha256(data).hexdigest() == result.write.sha256
        table = pq.read_table(io.BytesIO(data))
        assert table.num_rows == 2500
        for got, row in zip(table.to_pylist(), rows, strict=True):
            assert got["id"] == row[0]
            assert got["event_id"] == str(row[1])
            assert got["timestamp"] == row[6]
            assert got["url"] == row[7]
            assert (
                None if got["raw_event_data"] is None else orjson.loads(got["raw_event_data"])
            ) == row[11]
        manifest = orjson.loads(await destination.read_bytes(outcome.manifest_key))
        assert manifest["export_id"] == "exp_pipe"
        assert manifest["time_range"] == {
            "start": "2025-06-22T11:00:00Z",
            "end": "2025-06-22T12:00:00Z",
        }
        assert manifest["total_rows"] == 2500
        (entry,) = manifest["files"]
        columns = entry.pop("columns")
        assert entry == {
            "key": outcome.key,
            "part": "web",
            "rows": 2500,
            "bytes": len(data),
            "sha256": result.write.sha256,
            "format": "parquet",
            "content_type": "application/vnd.apache.parquet",
            "gzip": False,
        }
        assert [c["name"] for c in columns] == [c.name for c in COLUMNS]
        assert columns[6] == {"name": "timestamp", "type": "datetime"}


async def test_gzip_csv_and_json_windows_read_back(s3_bucket: S3Options, tmp_path: Path) -> None:
    rows = make_rows(500)
    s3 = S3Destination(s3_bucket)
    for fmt in (ExportFormat.CSV, ExportFormat.JSON):
        result = await export_window(
            export_id="exp_pipe",
            site="example-com",
            fmt=fmt,
            gzip_output=True,
            parts=[static_part("web", COLUMNS, chunked(rows, 128), count=len(rows))],
            metadata=meta(len(rows)),
            destinations=[NamedDestination("primary", s3)],
            policy=FAST,
        )
        (outcome,) = result.outcomes
        assert outcome.ok and outcome.key.endswith(f".{fmt.value}.gz")
        text = gzip.decompress(await s3.read_bytes(outcome.key))
        if fmt is ExportFormat.CSV:
            got = list(csv.DictReader(io.StringIO(text.decode(), newline="")))
            assert [int(r["id"]) for r in got] == [r[0] for r in rows]
            assert [r["timestamp"] for r in got] == [iso_utc(r[6]) for r in rows]
            assert [r["path"] for r in got] == [r[8] for r in rows]
        else:
            document = orjson.loads(text)
            assert document["export_metadata"]["event_count"] == 500
            assert [e["id"] for e in document["events"]] == [r[0] for r in rows]
            assert [e["raw_event_data"] for e in document["events"]] == [r[11] for r in rows]


async def test_failing_backup_does_not_hold_back_the_primary(
    s3_bucket: S3Options, tmp_path: Path
) -> None:
    broken = S3Destination(dataclasses.replace(s3_bucket, bucket="missing-bucket"))
    local = LocalFolderDestination(tmp_path / "primary")
    result = await export_window(
        export_id="exp_pipe",
        site="example-com",
        fmt=ExportFormat.CSV,
        gzip_output=False,
        parts=[static_part("web", COLUMNS, chunked(make_rows(10), 4), count=10)],
        metadata=meta(10),
        destinations=[NamedDestination("primary", local), NamedDestination("backup", broken)],
        policy=FAST,
    )
    primary, backup = result.outcomes
    assert primary.ok
    assert not backup.ok and backup.permanent_failure
    assert backup.attempts == 1 and "NoSuchBucket" in backup.errors[0]
    assert not result.ok
