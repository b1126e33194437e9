"""charge description and memo item comment

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 22:30:00.000000

Free text was accepted and dropped: an order's `chargeOverrides[].description` and
`chargeUpdates[].description` (a subscription charge now keeps its description, at most 500
characters as the catalog charge's), and a memo item's `comment` when it also had a
`description` (memo items now keep both).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MEMO_ITEM_TABLES = ("credit_memo_items", "debit_memo_items")


def upgrade() -> None:
    op.add_column("rate_plan_charges", sa.Column("description", sa.String(500), nullable=True))
    for table in MEMO_ITEM_TABLES:
        op.add_column(table, sa.Column("comment", sa.Text(), nullable=True))


def downgrade() -> None:
    for table in MEMO_ITEM_TABLES:
        op.drop_column(table, "comment")
    op.drop_column("rate_plan_charges", "description")
