"""web: visits, bounces and visit duration in the hourly rollups

Revision ID: web_0002
Revises: web_0001

The writer keeps them per UTC hour of each visit's start, in the events' transaction, so that
unfiltered statistics sum a few hundred rollup rows instead of scanning every visit. Existing
visits are rolled up here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "web_0002"
down_revision: str | Sequence[str] | None = "web_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTERS = ("visits", "bounces", "duration")

_HOUR = {
    "postgresql": "date_trunc('hour', started_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
    # The text form of gati.db.types.UTCDateTime on SQLite.
    "sqlite": "strftime('%Y-%m-%d %H:00:00.000000', started_at)",
}


def upgrade() -> None:
    with op.batch_alter_table("web_rollup_hourly") as batch:
        for name in COUNTERS:
            batch.add_column(
                sa.Column(name, sa.BigInteger(), server_default=sa.text("0"), nullable=False)
            )
    hour = _HOUR[op.get_bind().dialect.name]
    op.execute(
        "INSERT INTO web_rollup_hourly "
        "(project_id, hour, pageviews, events, visits, bounces, duration) "
        f"SELECT project_id, {hour}, 0, 0, count(*), "
        "sum(CASE WHEN pageviews <= 1 THEN 1 ELSE 0 END), sum(duration) "
        # (The WHERE also keeps SQLite from reading ON CONFLICT as a join's ON.)
        "FROM web_sessions WHERE NOT is_bot GROUP BY 1, 2 "
        "ON CONFLICT (project_id, hour) DO UPDATE SET visits = excluded.visits, "
        "bounces = excluded.bounces, duration = excluded.duration"
    )


def downgrade() -> None:
    with op.batch_alter_table("web_rollup_hourly") as batch:
        for name in COUNTERS:
            batch.drop_column(name)
