"""idempotency answers only

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 22:10:00.000000

An Idempotency-Key record now commits in the business transaction, together with its answer, so a
record without an answer (a claim of the earlier design, left by a request that died) can no
longer exist. Such leftover claims are dropped, which frees their keys.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DELETE FROM idempotency_keys WHERE status_code IS NULL OR response_body IS NULL")
    op.alter_column("idempotency_keys", "status_code", nullable=False)
    op.alter_column("idempotency_keys", "response_body", nullable=False)


def downgrade() -> None:
    op.alter_column("idempotency_keys", "response_body", nullable=True)
    op.alter_column("idempotency_keys", "status_code", nullable=True)
