"""web: visit metrics in the hourly rollups, visitor key sets per hour, a narrow visitors index

Revision ID: web_0002
Revises: web_0001

The writer keeps them per UTC hour of each visit's start, in the events' transaction, so that
unfiltered statistics sum a few hundred rollup rows instead of scanning every visit. Existing
visits are rolled up here. Unique visitors (not additive) are still counted from the visits:
the wide covering index on ``web_sessions (project_id, started_at)`` becomes a narrow partial
one (human visits only, ``visitor_key`` included) for that index-only scan.

``visit_changes`` counts, per hour, every visit that started in it or stopped starting in it
(a late event moved its start). ``web_visitor_hours`` holds, per hour, the sorted distinct
visitor keys of the visits that started in it, as of ``version`` = that hour's
``visit_changes``; a background job keeps it, and statistics use a row only when its version is
current (else they read that hour's visits), and ``sketch``, a HyperLogLog sketch of the same
keys, for unique visitors over ranges of more than 100,000 visits.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gati.db.types

revision: str = "web_0002"
down_revision: str | Sequence[str] | None = "web_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTERS = ("visits", "bounces", "duration", "visit_changes")

_HOUR = {
    "postgresql": "date_trunc('hour', started_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
    # The text form of gati.db.types.UTCDateTime on SQLite.
    "sqlite": "strftime('%Y-%m-%d %H:00:00.000000', started_at)",
}


# PostgreSQL: the batch writer's first statement. Takes the batch's advisory locks (sorted, so
# two writers never deadlock), then, in a new snapshot that sees everything committed before
# the locks were granted, returns the open visits of the batch's visitors and the visits its
# client session ids name: one round trip instead of two. Planned on every call
# (force_custom_plan): a plan cached while the tables were small (a seq scan) would otherwise
# stay with the connection as they grow.
LOCK_AND_LOAD = """
CREATE FUNCTION web_lock_and_load_visits(
    lock_keys bigint[], visitor_projects int[], visitor_ids text[], since timestamptz,
    session_projects int[], session_ids text[]
) RETURNS SETOF web_sessions LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM count(pg_advisory_xact_lock(k))
        FROM (SELECT DISTINCT unnest(lock_keys) AS k ORDER BY 1) AS keys;
    RETURN QUERY
        SELECT * FROM web_sessions
        WHERE (project_id, visitor_id) IN (SELECT * FROM unnest(visitor_projects, visitor_ids))
            AND last_seen_at >= since
        UNION
        SELECT * FROM web_sessions
        WHERE (project_id, id) IN (SELECT * FROM unnest(session_projects, session_ids));
END
$$ SET plan_cache_mode = force_custom_plan
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(LOCK_AND_LOAD)
    with op.batch_alter_table("web_rollup_hourly") as batch:
        for name in COUNTERS:
            batch.add_column(
                sa.Column(name, sa.BigInteger(), server_default=sa.text("0"), nullable=False)
            )
        # Concurrent writers add to a random shard of the hour (no wait on one row lock).
        batch.add_column(
            sa.Column("shard", sa.SmallInteger(), server_default=sa.text("0"), nullable=False)
        )
        batch.drop_constraint("pk_web_rollup_hourly", type_="primary")
        batch.create_primary_key("pk_web_rollup_hourly", ["project_id", "hour", "shard"])
    hour = _HOUR[op.get_bind().dialect.name]
    op.execute(
        "INSERT INTO web_rollup_hourly "
        "(project_id, hour, pageviews, events, visits, bounces, duration, visit_changes) "
        f"SELECT project_id, {hour}, 0, 0, count(*), "
        "sum(CASE WHEN pageviews <= 1 THEN 1 ELSE 0 END), sum(duration), count(*) "
        # (The WHERE also keeps SQLite from reading ON CONFLICT as a join's ON.)
        "FROM web_sessions WHERE NOT is_bot GROUP BY 1, 2 "
        "ON CONFLICT (project_id, hour, shard) DO UPDATE SET visits = excluded.visits, "
        "bounces = excluded.bounces, duration = excluded.duration, "
        "visit_changes = excluded.visit_changes"
    )
    op.create_table(
        "web_visitor_hours",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("hour", gati.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("keys", sa.LargeBinary(), nullable=False),
        sa.Column("sketch", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name="fk_web_visitor_hours_project_id_projects",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "hour", name="pk_web_visitor_hours"),
    )

    op.drop_index("ix_web_sessions_project_started", table_name="web_sessions")
    op.create_index(
        "ix_web_sessions_visitors",
        "web_sessions",
        ["project_id", "started_at"],
        postgresql_include=["visitor_key"],
        postgresql_where=sa.text("NOT is_bot"),
        sqlite_where=sa.text("is_bot = 0"),  # how SQLAlchemy spells NOT there
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION web_lock_and_load_visits(bigint[], int[], text[], timestamptz, "
            "int[], text[])"
        )
    op.drop_table("web_visitor_hours")
    op.drop_index("ix_web_sessions_visitors", table_name="web_sessions")
    op.create_index(
        "ix_web_sessions_project_started",
        "web_sessions",
        ["project_id", "started_at"],
        postgresql_include=["visitor_key", "pageviews", "duration", "is_bot"],
    )
    # Fold the shards into shard 0 before the key loses its shard column.
    op.execute(
        "INSERT INTO web_rollup_hourly (project_id, hour, shard, pageviews, events) "
        "SELECT project_id, hour, 0, sum(pageviews), sum(events) FROM web_rollup_hourly "
        "WHERE true GROUP BY project_id, hour "
        "ON CONFLICT (project_id, hour, shard) DO UPDATE SET pageviews = excluded.pageviews, "
        "events = excluded.events"
    )
    op.execute("DELETE FROM web_rollup_hourly WHERE shard <> 0")
    with op.batch_alter_table("web_rollup_hourly") as batch:
        batch.drop_constraint("pk_web_rollup_hourly", type_="primary")
        batch.create_primary_key("pk_web_rollup_hourly", ["project_id", "hour"])
        batch.drop_column("shard")
        for name in COUNTERS:
            batch.drop_column(name)
