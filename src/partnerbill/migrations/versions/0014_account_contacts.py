"""an account's additional contacts

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 09:00:00.000000

- `account_contacts`: the contacts of an account besides its bill-to and sold-to contacts (those
  stay as JSON on the account row). A contact id lives in exactly one of the two places.
- Expression indexes on the bill-to and sold-to contact ids, so a contact is found by id without
  reading every account of the tenant.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_contacts",
        sa.Column("tenant_id", sa.String(32), nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("contact", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_account_contacts"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "account_id"],
            ["accounts.tenant_id", "accounts.id"],
            name="fk_account_contacts_account",
        ),
    )
    op.create_index(
        "ix_account_contacts_account", "account_contacts", ["tenant_id", "account_id", "id"]
    )
    for role in ("bill_to", "sold_to"):
        op.create_index(
            f"ix_accounts_{role}_contact_id",
            "accounts",
            ["tenant_id", sa.text(f"({role}_contact ->> 'id')")],
        )


def downgrade() -> None:
    op.drop_index("ix_accounts_sold_to_contact_id", "accounts")
    op.drop_index("ix_accounts_bill_to_contact_id", "accounts")
    op.drop_table("account_contacts")
