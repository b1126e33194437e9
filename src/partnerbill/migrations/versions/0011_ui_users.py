"""web UI users, their sessions and failed sign-ins; keyset indexes for the account page's tabs

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 07:30:00.000000

- `ui_users`: one row per person who signs in to the web UI, keyed by e-mail (unique across
  tenants: a person signs in with e-mail and password only, and the user names the tenant).
- `ui_sessions`: server-side sessions, keyed by the SHA-256 of the cookie's token, each with
  its CSRF token and expiry.
- `ui_sign_in_failures`: failed sign-ins per e-mail, counted over a window by every API process.
- `(tenant_id, account_id, id)` on the documents an account page lists: each tab is a keyset
  page in id order, read from the index however many documents the account has.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACCOUNT_DOCUMENTS = ("subscriptions", "invoices", "payments", "credit_memos", "debit_memos")


def upgrade() -> None:
    op.create_table(
        "ui_users",
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("tenant_id", sa.String(32), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("email", name="pk_ui_users"),
        sa.CheckConstraint("role IN ('admin', 'user')", name="ck_ui_users_role"),
        sa.CheckConstraint("email = lower(email)", name="ck_ui_users_email_lower"),
    )
    op.create_index("ix_ui_users_tenant_id", "ui_users", ["tenant_id"])
    op.create_table(
        "ui_sessions",
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_sha256", name="pk_ui_sessions"),
        sa.ForeignKeyConstraint(
            ["email"], ["ui_users.email"], name="fk_ui_sessions_email_ui_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_ui_sessions_email", "ui_sessions", ["email"])
    op.create_index("ix_ui_sessions_expires_at", "ui_sessions", ["expires_at"])
    op.create_table(
        "ui_sign_in_failures",
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column(
            "failed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("email", "id", name="pk_ui_sign_in_failures"),
    )
    op.create_index("ix_ui_sign_in_failures_failed_at", "ui_sign_in_failures", ["failed_at"])
    for table in ACCOUNT_DOCUMENTS:
        op.create_index(f"ix_{table}_account_id_order", table, ["tenant_id", "account_id", "id"])


def downgrade() -> None:
    for table in ACCOUNT_DOCUMENTS:
        op.drop_index(f"ix_{table}_account_id_order", table_name=table)
    op.drop_index("ix_ui_sign_in_failures_failed_at", table_name="ui_sign_in_failures")
    op.drop_table("ui_sign_in_failures")
    op.drop_index("ix_ui_sessions_expires_at", table_name="ui_sessions")
    op.drop_index("ix_ui_sessions_email", table_name="ui_sessions")
    op.drop_table("ui_sessions")
    op.drop_index("ix_ui_users_tenant_id", table_name="ui_users")
    op.drop_table("ui_users")
