"""Fast JSON responses (orjson: datetimes as ISO 8601, UTC offset kept)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from starlette.responses import JSONResponse


def isoformat_z(value: datetime) -> str:
    """``value.isoformat()`` with ``+00:00`` written ``Z`` (other offsets kept, naive as naive),
    by orjson: half the cost of ``isoformat().replace(...)``, once per ingested point."""
    text: str = orjson.dumps(value, option=orjson.OPT_UTC_Z)[1:-1].decode()
    return text


class ORJSONResponse(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z)

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        # The common case of every ingest answer (no extra headers, a body): the two headers
        # Starlette's generic version would compute, without its checks.
        if (
            headers is None
            and self.media_type == "application/json"
            and self.status_code >= 200
            and self.status_code not in (204, 304)
        ):
            self.raw_headers = [
                (b"content-length", str(len(self.body)).encode("latin-1")),
                (b"content-type", _JSON),
            ]
            return
        super().init_headers(headers)


_JSON = b"application/json"
