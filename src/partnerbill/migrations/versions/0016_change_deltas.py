"""change rows carry their deltas

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 10:00:00.000000

- `metrics_changes` gains what each partner write changed (the additive metrics, the posted
  invoice date, whether a posted invoice left Posted or the payments changed), so a refresh
  folds those deltas instead of recomputing the account from all its documents.
- `recompute`: the row does not say what changed; a refresh that meets one recomputes the
  account whole. Rows logged before this revision are such rows (the column's default), and so
  is any row written without deltas.
- `account_metrics.last_verified_at`: when the folded metrics were last compared with a full
  recompute.
- A tenant's refresh interval may be as short as 1 s (the worker's refresh loop serves it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADDITIVE = (
    "total_invoice_balance",
    "total_debit_memo_balance",
    "unapplied_payment_amount",
    "unapplied_credit_memo_amount",
    "contracted_mrr",
)


def upgrade() -> None:
    for name in ADDITIVE:
        op.add_column(
            "metrics_changes", sa.Column(name, sa.Numeric(), nullable=False, server_default="0")
        )
    op.add_column("metrics_changes", sa.Column("posted_invoice_date", sa.Date()))
    for name, default in (
        ("posted_invoice_removed", "false"),
        ("payments_changed", "false"),
        ("recompute", "true"),
    ):
        op.add_column(
            "metrics_changes",
            sa.Column(name, sa.Boolean(), nullable=False, server_default=default),
        )
    op.create_index(
        "ix_metrics_changes_recompute",
        "metrics_changes",
        ["tenant_id", "account_id"],
        postgresql_where=sa.text("recompute"),
    )
    op.add_column("account_metrics", sa.Column("last_verified_at", sa.DateTime(timezone=True)))
    op.drop_constraint(op.f("ck_tenants_refresh_interval_min"), "tenants", type_="check")
    op.create_check_constraint(
        op.f("ck_tenants_refresh_interval_min"), "tenants", "metrics_refresh_interval_seconds >= 1"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_tenants_refresh_interval_min"), "tenants", type_="check")
    op.execute(
        "UPDATE tenants SET metrics_refresh_interval_seconds = 60 "
        "WHERE metrics_refresh_interval_seconds < 60"
    )
    op.create_check_constraint(
        op.f("ck_tenants_refresh_interval_min"), "tenants", "metrics_refresh_interval_seconds >= 60"
    )
    op.drop_column("account_metrics", "last_verified_at")
    op.drop_index("ix_metrics_changes_recompute", "metrics_changes")
    for name in (*ADDITIVE, "posted_invoice_date", "posted_invoice_removed", "payments_changed"):
        op.drop_column("metrics_changes", name)
    op.drop_column("metrics_changes", "recompute")
