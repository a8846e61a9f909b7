"""OTLP/HTTP trace receiver: ``POST /v1/traces`` (protobuf or JSON, gzip or not)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gati.auth.deps import IngestProject
from gati.deps import DatabaseDep, SettingsDep
from gati.exceptions import AppError
from gati.ingest.decode import read_decoded_body
from gati.tracing import otlp_service
from gati.tracing.otlp import (
    OtlpRequestError,
    decode_export_request,
    encode_export_response,
    is_json_content_type,
    is_protobuf_content_type,
)

router = APIRouter(tags=["OTLP"])

_OTLP_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-protobuf": {
                "schema": {
                    "type": "string",
                    "format": "binary",
                    "description": "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest",
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "ExportTraceServiceRequest in OTLP/JSON (hex trace/span ids)",
                }
            },
        },
    }
}


@router.post(
    "/v1/traces",
    openapi_extra=_OTLP_BODY,
    summary="OTLP/HTTP trace export (protobuf or JSON; gzip accepted)",
    responses={200: {"description": "ExportTraceServiceResponse (partial_success if rejected)"}},
)
async def export_traces(
    request: Request, project: IngestProject, db: DatabaseDep, settings: SettingsDep
) -> Response:
    content_type = request.headers.get("content-type")
    if is_protobuf_content_type(content_type):
        as_json = False
    elif is_json_content_type(content_type):
        as_json = True
    else:
        raise AppError(
            415,
            "unsupported_media_type",
            f"Content-Type {content_type!r} is not OTLP: send application/x-protobuf or "
            "application/json",
        )
    raw = await read_decoded_body(
        request, max_bytes=settings.max_body_bytes, max_decompressed=settings.max_decompressed_bytes
    )
    try:
        decoded = decode_export_request(raw, content_type)
    except OtlpRequestError as exc:
        raise AppError(exc.status, "invalid_otlp_request", f"{exc.field}: {exc.message}") from exc
    result = await otlp_service.ingest_spans(
        db,
        project_id=project.id,
        decoded=decoded,
        max_batch_size=settings.max_batch_size,
        max_event_bytes=settings.max_event_bytes if len(raw) > settings.max_event_bytes else None,
        # OTLP/JSON has a NUL character only as the escape \u0000; protobuf strings may hold one.
        check_nul=not as_json or b"\\u0000" in raw,
    )
    body = encode_export_response(
        rejected_spans=result.rejected, error_message=result.error_message, as_json=as_json
    )
    return Response(body, media_type="application/json" if as_json else "application/x-protobuf")
