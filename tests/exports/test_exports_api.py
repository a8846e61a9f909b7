"""/export/* over HTTP on both databases: configuration, credentials, runs, status, access."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from gati.db.engine import Database
from gati.exports.crypto import CredentialCipher
from gati.exports.destinations import S3Destination, S3Options
from gati.exports.models import ExportDestination
from tests.exports.factories import T0, assert_rows_equal, insert_web_events

ENCRYPTION_KEY = "api-test-encryption-key"


def export_settings(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "export_local_root": tmp_path / "exports",
        "export_spool_dir": tmp_path / "spool",
        "export_retry_attempts": 2,
        "export_retry_initial_seconds": 0.01,
        "export_retry_max_seconds": 0.05,
        "encryption_key": ENCRYPTION_KEY,
        **extra,
    }


def s3_body(options: S3Options) -> dict[str, Any]:
    return {
        "type": "s3",
        "bucket": options.bucket,
        "prefix": "client-exports",
        "region": options.region,
        "endpoint_url": options.endpoint_url,
        "path_style": True,
        "access_key_id": options.access_key_id,
        "secret_access_key": options.secret_access_key,
    }


async def test_config_round_trip_never_returns_credentials(
    make_app: Any, db: Database, s3_bucket: S3Options, tmp_path: Path
) -> None:
    async with make_app(**export_settings(tmp_path)) as client:
        empty = await client.get("/export/config")
        assert empty.status_code == 200
        assert empty.json()["configured"] is False

        body = {
            "format": "csv",
            "gzip": True,
            "schedule": "daily",
            "primary": s3_body(s3_bucket),
            "backup": {"type": "local", "path": "backups", "prefix": "gati"},
        }
        put = await client.put("/export/config", json=body)
        assert put.status_code == 200, put.text
        got = await client.get("/export/config")
    for response in (put, got):
        text = response.text
        assert s3_bucket.secret_access_key not in text
        assert s3_bucket.access_key_id not in text
        config = response.json()
        assert config["format"] == "csv" and config["gzip"] is True
        assert config["schedule"] == "daily"
        primary = config["primary"]
        assert primary["type"] == "s3" and primary["has_credentials"] is True
        assert primary["options"]["bucket"] == s3_bucket.bucket
        assert primary["options"]["path_style"] is True
        assert set(primary["options"]) == {
            "bucket",
            "prefix",
            "region",
            "endpoint_url",
            "path_style",
        }
        assert config["backup"]["type"] == "local"
        assert config["backup"]["has_credentials"] is False
        assert config["backup"]["target"].startswith("file://")
        # The watermark starts at the current window (daily: today 00:00 UTC).
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        assert datetime.fromisoformat(primary["watermark"]) == today

    async with db.read_session() as session:
        row = (
            await session.execute(
                select(ExportDestination).where(ExportDestination.role == "primary")
            )
        ).scalar_one()
    assert row.credentials_encrypted is not None
    assert s3_bucket.secret_access_key not in row.credentials_encrypted
    assert s3_bucket.secret_access_key not in orjson.dumps(row.options).decode()
    assert CredentialCipher(ENCRYPTION_KEY).decrypt(row.credentials_encrypted) == {
        "access_key_id": s3_bucket.access_key_id,
        "secret_access_key": s3_bucket.secret_access_key,
        "session_token": None,
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"format": "parquet", "gzip": True, "schedule": "off"}, "gzip"),
        ({"schedule": "hourly"}, "primary"),
        ({"schedule": "off", "backup": {"type": "local"}}, "backup"),
        ({"schedule": "weekly", "primary": {"type": "local"}}, "schedule"),
        ({"schedule": "hourly", "primary": {"type": "ftp"}}, "primary"),
        (
            {
                "schedule": "hourly",
                "primary": {"type": "s3", "bucket": "b", "endpoint_url": "ftp://x"},
            },
            "primary.s3.endpoint_url",
        ),
        ({"schedule": "hourly", "primary": {"type": "local", "path": "../../etc"}}, "primary.path"),
        ({"schedule": "hourly", "primary": {"type": "local", "path": "/etc"}}, "primary.path"),
        (
            {"schedule": "hourly", "primary": {"type": "local", "prefix": "a/../b"}},
            "primary.local.prefix",
        ),
    ],
)
async def test_bad_configurations_are_refused_naming_the_field(
    make_app: Any, tmp_path: Path, body: dict[str, Any], field: str
) -> None:
    async with make_app(**export_settings(tmp_path)) as client:
        response = await client.put("/export/config", json=body)
        assert response.status_code == 422, response.text
        assert field in response.text
        assert (await client.get("/export/config")).json()["configured"] is False
    assert not (tmp_path / "etc").exists()


async def test_manual_backfill_reads_back_and_leaves_watermarks_alone(
    make_app: Any, db: Database, make_project: Any, s3_bucket: S3Options, tmp_path: Path
) -> None:
    project = await make_project("Backfill")
    stored = await insert_web_events(
        db, project["id"], start=T0, count=300, spacing=timedelta(seconds=40)
    )
    async with make_app(**export_settings(tmp_path)) as client:
        params = {"project": project["slug"]}
        config = await client.put(
            "/export/config",
            params=params,
            json={"format": "json", "schedule": "hourly", "primary": s3_body(s3_bucket)},
        )
        assert config.status_code == 200, config.text
        watermark = config.json()["primary"]["watermark"]
        since, until = T0 + timedelta(minutes=30), T0 + timedelta(hours=2)
        response = await client.post(
            "/export/run",
            params={
                **params,
                "format": "parquet",
                "since": since.isoformat(),
                "until": until.isoformat(),
                "wait": "true",
            },
        )
        assert response.status_code == 200, response.text
        (run,) = response.json()["runs"]
        assert run["status"] == "succeeded" and run["trigger"] == "manual"
        assert run["format"] == "parquet"
        expected = sorted(
            (r for r in stored if since <= r["received_at"] < until),
            key=lambda r: (r["received_at"], r["id"]),
        )
        assert run["rows"] == len(expected) == 135
        (destination,) = run["destinations"]
        assert destination["key"] == (
            f"client-exports/{project['slug']}/2025/06/22/20250622T093000Z-20250622T110000Z.parquet"
        )
        data = await S3Destination(s3_bucket).read_bytes(destination["key"])
        rows = pq.read_table(io.BytesIO(data)).to_pylist()
        assert_rows_equal(rows, expected, site=project["slug"])

        after = (await client.get("/export/config", params=params)).json()
        assert after["primary"]["watermark"] == watermark
        status = (await client.get("/export/status", params=params)).json()
        assert status["last_runs"][0]["id"] == run["id"]
        detail = await client.get(f"/export/runs/{run['id']}", params=params)
        assert detail.status_code == 200 and detail.json()["sha256"] == run["sha256"]


async def test_background_run_is_followed_through_status(
    make_app: Any, db: Database, make_project: Any, tmp_path: Path
) -> None:
    project = await make_project("Background")
    await insert_web_events(db, project["id"], start=T0, count=50, spacing=timedelta(seconds=5))
    async with make_app(**export_settings(tmp_path)) as client:
        params = {"project": project["slug"]}
        await client.put(
            "/export/config",
            params=params,
            json={"format": "csv", "schedule": "off", "primary": {"type": "local", "path": "bg"}},
        )
        response = await client.post(
            "/export/run",
            params={
                **params,
                "since": T0.isoformat(),
                "until": (T0 + timedelta(hours=1)).isoformat(),
            },
        )
        assert response.status_code == 202
        (run,) = response.json()["runs"]
        assert run["status"] == "running"
        deadline = time.monotonic() + 30
        while True:
            status = (await client.get("/export/status", params=params)).json()
            current = next(r for r in status["last_runs"] if r["id"] == run["id"])
            if current["status"] != "running":
                break
            assert time.monotonic() < deadline, "background export did not finish"
            await asyncio.sleep(0.05)  # polling a background task, with a deadline
        assert current["status"] == "succeeded" and current["rows"] == 50
        assert status["next_run_at"] is None  # schedule off
        path = tmp_path / "exports" / "bg" / current["destinations"][0]["key"]
        with path.open(newline="") as handle:
            assert len(list(csv.DictReader(handle))) == 50


async def test_run_without_configuration_or_with_bad_range(make_app: Any, tmp_path: Path) -> None:
    async with make_app(**export_settings(tmp_path)) as client:
        since = T0.isoformat()
        response = await client.post("/export/run", params={"since": since, "wait": "true"})
        assert response.status_code == 409
        assert response.json()["error"] == "export_not_configured"
        await client.put("/export/config", json={"schedule": "off", "primary": {"type": "local"}})
        bad = await client.post(
            "/export/run", params={"since": since, "until": T0.isoformat(), "wait": "true"}
        )
        assert bad.status_code == 422 and "until" in bad.json()["detail"]
        odd = await client.post("/export/run", params={"format": "xml", "since": since})
        assert odd.status_code == 422 and "format" in odd.text


async def test_collected_events_are_exported_with_the_seed_fields(
    make_app: Any, make_project: Any, tmp_path: Path
) -> None:
    project = await make_project("Collected")
    async with make_app(**export_settings(tmp_path)) as client:
        sent = []
        for i in range(3):
            event = {
                "eventType": "pageview",
                "sessionId": f"sess_abc{i}",
                "visitorId": "vis_xyz789",
                "siteId": project["slug"],
                "timestamp": "2025-06-22T12:00:00Z",
                "url": f"https://example.com/page/{i}?utm_source=google",
                "path": f"/page/{i}",
                "attribution": {"utmParams": {"utm_source": "google", "utm_medium": "cpc"}},
            }
            response = await client.post("/collect", json=event)
            assert response.status_code == 200, response.text
            sent.append((response.json()["event_id"], event))
        await client.put(
            "/export/config",
            params={"project": project["slug"]},
            json={"format": "json", "schedule": "off", "primary": {"type": "local", "path": "c"}},
        )
        now = datetime.now(UTC)
        response = await client.post(
            "/export/run",
            params={
                "project": project["slug"],
                "since": (now - timedelta(hours=1)).isoformat(),
                "until": (now + timedelta(minutes=1)).isoformat(),
                "wait": "true",
            },
        )
        (run,) = response.json()["runs"]
        assert run["status"] == "succeeded" and run["rows"] == 3
    document = orjson.loads(
        (tmp_path / "exports" / "c" / run["destinations"][0]["key"]).read_bytes()
    )
    assert document["export_metadata"]["event_count"] == 3
    events = sorted(document["events"], key=lambda e: e["path"])
    for got, (event_id, event) in zip(events, sent, strict=True):
        assert got["event_id"] == event_id
        assert got["event_type"] == "pageview"
        assert got["session_id"] == event["sessionId"]
        assert got["visitor_id"] == "vis_xyz789"
        assert got["site_id"] == project["slug"]
        assert got["timestamp"] == "2025-06-22T12:00:00Z"
        assert got["url"] == event["url"] and got["path"] == event["path"]
        assert got["utm_source"] == "google"
        assert got["raw_event_data"]["attribution"] == event["attribution"]


async def test_only_the_projects_secret_key_or_members_see_and_change_exports(
    make_app: Any, make_project: Any, production_settings: dict[str, Any], tmp_path: Path
) -> None:
    a = await make_project("Tenant A")
    b = await make_project("Tenant B")
    settings = {**production_settings, **export_settings(tmp_path)}
    body = {"schedule": "off", "primary": {"type": "local", "path": "x"}}
    async with make_app(**settings) as client:
        assert (await client.get("/export/config")).status_code == 401
        assert (await client.put("/export/config", json=body)).status_code == 401
        public = {"Authorization": f"Bearer {a['public_key']}"}
        assert (await client.get("/export/config", headers=public)).status_code == 403
        assert (await client.put("/export/config", json=body, headers=public)).status_code == 403
        assert (await client.post("/export/run", headers=public)).status_code == 403

        key_a = {"Authorization": f"Bearer {a['secret_key']}"}
        key_b = {"X-API-Key": b["secret_key"]}
        put = await client.put("/export/config", json=body, headers=key_a)
        assert put.status_code == 200 and put.json()["project_id"] == a["id"]
        # B's key can neither read nor change A's exports, nor run them.
        for method, path in (
            ("GET", "/export/config"),
            ("GET", "/export/status"),
            ("POST", "/export/run"),
        ):
            response = await client.request(
                method, path, params={"project": a["slug"]}, headers=key_b
            )
            assert response.status_code == 404, (method, path)
        response = await client.put(
            "/export/config", params={"project": a["id"]}, json=body, headers=key_b
        )
        assert response.status_code == 404
        own = await client.get("/export/config", headers=key_b)
        assert own.json()["project_id"] == b["id"] and own.json()["configured"] is False
        assert (await client.get("/export/config", headers=key_a)).json()["configured"] is True
