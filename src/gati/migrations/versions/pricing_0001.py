"""pricing: custom per-project model prices

Revision ID: pricing_0001
Revises: 0001_core
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gati.db.types

revision: str = "pricing_0001"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("pricing",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pricing_custom_prices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("provider", sa.String(length=100), nullable=False),
        sa.Column("effective_from", gati.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("input_per_mtok", sa.Float(), nullable=False),
        sa.Column("output_per_mtok", sa.Float(), nullable=False),
        sa.Column("cache_read_per_mtok", sa.Float(), nullable=True),
        sa.Column("cache_write_per_mtok", sa.Float(), nullable=True),
        sa.Column("reasoning_per_mtok", sa.Float(), nullable=True),
        sa.Column("created_at", gati.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_pricing_custom_prices_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pricing_custom_prices")),
        sa.UniqueConstraint(
            "project_id",
            "model",
            "provider",
            "effective_from",
            name="uq_pricing_custom_prices_identity",
        ),
    )
    op.create_index("ix_pricing_custom_prices_project", "pricing_custom_prices", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_pricing_custom_prices_project", table_name="pricing_custom_prices")
    op.drop_table("pricing_custom_prices")
