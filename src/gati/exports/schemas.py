"""Request and response bodies of /export/*. Credentials go in, never come out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gati.exports.layout import normalize_prefix
from gati.exports.windows import Schedule
from gati.exports.writers import ExportFormat


class _Destination(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prefix: str = Field(default="", max_length=512, description="Key prefix inside the target")
    start_from: datetime | None = Field(
        default=None,
        description="Where a new destination starts (default: the current window). Ignored for "
        "an existing destination with the same bucket/folder and prefix, whose watermark is kept; "
        "re-export past windows with POST /export/run?since=&until=",
    )

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        try:
            return normalize_prefix(value)
        except ValueError as exc:
            raise ValueError(f"not a usable prefix: {exc}") from exc


class LocalDestinationIn(_Destination):
    type: Literal["local"]
    path: str = Field(
        default="",
        max_length=1024,
        description="Folder inside EXPORT_LOCAL_ROOT (relative), or an absolute path within it",
    )


class S3DestinationIn(_Destination):
    type: Literal["s3"]
    bucket: str = Field(min_length=3, max_length=63)
    region: str | None = Field(default=None, max_length=64)
    endpoint_url: str | None = Field(
        default=None, max_length=1024, description="S3-compatible endpoint (MinIO, R2, ...)"
    )
    path_style: bool = False
    # Write-only. Omitted: keep the stored credentials; null or "": none (boto3's default chain,
    # e.g. an IAM role).
    access_key_id: str | None = Field(default=None, max_length=256)
    secret_access_key: str | None = Field(default=None, max_length=256)
    session_token: str | None = Field(default=None, max_length=4096)

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value or None

    @model_validator(mode="after")
    def _pair(self) -> S3DestinationIn:
        given = {"access_key_id", "secret_access_key"} & self.model_fields_set
        if len(given) == 1 and (self.access_key_id or self.secret_access_key):
            raise ValueError("access_key_id and secret_access_key go together")
        return self


DestinationIn = Annotated[LocalDestinationIn | S3DestinationIn, Field(discriminator="type")]


class ExportConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: ExportFormat = ExportFormat.JSON
    gzip: bool = False
    schedule: Schedule = Schedule.HOURLY
    primary: DestinationIn | None = None
    backup: DestinationIn | None = None

    @model_validator(mode="after")
    def _check(self) -> ExportConfigIn:
        if self.gzip and self.format is ExportFormat.PARQUET:
            raise ValueError("gzip: applies to json and csv; Parquet files are compressed inside")
        if self.backup is not None and self.primary is None:
            raise ValueError("backup: a backup destination needs a primary one")
        if self.schedule is not Schedule.OFF and self.primary is None:
            raise ValueError("primary: a schedule needs a primary destination (or schedule: off)")
        return self


class DestinationRead(BaseModel):
    role: str
    type: str
    target: str
    options: dict[str, Any]
    has_credentials: bool
    watermark: datetime | None


class ExportConfigRead(BaseModel):
    project_id: int
    site: str
    configured: bool
    format: ExportFormat
    gzip: bool
    schedule: Schedule
    primary: DestinationRead | None
    backup: DestinationRead | None
    updated_at: datetime | None


class RunDestinationRead(BaseModel):
    role: str
    type: str
    status: str  # succeeded | failed
    attempts: int
    errors: list[str]
    key: str | None
    manifest_key: str | None


class ExportRunRead(BaseModel):
    id: int
    export_id: str
    trigger: str
    format: str
    gzip: bool
    window_start: datetime
    window_end: datetime
    status: str
    rows: int | None
    bytes: int | None
    sha256: str | None
    destinations: list[RunDestinationRead]
    manifest: dict[str, Any] | None
    error: str | None
    started_at: datetime
    finished_at: datetime | None


class DestinationStatus(BaseModel):
    role: str
    type: str
    target: str
    state: str  # up_to_date | behind | running | failing
    watermark: datetime | None
    pending_windows: int
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    consecutive_failures: int


class ExportStatusRead(BaseModel):
    project_id: int
    site: str
    configured: bool
    schedule: Schedule
    format: ExportFormat
    next_run_at: datetime | None
    destinations: list[DestinationStatus]
    last_runs: list[ExportRunRead]
    errors: list[str]


class ExportRunsRead(BaseModel):
    runs: list[ExportRunRead]
