"""OTLP ingestion: decoded spans → the core tracing batch writer (same path as /api/events)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gati.db.engine import Database
from gati.tracing.otlp import DecodedSpans, SpanError, summarize_errors, summarize_warnings
from gati.tracing.service import validate_batch, write_events


@dataclass(slots=True)
class OtlpIngestResult:
    accepted: int = 0
    stored: int = 0
    duplicates: int = 0
    errors: list[SpanError] = field(default_factory=list)
    # Spans stored with values out of range left unused: with no span rejected, OTLP's
    # partial_success carries them as a warning (rejected 0, a message).
    warnings: list[SpanError] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.errors)

    @property
    def error_message(self) -> str:
        parts = []
        if self.errors:
            parts.append(summarize_errors(self.errors))
        if self.warnings:
            parts.append(summarize_warnings(self.warnings))
        return ". ".join(parts)


async def ingest_spans(
    db: Database,
    *,
    project_id: int,
    decoded: DecodedSpans,
    max_batch_size: int,
    max_event_bytes: int | None,
    check_nul: bool = True,
) -> OtlpIngestResult:
    """Validate the span events with the core rules and store them in one transaction.

    A root span (no parent) ends its run: with it the run is ``completed`` (or ``failed`` when
    any of its spans failed). Spans of one trace may arrive in any order and any number of
    requests; the core's idempotency on ``(project, event_id)`` makes re-sent spans no-ops.
    """
    result = OtlpIngestResult(errors=list(decoded.errors), warnings=list(decoded.warnings))
    validated = validate_batch(decoded.events, max_event_bytes=max_event_bytes, check_nul=check_nul)
    for error in validated.errors:
        raw = decoded.events[error.index] if 0 <= error.index < len(decoded.events) else None
        span_id = raw.get("event_id") if isinstance(raw, dict) else None
        result.errors.append(
            SpanError(
                index=error.index,
                field=f"span {span_id}.{error.field}" if span_id else error.field,
                message=error.message,
            )
        )
    events = validated.events
    for event in events:
        if event.parent_id is None:
            event.is_end = True
    result.accepted = len(events)
    if events:
        async with db.connection() as conn:
            for start in range(0, len(events), max_batch_size):
                written = await write_events(
                    conn, project_id=project_id, events=events[start : start + max_batch_size]
                )
                result.stored += written.stored
                result.duplicates += written.duplicates
    return result
