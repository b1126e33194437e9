"""change log vacuum

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 22:30:00.000000

`metrics_changes` is a queue: every partner write appends to it and every refresh deletes from it.
With the default thresholds (20 % of the table) autovacuum let it bloat under the benchmark's
load, account reads then fetched ~17 dead heap tuples per live pending change and the planner
could fall back to a sequential scan of the bloated heap (14 ms against 2 ms). Vacuum and analyze
it after a fixed number of changed rows instead.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE metrics_changes SET (autovacuum_vacuum_scale_factor = 0, "
        "autovacuum_vacuum_threshold = 5000, autovacuum_analyze_scale_factor = 0, "
        "autovacuum_analyze_threshold = 5000)"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE metrics_changes RESET (autovacuum_vacuum_scale_factor, "
        "autovacuum_vacuum_threshold, autovacuum_analyze_scale_factor, "
        "autovacuum_analyze_threshold)"
    )
