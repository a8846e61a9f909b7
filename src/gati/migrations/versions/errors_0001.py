"""errors: issues, issue_values, error_events

Revision ID: errors_0001
Revises: 0001_core
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import gati.db.types

revision: str = "errors_0001"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("errors",)
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
    )


def _big_id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts() -> gati.db.types.UTCDateTime:
    return gati.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "issues",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("culprit", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=200), nullable=True),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("platform", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("is_regressed", sa.Boolean(), nullable=False),
        sa.Column("first_seen", _ts(), nullable=False),
        sa.Column("last_seen", _ts(), nullable=False),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.Column("times_seen", sa.BigInteger(), nullable=False),
        sa.Column("grouping", _json(), nullable=True),
        sa.Column("resolved_at", _ts(), nullable=True),
        sa.Column("status_changed_at", _ts(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_issues_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issues")),
        sa.UniqueConstraint("project_id", "fingerprint", name="uq_issues_project_fingerprint"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_issues_project_last_seen", "issues", ["project_id", "last_seen"])
    op.create_index(
        "ix_issues_project_status_last_seen", "issues", ["project_id", "status", "last_seen"]
    )
    op.create_table(
        "issue_values",
        sa.Column("issue_id", _big_id(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("first_seen", _ts(), nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issues.id"],
            name=op.f("fk_issue_values_issue_id_issues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("issue_id", "kind", "value", name=op.f("pk_issue_values")),
    )
    op.create_table(
        "error_events",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("timestamp", _ts(), nullable=False),
        sa.Column("received_at", _ts(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("platform", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("culprit", sa.String(length=255), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("exception_type", sa.String(length=200), nullable=True),
        sa.Column("exception_value", sa.Text(), nullable=True),
        sa.Column("transaction_name", sa.String(length=200), nullable=True),
        sa.Column("request_method", sa.String(length=16), nullable=True),
        sa.Column("request_url", sa.Text(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("environment", sa.String(length=64), nullable=True),
        sa.Column("release", sa.String(length=200), nullable=True),
        sa.Column("server_name", sa.String(length=200), nullable=True),
        sa.Column("payload", _json(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_error_events_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_error_events")),
        sa.UniqueConstraint("project_id", "event_id", name="uq_error_events_project_event_id"),
    )
    op.create_index(
        "ix_error_events_issue_timestamp",
        "error_events",
        ["project_id", "fingerprint", "timestamp"],
    )
    op.create_index(
        "ix_error_events_project_timestamp", "error_events", ["project_id", "timestamp"]
    )


def downgrade() -> None:
    op.drop_index("ix_error_events_project_timestamp", table_name="error_events")
    op.drop_index("ix_error_events_issue_timestamp", table_name="error_events")
    op.drop_table("error_events")
    op.drop_table("issue_values")
    op.drop_index("ix_issues_project_status_last_seen", table_name="issues")
    op.drop_index("ix_issues_project_last_seen", table_name="issues")
    op.drop_table("issues")
