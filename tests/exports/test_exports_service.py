"""Scheduled and manual exports from the database (SQLite and PostgreSQL) to a real S3 server
process (moto) and a local folder; every file is read back and compared row by row."""

from __future__ import annotations

import asyncio
import csv
import gzip
import hashlib
import io
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from gati.db.engine import Database
from gati.exports import service
from gati.exports.crypto import CredentialCipher
from gati.exports.destinations import Destination, LocalFolderDestination, S3Destination, S3Options
from gati.exports.models import ExportDestination, ExportRun
from gati.exports.retry import RetryPolicy
from gati.exports.schemas import ExportConfigIn
from gati.exports.service import ExportContext
from gati.projects import repository as projects
from tests.exports.factories import T0, assert_rows_equal, insert_web_events
from tests.exports.s3util import free_port

HOUR = timedelta(hours=1)


def make_context(tmp_path: Path, *, attempts: int = 2, chunk_rows: int = 700) -> ExportContext:
    return ExportContext(
        cipher=CredentialCipher("export-tests-key"),
        local_root=(tmp_path / "exports").resolve(),
        spool_dir=tmp_path / "spool",
        settle=timedelta(minutes=2),
        chunk_rows=chunk_rows,
        max_windows=48,
        policy=RetryPolicy(attempts=attempts, initial_delay=0.01, max_delay=0.05, jitter=0.01),
    )


def s3_config(options: S3Options, **overrides: Any) -> dict[str, Any]:
    body = {
        "type": "s3",
        "bucket": options.bucket,
        "prefix": options.prefix,
        "region": options.region,
        "endpoint_url": options.endpoint_url,
        "path_style": True,
        "access_key_id": options.access_key_id,
        "secret_access_key": options.secret_access_key,
    }
    body.update(overrides)
    return body


async def configure(db: Database, ctx: ExportContext, project_id: int, body: dict[str, Any]):  # type: ignore[no-untyped-def]
    async with db.session() as session:
        project = await projects.get_by_id(session, project_id)
        assert project is not None
        return await service.write_config(session, project, ExportConfigIn(**body), ctx)


