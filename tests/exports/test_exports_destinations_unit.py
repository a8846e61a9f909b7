"""Destinations against a local folder and a real S3-compatible server process (moto)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from gati.exports.destinations import (
    DestinationError,
    LocalFolderDestination,
    MiB,
    S3Destination,
    S3Options,
)
from gati.exports.retry import RetriesExhaustedError, RetryPolicy, call_with_retries
from tests.exports.s3util import free_port, s3_client

FAST = RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05, jitter=0.01)


async def test_local_folder_places_files_atomically(tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(b"x" * 10_000)
    destination = LocalFolderDestination(tmp_path / "out", prefix="/exports//raw/")
    assert destination.prefix == "exports/raw"
    await destination.check()
    await destination.upload_file(source, "exports/raw/a/b/file.bin", content_type="x", metadata={})
    await destination.put_bytes(b"{}", "exports/raw/a/b/file.manifest.json", content_type="x")
    folder = tmp_path / "out" / "exports" / "raw" / "a" / "b"
    assert sorted(p.name for p in folder.iterdir()) == ["file.bin", "file.manifest.json"]
    assert await destination.read_bytes("exports/raw/a/b/file.bin") == source.read_bytes()


async def test_local_folder_refuses_keys_outside_it(tmp_path: Path) -> None:
    destination = LocalFolderDestination(tmp_path / "out")
    with pytest.raises(DestinationError, match="leaves"):
        await destination.put_bytes(b"x", "../escape.txt", content_type="x")
    assert not (tmp_path / "escape.txt").exists()


async def test_local_folder_that_cannot_be_written_fails_permanently(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root ignores permission bits; a file where the folder should be fails just as well
        (tmp_path / "blocked").write_text("a file, not a folder")
        destination = LocalFolderDestination(tmp_path / "blocked" / "out")
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        destination = LocalFolderDestination(locked / "out")
    with pytest.raises(RetriesExhaustedError) as info:
        await call_with_retries(
            lambda: destination.put_bytes(b"x", "k.txt", content_type="x"), policy=FAST
        )
    assert info.value.log.attempts >= 1
    assert info.value.log.errors


async def test_s3_upload_with_custom_endpoint_and_path_style(
    s3_bucket: S3Options, tmp_path: Path
) -> None:
    destination = S3Destination(s3_bucket)
    await destination.check()
    source = tmp_path / "small.csv"
    source.write_bytes(b"id\n1\n2\n")
    await destination.upload_file(
        source, "analytics/site/f.csv", content_type="text/csv", metadata={"sha256": "abc"}
    )
    head = s3_client(s3_bucket.endpoint_url or "").head_object(
        Bucket=s3_bucket.bucket, Key="analytics/site/f.csv"
    )
    assert head["ContentType"] == "text/csv"
    assert head["Metadata"] == {"sha256": "abc"}
    assert await destination.read_bytes("analytics/site/f.csv") == b"id\n1\n2\n"
    assert "/" + s3_bucket.bucket + "/" in destination.client.generate_presigned_url(
        "get_object", Params={"Bucket": s3_bucket.bucket, "Key": "k"}
    )  # path-style addressing: the bucket is in the path, not the host


async def test_s3_large_file_goes_up_as_multipart(s3_bucket: S3Options, tmp_path: Path) -> None:
    options = dataclasses.replace(
        s3_bucket, multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB
    )
    destination = S3Destination(options)
    source = tmp_path / "big.bin"
    data = os.urandom(12 * MiB)
    source.write_bytes(data)
    await destination.upload_file(source, "big.bin", content_type="x", metadata={})
    head = s3_client(options.endpoint_url or "").head_object(Bucket=options.bucket, Key="big.bin")
    assert head["ETag"].strip('"').endswith("-3")  # three parts
    stored = await destination.read_bytes("big.bin")
    assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()


async def test_s3_missing_bucket_is_permanent_and_not_retried(
    s3_bucket: S3Options, tmp_path: Path
) -> None:
    destination = S3Destination(dataclasses.replace(s3_bucket, bucket="no-such-bucket-here"))
    with pytest.raises(ClientError):
        await destination.check()
    source = tmp_path / "f.bin"
    source.write_bytes(b"abc")
    with pytest.raises(RetriesExhaustedError) as info:
        await call_with_retries(
            lambda: destination.upload_file(source, "k", content_type="x", metadata={}),
            policy=FAST,
        )
    assert info.value.permanent
    assert info.value.log.attempts == 1
    assert "NoSuchBucket" in info.value.log.errors[0]


async def test_s3_unreachable_endpoint_is_retried_with_backoff_then_reported(
    tmp_path: Path,
) -> None:
    options = S3Options(
        bucket="b",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        path_style=True,
        access_key_id="k",
        secret_access_key="s",
        region="us-east-1",
        request_attempts=1,
        connect_timeout=2,
    )
    destination = S3Destination(options)
    source = tmp_path / "f.bin"
    source.write_bytes(b"abc")
    with pytest.raises(RetriesExhaustedError) as info:
        await call_with_retries(
            lambda: destination.upload_file(source, "k", content_type="x", metadata={}),
            policy=FAST,
        )
    assert not info.value.permanent
    assert info.value.log.attempts == 3
    assert len(info.value.log.errors) == 3
    assert all("connect" in error.lower() for error in info.value.log.errors)


class FlakyS3Destination(S3Destination):
    """The real moto-backed destination, whose network drops the first ``failures`` uploads."""

    def __init__(self, options: S3Options, failures: int) -> None:
        super().__init__(options)
        self.failures = failures

    async def upload_file(self, *args: Any, **kwargs: Any) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise EndpointConnectionError(endpoint_url=self.options.endpoint_url or "")
        await super().upload_file(*args, **kwargs)


async def test_transient_failures_are_retried_until_the_upload_succeeds(
    s3_bucket: S3Options, tmp_path: Path
) -> None:
    destination = FlakyS3Destination(s3_bucket, failures=2)
    source = tmp_path / "f.bin"
    source.write_bytes(b"payload")
    _, log = await call_with_retries(
        lambda: destination.upload_file(source, "k.bin", content_type="x", metadata={}),
        policy=FAST,
    )
    assert log.attempts == 3
    assert len(log.errors) == 2
    assert await destination.read_bytes("k.bin") == b"payload"


def test_s3_options_are_validated() -> None:
    with pytest.raises(DestinationError, match="bucket"):
        S3Destination(S3Options(bucket=""))
    with pytest.raises(DestinationError, match="5 MiB"):
        S3Destination(S3Options(bucket="b", multipart_chunksize=MiB))
