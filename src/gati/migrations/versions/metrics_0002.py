"""metrics: quarter-hour rollups; stored percentiles on hour rollups

Revision ID: metrics_0002
Revises: metrics_0001

``metric_quarter_rollups`` has its own watermark (state row ``metrics_quarter``, absent here, so
0): the rollup job backfills it from every existing point, in chunks, and until it has caught up
queries read the missing part from raw points, so answers stay exact. The new ``p50``/``p95``/
``p99`` columns of existing hour rollups stay NULL until the job next writes the row; a query
decodes the sketch of a row without them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gati.db.types

revision: str = "metrics_0002"
down_revision: str | Sequence[str] | None = "metrics_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for name in ("p50", "p95", "p99"):
        op.add_column("metric_rollups", sa.Column(name, sa.Float(), nullable=True))
    op.create_table(
        "metric_quarter_rollups",
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("bucket_start", gati.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("sum", sa.Float(), nullable=False),
        sa.Column("min", sa.Float(), nullable=False),
        sa.Column("max", sa.Float(), nullable=False),
        sa.Column("sketch", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_id"],
            ["metric_series.id"],
            name=op.f("fk_metric_quarter_rollups_series_id_metric_series"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "series_id", "bucket_start", name=op.f("pk_metric_quarter_rollups")
        ),
    )


def downgrade() -> None:
    op.drop_table("metric_quarter_rollups")
    with op.batch_alter_table("metric_rollups") as batch:
        for name in ("p99", "p95", "p50"):
            batch.drop_column(name)