def read_rows(data: bytes, fmt: str, gz: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Parse an exported file: (rows, export_metadata)."""
    if gz:
        data = gzip.decompress(data)
    if fmt == "json":
        document = orjson.loads(data)
        return document["events"], document["export_metadata"]
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))), {}
    parquet = pq.ParquetFile(io.BytesIO(data))
    meta = orjson.loads(parquet.schema_arrow.metadata[b"export_metadata"])
    return parquet.read().to_pylist(), meta


def in_window(rows: list[dict[str, Any]], start: datetime, end: datetime) -> list[dict[str, Any]]:
    chosen = [r for r in rows if start <= r["received_at"] < end]
    return sorted(chosen, key=lambda r: (r["received_at"], r["id"]))


async def assert_window_stored(
    destination: Destination,
    key_base: str,
    *,
    fmt: str,
    gz: bool,
    stored: list[dict[str, Any]],
    site: str,
) -> dict[str, Any]:
    manifest = orjson.loads(await destination.read_bytes(f"{key_base}.manifest.json"))
    (entry,) = manifest["files"]
    ext = f"{fmt}.gz" if gz else fmt
    assert entry["key"] == f"{key_base}.{ext}"
    data = await destination.read_bytes(entry["key"])
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert entry["bytes"] == len(data)
    assert entry["rows"] == len(stored)
    rows, meta = read_rows(data, fmt, gz)
    if meta:
        assert meta["event_count"] == len(stored)
        assert meta["site_id"] == site
    if rows:
        assert_rows_equal(rows, stored, site=site, textual=fmt == "csv")
    else:
        assert stored == []
    return manifest


FORMATS = [("parquet", False), ("json", True), ("csv", False)]


@pytest.mark.parametrize(("fmt", "gz"), FORMATS, ids=["parquet", "json-gzip", "csv"])
async def test_scheduled_windows_go_to_s3_and_a_folder_exactly_once(
    db: Database,
    make_project: Any,
    s3_bucket: S3Options,
    tmp_path: Path,
    fmt: str,
    gz: bool,
) -> None:
    project = await make_project("Example")
    ctx = make_context(tmp_path)
    stored = await insert_web_events(
        db, project["id"], start=T0, count=1500, spacing=timedelta(seconds=2.4)
    )
    stored += await insert_web_events(
        db,
        project["id"],
        start=T0 + 2 * HOUR,
        count=10,
        spacing=timedelta(minutes=5),
        first_index=5000,
    )
    # Before the start and in a window that is not closed yet: not exported now.
    stored += await insert_web_events(
        db,
        project["id"],
        start=T0 - timedelta(seconds=1),
        count=1,
        spacing=HOUR,
        first_index=9000,
    )
    stored += await insert_web_events(
        db, project["id"], start=T0 + 3 * HOUR, count=1, spacing=HOUR, first_index=9001
    )
    other = await make_project("Other")  # another tenant's events never leak in
    await insert_web_events(db, other["id"], start=T0, count=50, spacing=timedelta(minutes=1))

    await configure(
        db,
        ctx,
        project["id"],
        {
            "format": fmt,
            "gzip": gz,
            "schedule": "hourly",
            "primary": {**s3_config(s3_bucket), "start_from": T0.isoformat()},
            "backup": {"type": "local", "path": "backup", "prefix": "raw", "start_from": T0},
        },
    )
    now = T0 + 3 * HOUR + timedelta(minutes=5)
    runs = await service.run_scheduled_for_project(db, ctx, project_id=project["id"], now=now)
    assert [(r.window_start, r.status) for r in runs] == [
        (T0, "succeeded"),
        (T0 + HOUR, "succeeded"),
        (T0 + 2 * HOUR, "succeeded"),
    ]
    assert [r.rows for r in runs] == [1500, 0, 10]

    s3 = S3Destination(s3_bucket)
    local = LocalFolderDestination(ctx.local_root / "backup", prefix="raw")
    for hour in range(3):
        start = T0 + hour * HOUR
        window_rows = in_window(stored, start, start + HOUR)
        stamp = f"{start:%Y%m%dT%H%M%SZ}-{start + HOUR:%Y%m%dT%H%M%SZ}"
        day = f"{start:%Y/%m/%d}"
        slug = project["slug"]
        for destination, prefix in ((s3, "analytics"), (local, "raw")):
            await assert_window_stored(
                destination,
                f"{prefix}/{slug}/{day}/{stamp}",
                fmt=fmt,
                gz=gz,
                stored=window_rows,
                site=slug,
            )

    async with db.read_session() as session:
        marks = {
            d.role: d.watermark
            for d in (await session.execute(select(ExportDestination))).scalars()
        }
    assert marks == {"primary": T0 + 3 * HOUR, "backup": T0 + 3 * HOUR}

    # The same tick again, and a later one in the same hour: nothing is exported twice.
    assert await service.run_scheduled_for_project(db, ctx, project_id=project["id"], now=now) == []
    later = now + timedelta(minutes=30)
    assert (
        await service.run_scheduled_for_project(db, ctx, project_id=project["id"], now=later) == []
    )
    async with db.read_session() as session:
        assert (await session.execute(select(func.count()).select_from(ExportRun))).scalar() == 3


async def test_two_schedulers_at_once_export_each_window_once(
    db: Database, make_project: Any, tmp_path: Path
) -> None:
    project = await make_project()
    ctx = make_context(tmp_path, chunk_rows=50)
    await insert_web_events(db, project["id"], start=T0, count=400, spacing=timedelta(seconds=30))
    await configure(
        db,
        ctx,
        project["id"],
        {
            "format": "csv",
            "schedule": "hourly",
            "primary": {"type": "local", "path": "a", "start_from": T0},
            "backup": {"type": "local", "path": "b", "start_from": T0},
        },
    )
    now = T0 + 4 * HOUR
    first, second = await asyncio.gather(
        service.run_scheduled_for_project(db, ctx, project_id=project["id"], now=now),
        service.run_scheduled_for_project(db, ctx, project_id=project["id"], now=now),
    )
    async with db.read_session() as session:
        runs = list((await session.execute(select(ExportRun))).scalars())
        destinations = list((await session.execute(select(ExportDestination))).scalars())
    # Every (window, destination) pair was exported by exactly one of the two.
    pairs = [(r.window_start, d["role"]) for r in runs for d in r.destinations]
    assert sorted(pairs) == sorted(
        {(T0 + h * HOUR, role) for h in range(3) for role in ("primary", "backup")}
    )
    assert len(first) + len(second) == len(runs)
    assert all(d.watermark == T0 + 3 * HOUR for d in destinations)
    assert all(d.lease_owner is None for d in destinations)


async def test_a_failing_backup_is_retried_reported_and_caught_up_later(
    db: Database, make_project: Any, s3_bucket: S3Options, tmp_path: Path
) -> None:
    project = await make_project()
    ctx = make_context(tmp_path, attempts=3)
    stored = await insert_web_events(
        db, project["id"], start=T0, count=30, spacing=timedelta(minutes=5)
    )
    unreachable = f"http://127.0.0.1:{free_port()}"
    body = {
        "format": "parquet",
        "schedule": "hourly",
        "primary": {"type": "local", "path": "primary", "start_from": T0},
        "backup": {**s3_config(s3_bucket, endpoint_url=unreachable), "start_from": T0},
    }
    await configure(db, ctx, project["id"], body)
    now = T0 + 2 * HOUR + timedelta(minutes=10)
    runs = await service.run_scheduled_for_project(db, ctx, project_id=project["id"], now=now)
    # The primary goes on; the backup stops at its first failing window (order is kept).
    assert [r.status for r in runs] == ["partial", "succeeded"]
    failed = {d["role"]: d for d in runs[0].destinations}["backup"]
    assert failed["status"] == "failed"
    assert failed["attempts"] == 3  # retried with backoff
    assert len(failed["errors"]) == 3 and "connect" in failed["errors"][0].lower()
    assert [d["role"] for d in runs[1].destinations] == ["primary"]

    async with db.read_session() as session:
        project_row = await projects.get_by_id(session, project["id"])
        assert project_row is not None
        status = await service.read_status(session, project_row, ctx, now=now)
    states = {d.role: d for d in status.destinations}
    assert states["primary"].state == "up_to_date"
    assert states["primary"].watermark == T0 + 2 * HOUR
    assert states["backup"].state == "failing"
    assert states["backup"].watermark == T0
    assert states["backup"].pending_windows == 2
    assert states["backup"].consecutive_failures == 1
    assert "connect" in (states["backup"].last_error or "").lower()
    assert any("backup" in error for error in status.errors)

    # The backup's endpoint is fixed (credentials kept): the next run catches it up, in order,
    # and the primary is not exported again.
    del body["backup"]["access_key_id"], body["backup"]["secret_access_key"]
    body["backup"]["endpoint_url"] = s3_bucket.endpoint_url
    config = await configure(db, ctx, project["id"], body)
    assert config.backup is not None and config.backup.has_credentials
    runs = await service.run_scheduled_for_project(db, ctx, project_id=project["id"], now=now)
    assert [(r.window_start, [d["role"] for d in r.destinations]) for r in runs] == [
        (T0, ["backup"]),
        (T0 + HOUR, ["backup"]),
    ]
    s3 = S3Destination(s3_bucket)
    for hour in range(2):
        start = T0 + hour * HOUR
        stamp = f"{start:%Y%m%dT%H%M%SZ}-{start + HOUR:%Y%m%dT%H%M%SZ}"
        await assert_window_stored(
            s3,
            f"analytics/{project['slug']}/{start:%Y/%m/%d}/{stamp}",
            fmt="parquet",
            gz=False,
            stored=in_window(stored, start, start + HOUR),
            site=project["slug"],
        )


async def test_product_events_get_their_own_file_in_the_manifest(
    db: Database, make_project: Any, tmp_path: Path
) -> None:
    from sqlalchemy import insert

    from gati.events.models import Event

    project = await make_project()
    ctx = make_context(tmp_path)
    await insert_web_events(db, project["id"], start=T0, count=3, spacing=timedelta(minutes=1))
    product = [
        {
            "project_id": project["id"],
            "id": f"evt-{i}",
            "event_type": "purchase",
            "timestamp": T0 + timedelta(minutes=i),
            "received_at": T0 + timedelta(minutes=i, seconds=1),
            "properties": {"amount": i * 10},
        }
        for i in range(4)
    ]
    async with db.session() as session:
        await session.execute(insert(Event), product)
    await configure(
        db,
        ctx,
        project["id"],
        {"format": "json", "schedule": "hourly", "primary": {"type": "local", "start_from": T0}},
    )
    (run,) = await service.run_scheduled_for_project(
        db, ctx, project_id=project["id"], now=T0 + HOUR + timedelta(minutes=3)
    )
    assert run.status == "succeeded" and run.rows == 7
    parts = {f["part"]: f for f in (run.manifest or {})["files"]}
    assert set(parts) == {"web", "product"}
    assert parts["product"]["key"].endswith("-20250622T100000Z.product.json")
    folder = LocalFolderDestination(ctx.local_root)
    document = orjson.loads(await folder.read_bytes(parts["product"]["key"]))
    assert document["export_metadata"]["event_count"] == 4
    assert [e["event_id"] for e in document["events"]] == [p["id"] for p in product]
    assert [e["properties"] for e in document["events"]] == [p["properties"] for p in product]
