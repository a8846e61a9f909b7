"""exports: export configuration, destinations (watermarks), runs; received_at indexes

Revision ID: exports_0001
Revises: 0001_core
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import gati.db.types

revision: str = "exports_0001"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("exports",)
# The received_at indexes go on the web and product event tables.
depends_on: str | Sequence[str] | None = ("web_0001", "events_0001")

JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
TS = gati.db.types.UTCDateTime(timezone=True)


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project_id"], ["projects.id"], name=f"fk_{table}_project_id_projects", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "export_configs",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("gzip", sa.Boolean(), nullable=False),
        sa.Column("schedule", sa.String(10), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _project_fk("export_configs"),
        sa.PrimaryKeyConstraint("project_id", name="pk_export_configs"),
    )
    op.create_table(
        "export_destinations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("options", JSON, nullable=False),
        sa.Column("credentials_encrypted", sa.Text(), nullable=True),
        sa.Column("watermark", TS, nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("last_attempt_at", TS, nullable=True),
        sa.Column("last_success_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _project_fk("export_destinations"),
        sa.PrimaryKeyConstraint("id", name="pk_export_destinations"),
        sa.UniqueConstraint("project_id", "role", name="uq_export_destinations_project_id"),
    )
    op.create_index("ix_export_destinations_project_id", "export_destinations", ["project_id"])
    op.create_table(
        "export_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("export_id", sa.String(40), nullable=False),
        sa.Column("trigger", sa.String(10), nullable=False),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("gzip", sa.Boolean(), nullable=False),
        sa.Column("window_start", TS, nullable=False),
        sa.Column("window_end", TS, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("destinations", JSON, nullable=False),
        sa.Column("manifest", JSON, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("heartbeat_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        _project_fk("export_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_export_runs"),
        sa.UniqueConstraint("export_id", name="uq_export_runs_export_id"),
    )
    op.create_index("ix_export_runs_project_started", "export_runs", ["project_id", "started_at"])
    op.create_index("ix_web_events_project_received", "web_events", ["project_id", "received_at"])
    op.create_index("ix_events_project_received", "events", ["project_id", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_events_project_received", table_name="events")
    op.drop_index("ix_web_events_project_received", table_name="web_events")
    op.drop_index("ix_export_runs_project_started", table_name="export_runs")
    op.drop_table("export_runs")
    op.drop_index("ix_export_destinations_project_id", table_name="export_destinations")
    op.drop_table("export_destinations")
    op.drop_table("export_configs")
