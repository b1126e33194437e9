"""the payment method a payment was made with

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 09:30:00.000000

- `payments.payment_method_id`: the account's external payment method the payment names
  (`paymentMethodId`), if any; its type is copied into `payment_method_type`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("payments", sa.Column("payment_method_id", sa.String(32)))


def downgrade() -> None:
    op.drop_column("payments", "payment_method_id")
