"""web: web analytics events, sessions, daily salts, hourly rollups

Revision ID: web_0001
Revises: 0001_core
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import gati.db.types

revision: str = "web_0001"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("web",)
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
TS = gati.db.types.UTCDateTime(timezone=True)


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project_id"], ["projects.id"], name=f"fk_{table}_project_id_projects", ondelete="CASCADE"
    )


def _visit_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("hostname", sa.String(255), nullable=True),
        sa.Column("referrer", sa.Text(), nullable=True),
        sa.Column("source", sa.String(255), nullable=True),
        sa.Column("utm_source", sa.String(255), nullable=True),
        sa.Column("utm_medium", sa.String(255), nullable=True),
        sa.Column("utm_campaign", sa.String(255), nullable=True),
        sa.Column("utm_term", sa.String(255), nullable=True),
        sa.Column("utm_content", sa.String(255), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "web_events",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(120), nullable=False),
        sa.Column("timestamp", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("session_id", sa.String(255), nullable=False),
        sa.Column("visitor_id", sa.String(255), nullable=False),
        sa.Column("visitor_key", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("path", sa.String(2048), nullable=True),
        sa.Column("title", sa.String(1024), nullable=True),
        *_visit_columns(),
        sa.Column("browser", sa.String(64), nullable=True),
        sa.Column("browser_version", sa.String(32), nullable=True),
        sa.Column("os", sa.String(64), nullable=True),
        sa.Column("os_version", sa.String(32), nullable=True),
        sa.Column("device", sa.String(16), nullable=True),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("ip", sa.String(45), nullable=True),
        sa.Column("is_bot", sa.Boolean(), nullable=False),
        sa.Column("properties", JSON, nullable=True),
        sa.Column("raw", JSON, nullable=True),
        _project_fk("web_events"),
        sa.PrimaryKeyConstraint("project_id", "id", name="pk_web_events"),
    )
    op.create_index("ix_web_events_project_ts", "web_events", ["project_id", "timestamp"])
    op.create_index("ix_web_events_project_session", "web_events", ["project_id", "session_id"])

    op.create_table(
        "web_sessions",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("visitor_id", sa.String(255), nullable=False),
        sa.Column("visitor_key", sa.BigInteger(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("duration", sa.Integer(), nullable=False),
        sa.Column("pageviews", sa.Integer(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("entry_page", sa.String(2048), nullable=True),
        sa.Column("exit_page", sa.String(2048), nullable=True),
        *_visit_columns(),
        sa.Column("browser", sa.String(64), nullable=True),
        sa.Column("os", sa.String(64), nullable=True),
        sa.Column("device", sa.String(16), nullable=True),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("is_bot", sa.Boolean(), nullable=False),
        _project_fk("web_sessions"),
        sa.PrimaryKeyConstraint("project_id", "id", name="pk_web_sessions"),
    )
    op.create_index(
        "ix_web_sessions_project_started",
        "web_sessions",
        ["project_id", "started_at"],
        postgresql_include=["visitor_key", "pageviews", "duration", "is_bot"],
    )
    op.create_index(
        "ix_web_sessions_visitor", "web_sessions", ["project_id", "visitor_id", "last_seen_at"]
    )

    op.create_table(
        "web_salts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("salt", sa.LargeBinary(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("day", name="pk_web_salts"),
    )

    op.create_table(
        "web_rollup_hourly",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("hour", TS, nullable=False),
        sa.Column("pageviews", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("events", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        _project_fk("web_rollup_hourly"),
        sa.PrimaryKeyConstraint("project_id", "hour", name="pk_web_rollup_hourly"),
    )


def downgrade() -> None:
    op.drop_table("web_rollup_hourly")
    op.drop_table("web_salts")
    op.drop_index("ix_web_sessions_visitor", table_name="web_sessions")
    op.drop_index("ix_web_sessions_project_started", table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_index("ix_web_events_project_session", table_name="web_events")
    op.drop_index("ix_web_events_project_ts", table_name="web_events")
    op.drop_table("web_events")
