"""web: the batch writer's visit lookup probes the index once per key, with a cached plan

Revision ID: web_0003
Revises: web_0002

``web_lock_and_load_visits`` (web_0002) matched the batch's keys with ``(project_id,
visitor_id) IN (SELECT * FROM unnest(...))`` and merged the two lookups with ``UNION``, and was
planned on every call. PostgreSQL planned it afresh each time (about half of the call's cost),
chose a hash join over a sequential scan of ``web_sessions`` while the table was a few thousand
visits, and sorted every column of the result to remove duplicates. Now each key is one index
search (``CROSS JOIN LATERAL``), and the plan is cached with the connection. Without planner
statistics (a table autovacuum has not analyzed yet; see ``gati.db.statistics``) PostgreSQL
took the primary key for the visitor search and filtered the project's visits; inside the
function sequential scans and sorts are off and the visitor search asks for the order of
``ix_web_sessions_visitor``, which only that index gives without a sort, so the visitor search's
plan does not depend on statistics. (The search by client session id, for clients that send
``sessionId``, still needs them to pick the primary key: ``gati.db.statistics`` provides them
once the table holds 1,000 visits.) JIT is off inside it too: a disabled plan node counts 10^10 in the plan's
cost, which made PostgreSQL compile the lock query (it must sort) with LLVM on every call,
~200 ms each. The two lookups are concatenated (``UNION ALL``): the caller keeps one row
per visit.
"""

from collections.abc import Sequence

from alembic import op

from gati.migrations.versions.web_0002 import LOCK_AND_LOAD as WEB_0002_LOCK_AND_LOAD

revision: str = "web_0003"
down_revision: str | Sequence[str] | None = "web_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Takes the batch's advisory locks (sorted, so two writers never deadlock), then, in a new
# snapshot that sees everything committed before the locks were granted, returns the open
# visits of the batch's visitors and the visits its client session ids name (a visit may come
# twice: once by its visitor, once by its id).
LOCK_AND_LOAD = """
CREATE OR REPLACE FUNCTION web_lock_and_load_visits(
    lock_keys bigint[], visitor_projects int[], visitor_ids text[], since timestamptz,
    session_projects int[], session_ids text[]
) RETURNS SETOF web_sessions LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM count(pg_advisory_xact_lock(k))
        FROM (SELECT DISTINCT unnest(lock_keys) AS k ORDER BY 1) AS keys;
    RETURN QUERY
        SELECT s.* FROM unnest(visitor_projects, visitor_ids) AS v(project_id, visitor_id)
        CROSS JOIN LATERAL (
            SELECT * FROM web_sessions w
            WHERE w.project_id = v.project_id AND w.visitor_id = v.visitor_id
                AND w.last_seen_at >= since
            ORDER BY w.visitor_id, w.last_seen_at
        ) AS s
        UNION ALL
        SELECT s.* FROM unnest(session_projects, session_ids) AS k(project_id, id)
        CROSS JOIN LATERAL (
            SELECT * FROM web_sessions w WHERE w.project_id = k.project_id AND w.id = k.id
        ) AS s;
END
$$ SET enable_seqscan = off SET enable_sort = off SET jit = off
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(LOCK_AND_LOAD)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(WEB_0002_LOCK_AND_LOAD.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
