"""One window: its files written once, then sent to every pending destination.

Each part of a window (web events; product events when there are any) is streamed into a spool
file (memory stays flat; the spool holds the compressed file), then every destination gets the
files with retries and, last, the window's manifest beside them. A destination counts as done
only when its manifest is stored. Destinations are independent: a failing backup does not hold
back the primary.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gati.exports.columns import ExportColumn
from gati.exports.destinations import Destination
from gati.exports.layout import Manifest, ManifestFile, manifest_key, object_key
from gati.exports.retry import (
    AttemptLog,
    RetriesExhaustedError,
    RetryPolicy,
    call_with_retries,
    describe_error,
)
from gati.exports.writers import (
    ExportFormat,
    ExportMetadata,
    RowChunk,
    WriteResult,
    content_type,
    file_extension,
    write_export,
)

MANIFEST_CONTENT_TYPE = "application/json"


@dataclass(slots=True)
class PartStream:
    columns: Sequence[ExportColumn]
    count: int | None
    chunks: AsyncIterable[RowChunk]


@dataclass(frozen=True, slots=True)
class ExportPart:
    """One file of a window. ``open`` yields its columns, row count and chunks in one snapshot."""

    name: str
    suffix: str | None
    open: Callable[[], AbstractAsyncContextManager[PartStream]]
    skip_when_empty: bool = False
    extra_metadata: dict[str, Any] = field(default_factory=dict)


def static_part(
    name: str,
    columns: Sequence[ExportColumn],
    chunks: AsyncIterable[RowChunk],
    *,
    count: int | None,
    suffix: str | None = None,
) -> ExportPart:
    """A part over chunks already at hand (tests, ad-hoc exports)."""

    @asynccontextmanager
    async def _open() -> AsyncIterator[PartStream]:
        yield PartStream(columns=columns, count=count, chunks=chunks)

    return ExportPart(name=name, suffix=suffix, open=_open)


@dataclass(frozen=True, slots=True)
class NamedDestination:
    name: str  # "primary" | "backup"
    destination: Destination


@dataclass(slots=True)
class DestinationOutcome:
    name: str
    ok: bool
    keys: list[str]
    manifest_key: str
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    permanent_failure: bool = False

    @property
    def key(self) -> str:
        return self.keys[0] if self.keys else ""


@dataclass(frozen=True, slots=True)
class SpooledFile:
    part: str
    path: Path
    ext: str
    columns: Sequence[ExportColumn]
    written: WriteResult


@dataclass(slots=True)
class WindowExport:
    files: list[SpooledFile]
    outcomes: list[DestinationOutcome]
    manifest: Manifest

    @property
    def ok(self) -> bool:
        return all(outcome.ok for outcome in self.outcomes)

    @property
    def write(self) -> WriteResult:
        """The first (main) file's result."""
        return self.files[0].written

    @property
    def rows(self) -> int:
        return sum(f.written.rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.written.bytes for f in self.files)


async def upload_to(
    target: NamedDestination,
    *,
    files: Sequence[SpooledFile],
    manifest: Manifest,
    file_content_type: str,
    policy: RetryPolicy,
) -> DestinationOutcome:
    destination = target.destination
    keys = [
        object_key(destination.prefix, manifest.site, manifest.start, manifest.end, f.ext)
        for f in files
    ]
    m_key = manifest_key(destination.prefix, manifest.site, manifest.start, manifest.end)
    outcome = DestinationOutcome(name=target.name, ok=False, keys=keys, manifest_key=m_key)
    own_manifest = replace(
        manifest,
        files=[replace(entry, key=key) for entry, key in zip(manifest.files, keys, strict=True)],
    )
    log = AttemptLog()

    async def _send() -> None:
        for spooled, key in zip(files, keys, strict=True):
            await destination.upload_file(
                spooled.path,
                key,
                content_type=file_content_type,
                metadata={"sha256": spooled.written.sha256, "export-id": manifest.export_id},
            )
        # The manifest goes last: when it is there, the window is complete.
        await destination.put_bytes(
            own_manifest.to_bytes(), m_key, content_type=MANIFEST_CONTENT_TYPE
        )

    try:
        await call_with_retries(_send, policy=policy, log=log)
        outcome.ok = True
    except RetriesExhaustedError as exc:
        outcome.permanent_failure = exc.permanent
    except Exception as exc:  # a misconfigured destination: report it, never crash the run
        log.errors.append(describe_error(exc))
        outcome.permanent_failure = True
    outcome.attempts = log.attempts
    outcome.errors = list(log.errors)
    return outcome


async def export_window(
    *,
    export_id: str,
    site: str,
    fmt: ExportFormat,
    gzip_output: bool,
    parts: Sequence[ExportPart],
    metadata: ExportMetadata,
    destinations: Sequence[NamedDestination],
    policy: RetryPolicy | None = None,
    spool_dir: Path | None = None,
    on_part: Callable[[str, int | None], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> WindowExport:
    """Write every part of the window once, then store the files at every destination."""
    base_ext = file_extension(fmt, gzip=gzip_output)
    policy = policy or RetryPolicy()
    if spool_dir is not None:
        await asyncio.to_thread(spool_dir.mkdir, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gati-export-", dir=spool_dir) as tmp:
        files: list[SpooledFile] = []
        for part in parts:
            ext = f"{part.suffix}.{base_ext}" if part.suffix else base_ext
            async with part.open() as stream:
                if part.skip_when_empty and stream.count == 0:
                    continue
                if on_part is not None:
                    on_part(part.name, stream.count)
                path = Path(tmp) / f"{part.name}.{ext}"
                part_metadata = replace(
                    metadata,
                    event_count=stream.count,
                    extra={**metadata.extra, **part.extra_metadata},
                )
                with path.open("wb") as sink:
                    written = await write_export(
                        fmt,
                        stream.columns,
                        stream.chunks,
                        sink,
                        metadata=part_metadata,
                        gzip_output=gzip_output,
                        on_progress=on_progress,
                    )
            files.append(SpooledFile(part.name, path, ext, list(stream.columns), written))
        file_type = content_type(fmt)
        manifest = Manifest(
            export_id=export_id,
            site=site,
            start=metadata.start,
            end=metadata.end,
            created_at=metadata.export_time,
            files=[
                ManifestFile(
                    # Without a destination's prefix; each destination's copy has its own keys.
                    key=object_key(None, site, metadata.start, metadata.end, f.ext),
                    rows=f.written.rows,
                    bytes=f.written.bytes,
                    sha256=f.written.sha256,
                    format=fmt.value,
                    content_type=file_type,
                    gzip=gzip_output,
                    part=f.part,
                    columns=f.columns,
                )
                for f in files
            ],
        )
        outcomes = await asyncio.gather(
            *(
                upload_to(
                    target,
                    files=files,
                    manifest=manifest,
                    file_content_type=file_type,
                    policy=policy,
                )
                for target in destinations
            )
        )
    return WindowExport(files=files, outcomes=list(outcomes), manifest=manifest)
