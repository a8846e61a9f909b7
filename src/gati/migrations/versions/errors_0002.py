"""errors: LZ4 compression of stored event payloads (PostgreSQL)

Revision ID: errors_0002
Revises: errors_0001

A Sentry event is 1-10 KB of JSON, so nearly every payload is compressed by TOAST. PostgreSQL's
default (pglz) was the largest single cost of storing an error event: measured on a group of 30
~2 KB events, the insert took 2.2 ms with pglz and 1.4 ms with LZ4 (docs/benchmarks.md). LZ4
also decompresses several times faster when an event is read. Values already stored keep their
compression (both stay readable); only new values use LZ4. A PostgreSQL built without LZ4
keeps pglz. SQLite stores the JSON text as it is: nothing to do there.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "errors_0002"
down_revision: str | Sequence[str] | None = "errors_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _has_lz4() -> bool:
    return bool(
        op.get_bind().scalar(
            sa.text(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                "WHERE name = 'default_toast_compression'"
            )
        )
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql" and _has_lz4():
        op.execute("ALTER TABLE error_events ALTER COLUMN payload SET COMPRESSION lz4")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE error_events ALTER COLUMN payload SET COMPRESSION default")
