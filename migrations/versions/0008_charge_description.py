"""charge description

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-01 22:30:00.000000

An order's `chargeOverrides[].description` and `chargeUpdates[].description` were accepted and
dropped; a subscription charge now keeps its description (at most 500 characters, as the
catalog charge's).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("rate_plan_charges", sa.Column("description", sa.String(500), nullable=True))


def downgrade() -> None:
    op.drop_column("rate_plan_charges", "description")
