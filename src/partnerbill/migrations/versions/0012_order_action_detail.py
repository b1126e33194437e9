"""order actions keep what the request said

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 07:40:00.000000

`GET /v1/orders/{orderNumber}` answers each subscription's order actions as they were given
(trigger dates, the action's own body), as Zuora does; orders placed before this revision show
their actions' id, sequence and type only.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("order_actions", sa.Column("detail", JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("order_actions", "detail")
