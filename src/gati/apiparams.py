"""Path and query parameters shared by the routers, bounded by the columns they are compared
with: a number the column cannot hold is a 422 that names the parameter, never a database error
(PostgreSQL refuses an out-of-range parameter; sqlite3 raises ``OverflowError``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

INT32_MAX = 2**31 - 1  # INTEGER columns (projects, users, keys, export runs)
INT64_MAX = 2**63 - 1  # BIGINT columns (issues, error events, metric points)

Id32 = Annotated[int, Path(ge=1, le=INT32_MAX, description="A row id (1 to 2,147,483,647)")]
Id64 = Annotated[int, Path(ge=1, le=INT64_MAX, description="A row id (a positive 64-bit integer)")]
# Deeper than this, a client pages with a cursor or a narrower filter.
MAX_OFFSET = 1_000_000_000
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip")]
