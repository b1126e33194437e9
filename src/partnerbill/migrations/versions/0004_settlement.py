"""settlement

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 20:07:23.855820

Payments, refunds and the application ledger; credit and debit memos with their items; the
new per-tenant document sequences.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

NEW_SEQUENCES = ("payment_number", "refund_number", "credit_memo_number", "debit_memo_number")


revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "applications",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("source_type", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.String(length=32), nullable=False),
        sa.Column("target_type", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.Numeric(), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_applications")),
    )
    op.create_index(
        "ix_applications_source",
        "applications",
        ["tenant_id", "source_id", "target_id"],
        unique=False,
    )
    op.create_index(
        "ix_applications_target", "applications", ["tenant_id", "target_id"], unique=False
    )
    op.create_table(
        "refunds",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("refund_number", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("source_type", sa.String(length=16), nullable=False),
        sa.Column("payment_id", sa.String(length=32), nullable=True),
        sa.Column("credit_memo_id", sa.String(length=32), nullable=True),
        sa.Column("amount", sa.Numeric(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("method_type", sa.String(length=32), nullable=True),
        sa.Column("refund_date", sa.Date(), nullable=False),
        sa.Column("reason_code", sa.String(length=100), nullable=True),
        sa.Column("reference_id", sa.String(length=100), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_refunds")),
        sa.UniqueConstraint(
            "tenant_id", "refund_number", name=op.f("uq_refunds_tenant_id_refund_number")
        ),
    )
    op.create_index("ix_refunds_account", "refunds", ["tenant_id", "account_id"], unique=False)
    op.create_table(
        "credit_memos",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("memo_number", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.Numeric(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("memo_date", sa.Date(), nullable=False),
        sa.Column("referred_invoice_id", sa.String(length=32), nullable=True),
        sa.Column("reason_code", sa.String(length=100), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("posted_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applied_amount", sa.Numeric(), server_default="0", nullable=False),
        sa.Column("refund_amount", sa.Numeric(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "account_id"],
            ["accounts.tenant_id", "accounts.id"],
            name=op.f("fk_credit_memos_tenant_id_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_credit_memos")),
        sa.UniqueConstraint(
            "tenant_id", "memo_number", name=op.f("uq_credit_memos_tenant_id_memo_number")
        ),
    )
    op.create_index(
        "ix_credit_memos_account",
        "credit_memos",
        ["tenant_id", "account_id", "status"],
        unique=False,
    )
    op.create_index(
        "ix_credit_memos_invoice",
        "credit_memos",
        ["tenant_id", "referred_invoice_id"],
        unique=False,
    )
    op.create_table(
        "debit_memos",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("memo_number", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.Numeric(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("memo_date", sa.Date(), nullable=False),
        sa.Column("referred_invoice_id", sa.String(length=32), nullable=True),
        sa.Column("reason_code", sa.String(length=100), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("posted_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("balance", sa.Numeric(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "account_id"],
            ["accounts.tenant_id", "accounts.id"],
            name=op.f("fk_debit_memos_tenant_id_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_debit_memos")),
        sa.UniqueConstraint(
            "tenant_id", "memo_number", name=op.f("uq_debit_memos_tenant_id_memo_number")
        ),
    )
    op.create_index(
        "ix_debit_memos_account", "debit_memos", ["tenant_id", "account_id", "status"], unique=False
    )
    op.create_index(
        "ix_debit_memos_invoice", "debit_memos", ["tenant_id", "referred_invoice_id"], unique=False
    )
    op.create_table(
        "payments",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("payment_number", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.Numeric(), nullable=False),
        sa.Column("applied_amount", sa.Numeric(), server_default="0", nullable=False),
        sa.Column("refund_amount", sa.Numeric(), server_default="0", nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("payment_method_type", sa.String(length=32), nullable=True),
        sa.Column("reference_id", sa.String(length=100), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "account_id"],
            ["accounts.tenant_id", "accounts.id"],
            name=op.f("fk_payments_tenant_id_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_payments")),
        sa.UniqueConstraint(
            "tenant_id", "payment_number", name=op.f("uq_payments_tenant_id_payment_number")
        ),
    )
    op.create_index(
        "ix_payments_account",
        "payments",
        ["tenant_id", "account_id", "status", "effective_date", "created_at"],
        unique=False,
    )
    op.create_table(
        "credit_memo_items",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("memo_id", sa.String(length=32), nullable=False),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column("invoice_item_id", sa.String(length=32), nullable=True),
        sa.Column("product_rate_plan_charge_id", sa.String(length=32), nullable=True),
        sa.Column("sku_name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("amount", sa.Numeric(), nullable=False),
        sa.Column("quantity", sa.Numeric(), nullable=True),
        sa.Column("service_start_date", sa.Date(), nullable=True),
        sa.Column("service_end_date", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "memo_id"],
            ["credit_memos.tenant_id", "credit_memos.id"],
            name=op.f("fk_credit_memo_items_tenant_id_memo_id_credit_memos"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_credit_memo_items")),
    )
    op.create_index(
        "ix_credit_memo_items_invoice_item",
        "credit_memo_items",
        ["tenant_id", "invoice_item_id"],
        unique=False,
    )
    op.create_index(
        "ix_credit_memo_items_memo", "credit_memo_items", ["tenant_id", "memo_id"], unique=False
    )
    op.create_table(
        "debit_memo_items",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("memo_id", sa.String(length=32), nullable=False),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column("invoice_item_id", sa.String(length=32), nullable=True),
        sa.Column("product_rate_plan_charge_id", sa.String(length=32), nullable=True),
        sa.Column("sku_name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("amount", sa.Numeric(), nullable=False),
        sa.Column("quantity", sa.Numeric(), nullable=True),
        sa.Column("service_start_date", sa.Date(), nullable=True),
        sa.Column("service_end_date", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "memo_id"],
            ["debit_memos.tenant_id", "debit_memos.id"],
            name=op.f("fk_debit_memo_items_tenant_id_memo_id_debit_memos"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_debit_memo_items")),
    )
    op.create_index(
        "ix_debit_memo_items_invoice_item",
        "debit_memo_items",
        ["tenant_id", "invoice_item_id"],
        unique=False,
    )
    op.create_index(
        "ix_debit_memo_items_memo", "debit_memo_items", ["tenant_id", "memo_id"], unique=False
    )
    op.add_column("account_metrics", sa.Column("last_payment_date", sa.Date(), nullable=True))
    op.add_column("account_metrics", sa.Column("last_payment_amount", sa.Numeric(), nullable=True))
    for kind in NEW_SEQUENCES:
        op.execute(
            f"DO $$ DECLARE t record; BEGIN FOR t IN SELECT number FROM tenants LOOP "
            f"EXECUTE format('CREATE SEQUENCE IF NOT EXISTS %I', '{kind}_t' || t.number); "
            f"END LOOP; END $$"
        )


def downgrade() -> None:
    op.drop_column("account_metrics", "last_payment_amount")
    op.drop_column("account_metrics", "last_payment_date")
    op.drop_index("ix_debit_memo_items_memo", table_name="debit_memo_items")
    op.drop_index("ix_debit_memo_items_invoice_item", table_name="debit_memo_items")
    op.drop_table("debit_memo_items")
    op.drop_index("ix_credit_memo_items_memo", table_name="credit_memo_items")
    op.drop_index("ix_credit_memo_items_invoice_item", table_name="credit_memo_items")
    op.drop_table("credit_memo_items")
    op.drop_index("ix_payments_account", table_name="payments")
    op.drop_table("payments")
    op.drop_index("ix_debit_memos_invoice", table_name="debit_memos")
    op.drop_index("ix_debit_memos_account", table_name="debit_memos")
    op.drop_table("debit_memos")
    op.drop_index("ix_credit_memos_invoice", table_name="credit_memos")
    op.drop_index("ix_credit_memos_account", table_name="credit_memos")
    op.drop_table("credit_memos")
    op.drop_index("ix_refunds_account", table_name="refunds")
    op.drop_table("refunds")
    op.drop_index("ix_applications_target", table_name="applications")
    op.drop_index("ix_applications_source", table_name="applications")
    op.drop_table("applications")
