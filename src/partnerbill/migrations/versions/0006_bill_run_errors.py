"""bill run errors

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 22:30:00.000000

A bill run that cannot bill a subscription records it here (with its invoice owner and the error)
and bills the rest, instead of ending in Error with no invoices.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bill_run_errors",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("bill_run_id", sa.String(length=32), nullable=False),
        sa.Column("subscription_id", sa.String(length=32), nullable=False),
        sa.Column("subscription_number", sa.String(length=100), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("account_number", sa.String(length=70), nullable=False),
        sa.Column("code", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "bill_run_id"],
            ["bill_runs.tenant_id", "bill_runs.id"],
            name=op.f("fk_bill_run_errors_tenant_id_bill_run_id_bill_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "bill_run_id", "subscription_id", name=op.f("pk_bill_run_errors")
        ),
    )


def downgrade() -> None:
    op.drop_table("bill_run_errors")
