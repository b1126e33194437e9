"""idempotency keys belong to their tenant

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 16:00:00.000000

The primary key of `idempotency_keys` is `(tenant_id, key)`.

Keyed by `key` alone, one tenant's key was every tenant's: another tenant sending the same key
got a 422 (and so learned that the key was in use), and the table could not be distributed by
tenant. Each tenant's keys are now its own; the 422 stays for a key its own tenant reuses with
another method, path or body. Existing keys were unique across tenants, so they stay valid.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("pk_idempotency_keys", "idempotency_keys", type_="primary")
    op.create_primary_key("pk_idempotency_keys", "idempotency_keys", ["tenant_id", "key"])


def downgrade() -> None:
    op.drop_constraint("pk_idempotency_keys", "idempotency_keys", type_="primary")
    op.create_primary_key("pk_idempotency_keys", "idempotency_keys", ["key"])
