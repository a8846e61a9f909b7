"""core: trace_events.project_id without a foreign key

Revision ID: core_0002
Revises: 0001_core

PostgreSQL checked the key on every inserted row: about a quarter of the database's CPU for a
10,000-event COPY (docs/benchmarks.md, docs/decisions.md). Deleting a project now deletes its
trace events explicitly (``gati.projects.repository.delete_project``). On SQLite the table is
rebuilt without the constraint (Alembic's batch mode), which copies it once.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "core_0002"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK = "fk_trace_events_project_id_projects"


def upgrade() -> None:
    with op.batch_alter_table("trace_events", schema=None) as batch_op:
        batch_op.drop_constraint(FK, type_="foreignkey")


def downgrade() -> None:
    # Rows of deleted projects cannot exist (deleting a project deletes them), so the key holds.
    with op.batch_alter_table("trace_events", schema=None) as batch_op:
        batch_op.create_foreign_key(FK, "projects", ["project_id"], ["id"], ondelete="CASCADE")
