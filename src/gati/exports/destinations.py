"""Export destinations: a local folder, or S3-compatible object storage (AWS, MinIO, R2, ...).

boto3 is synchronous; every call runs in a worker thread. Large files go up as multipart
uploads (boto3's transfer manager) above ``multipart_threshold``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from gati.exports.layout import normalize_prefix

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024


class DestinationError(Exception):
    """A destination is misconfigured (not a transfer failure)."""


class Destination(ABC):
    kind: str

    def __init__(self, prefix: str | None) -> None:
        self.prefix = normalize_prefix(prefix)

    @abstractmethod
    def describe(self) -> str:
        """Where files go, for people (no secrets)."""

    @abstractmethod
    async def upload_file(
        self, path: Path, key: str, *, content_type: str, metadata: Mapping[str, str]
    ) -> None: ...

    @abstractmethod
    async def put_bytes(self, data: bytes, key: str, *, content_type: str) -> None: ...

    @abstractmethod
    async def read_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    async def check(self) -> None:
        """Raise if the destination cannot be written (missing bucket, unwritable folder)."""


class LocalFolderDestination(Destination):
    kind = "local"

    def __init__(self, root: str | os.PathLike[str], prefix: str | None = None) -> None:
        super().__init__(prefix)
        self.root = Path(root).expanduser().resolve()

    def describe(self) -> str:
        return self.root.as_uri()

    def path_for(self, key: str) -> Path:
        target = (self.root / key).resolve()
        if not target.is_relative_to(self.root) or target == self.root:
            raise DestinationError(f"key {key!r} leaves the export folder {self.root}")
        return target

    def _place(self, source: Path | None, data: bytes | None, key: str) -> None:
        target = self.path_for(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
        try:
            with partial.open("wb") as out:
                if source is not None:
                    with source.open("rb") as src:
                        shutil.copyfileobj(src, out, 4 * MiB)
                else:
                    out.write(data or b"")
                out.flush()
                os.fsync(out.fileno())
            # A reader sees the whole file or none of it.
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    async def upload_file(
        self, path: Path, key: str, *, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        await asyncio.to_thread(self._place, path, None, key)

    async def put_bytes(self, data: bytes, key: str, *, content_type: str) -> None:
        await asyncio.to_thread(self._place, None, data, key)

    async def read_bytes(self, key: str) -> bytes:
        return await asyncio.to_thread(self.path_for(key).read_bytes)

    def _check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise PermissionError(f"the export folder {self.root} is not writable")

    async def check(self) -> None:
        await asyncio.to_thread(self._check)


@dataclass(frozen=True, slots=True)
class S3Options:
    bucket: str
    prefix: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    path_style: bool = False
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    multipart_threshold: int = 64 * MiB
    multipart_chunksize: int = 16 * MiB
    max_concurrency: int = 4
    connect_timeout: float = 10
    read_timeout: float = 60
    # botocore's own retries of one HTTP request (a multipart part is retried alone);
    # whole-file retries with backoff are the exporter's (gati.exports.retry).
    request_attempts: int = 3


class S3Destination(Destination):
    kind = "s3"

    def __init__(self, options: S3Options) -> None:
        super().__init__(options.prefix)
        if not options.bucket:
            raise DestinationError("bucket: an S3 destination needs a bucket name")
        if options.multipart_chunksize < 5 * MiB:
            raise DestinationError("multipart_chunksize: S3 parts are at least 5 MiB")
        self.options = options

    def describe(self) -> str:
        where = f"s3://{self.options.bucket}"
        if self.prefix:
            where += f"/{self.prefix}"
        if self.options.endpoint_url:
            where += f" at {self.options.endpoint_url}"
        return where

    @cached_property
    def client(self) -> S3Client:
        # Credentials left empty fall back to boto3's chain (environment, IAM role, ...).
        session = boto3.session.Session(
            aws_access_key_id=self.options.access_key_id or None,
            aws_secret_access_key=self.options.secret_access_key or None,
            aws_session_token=self.options.session_token or None,
            region_name=self.options.region or None,
        )
        config = Config(
            s3={"addressing_style": "path" if self.options.path_style else "auto"},
            retries={"mode": "standard", "total_max_attempts": self.options.request_attempts},
            connect_timeout=self.options.connect_timeout,
            read_timeout=self.options.read_timeout,
            signature_version="s3v4",
        )
        return session.client("s3", endpoint_url=self.options.endpoint_url or None, config=config)

    @property
    def transfer_config(self) -> TransferConfig:
        return TransferConfig(
            multipart_threshold=self.options.multipart_threshold,
            multipart_chunksize=self.options.multipart_chunksize,
            max_concurrency=self.options.max_concurrency,
            use_threads=True,
        )

    def _upload(self, path: Path, key: str, content_type: str, metadata: Mapping[str, str]) -> None:
        extra: dict[str, Any] = {"ContentType": content_type, "Metadata": dict(metadata)}
        self.client.upload_file(
            str(path), self.options.bucket, key, ExtraArgs=extra, Config=self.transfer_config
        )

    async def upload_file(
        self, path: Path, key: str, *, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        await asyncio.to_thread(self._upload, path, key, content_type, metadata)

    async def put_bytes(self, data: bytes, key: str, *, content_type: str) -> None:
        await asyncio.to_thread(
            self.client.put_object,
            Bucket=self.options.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
        )

    def _read(self, key: str) -> bytes:
        response = self.client.get_object(Bucket=self.options.bucket, Key=key)
        return response["Body"].read()

    async def read_bytes(self, key: str) -> bytes:
        return await asyncio.to_thread(self._read, key)

    async def check(self) -> None:
        await asyncio.to_thread(self.client.head_bucket, Bucket=self.options.bucket)
