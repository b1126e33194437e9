"""the Reseller Account feature switch per tenant

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 07:10:00.000000

A tenant enables or disables the Reseller Account feature (the `partnerAccount` flag and the
deferred metrics that come with it) self-service. Existing and new tenants have it enabled, so
nothing changes for them until an admin switches it off.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "tenants",
        sa.Column(
            "reseller_account_enabled", sa.Boolean(), nullable=False, server_default=sa.true()
        ),
    )


def downgrade() -> None:
    op.drop_column("tenants", "reseller_account_enabled")
