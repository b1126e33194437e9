"""foundation

Revision ID: 0001
Revises:
Create Date: 2026-11-27 19:32:03.085821

The platform tables, accounts, the metrics cache and change log, standalone invoices; the
procrastinate job schema; the key that signs access tokens.
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_number", sa.String(length=70), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="Active", nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("bill_cycle_day", sa.SmallInteger(), nullable=False),
        sa.Column(
            "bcd_setting_option", sa.String(length=16), server_default="ManualSet", nullable=False
        ),
        sa.Column(
            "payment_term", sa.String(length=64), server_default="Due Upon Receipt", nullable=False
        ),
        sa.Column("auto_pay", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("batch", sa.String(length=20), server_default="Batch1", nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("crm_id", sa.String(length=100), nullable=True),
        sa.Column("sales_rep", sa.String(length=50), nullable=True),
        sa.Column("purchase_order_number", sa.String(length=100), nullable=True),
        sa.Column("customer_service_rep_name", sa.String(length=50), nullable=True),
        sa.Column(
            "invoice_delivery_prefs_email", sa.Boolean(), server_default="false", nullable=False
        ),
        sa.Column(
            "invoice_delivery_prefs_print", sa.Boolean(), server_default="false", nullable=False
        ),
        sa.Column("partner_account", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("bill_to_contact", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("sold_to_contact", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "custom_fields",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
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
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_accounts")),
        sa.UniqueConstraint(
            "tenant_id", "account_number", name=op.f("uq_accounts_tenant_id_account_number")
        ),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(
        op.f("ix_idempotency_keys_expires_at"), "idempotency_keys", ["expires_at"], unique=False
    )
    op.create_table(
        "metrics_changes",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("tenant_id", "account_id", "id", name=op.f("pk_metrics_changes")),
    )
    op.create_table(
        "oauth_clients",
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_oauth_clients")),
    )
    op.create_index(
        op.f("ix_oauth_clients_tenant_id"), "oauth_clients", ["tenant_id"], unique=False
    )
    op.create_table(
        "signing_keys",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_signing_keys")),
    )
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "metrics_refresh_interval_seconds", sa.Integer(), server_default="3600", nullable=False
        ),
        sa.Column("lock_wait_ms", sa.Integer(), server_default="3000", nullable=False),
        sa.Column("invoice_batch_limit", sa.Integer(), server_default="50", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "invoice_batch_limit BETWEEN 1 AND 1000", name=op.f("ck_tenants_batch_limit_range")
        ),
        sa.CheckConstraint(
            "lock_wait_ms BETWEEN 1 AND 60000", name=op.f("ck_tenants_lock_wait_range")
        ),
        sa.CheckConstraint(
            "metrics_refresh_interval_seconds >= 60", name=op.f("ck_tenants_refresh_interval_min")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("name", name=op.f("uq_tenants_name")),
        sa.UniqueConstraint("number", name=op.f("uq_tenants_number")),
    )
    op.create_table(
        "account_metrics",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("total_invoice_balance", sa.Numeric(), server_default="0", nullable=False),
        sa.Column("total_debit_memo_balance", sa.Numeric(), server_default="0", nullable=False),
        sa.Column("unapplied_payment_amount", sa.Numeric(), server_default="0", nullable=False),
        sa.Column("unapplied_credit_memo_amount", sa.Numeric(), server_default="0", nullable=False),
        sa.Column("credit_balance", sa.Numeric(), server_default="0", nullable=False),
        sa.Column("reserved_payment_amount", sa.Numeric(), server_default="0", nullable=False),
        sa.Column("contracted_mrr", sa.Numeric(), server_default="0", nullable=False),
        sa.Column("last_invoice_date", sa.Date(), nullable=True),
        sa.Column("last_metrics_update", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "account_id"],
            ["accounts.tenant_id", "accounts.id"],
            name=op.f("fk_account_metrics_tenant_id_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "account_id", name=op.f("pk_account_metrics")),
    )
    op.create_table(
        "invoices",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("invoice_number", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source_type", sa.String(length=16), server_default="Standalone", nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("invoice_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("payment_term", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.Numeric(), nullable=False),
        sa.Column("balance", sa.Numeric(), nullable=False),
        sa.Column("auto_pay", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("comments", sa.Text(), nullable=True),
        sa.Column(
            "custom_fields",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("posted_date", sa.DateTime(timezone=True), nullable=True),
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
            name=op.f("fk_invoices_tenant_id_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_invoices")),
        sa.UniqueConstraint(
            "tenant_id", "invoice_number", name=op.f("uq_invoices_tenant_id_invoice_number")
        ),
    )
    op.create_index(
        "ix_invoices_account_status",
        "invoices",
        ["tenant_id", "account_id", "status", "invoice_date"],
        unique=False,
        postgresql_include=["balance"],
    )
    op.create_table(
        "invoice_items",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("invoice_id", sa.String(length=32), nullable=False),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column("charge_name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("sku", sa.String(length=100), nullable=True),
        sa.Column("uom", sa.String(length=25), nullable=True),
        sa.Column("product_rate_plan_charge_id", sa.String(length=32), nullable=True),
        sa.Column("quantity", sa.Numeric(), nullable=False),
        sa.Column("unit_price", sa.Numeric(), nullable=False),
        sa.Column("amount", sa.Numeric(), nullable=False),
        sa.Column("balance", sa.Numeric(), nullable=False),
        sa.Column("service_start_date", sa.Date(), nullable=False),
        sa.Column("service_end_date", sa.Date(), nullable=False),
        sa.Column("charge_date", sa.DateTime(), nullable=True),
        sa.Column("tax_code", sa.String(length=64), nullable=True),
        sa.Column("tax_mode", sa.String(length=16), nullable=True),
        sa.Column(
            "custom_fields",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "invoice_id"],
            ["invoices.tenant_id", "invoices.id"],
            name=op.f("fk_invoice_items_tenant_id_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_invoice_items")),
        sa.UniqueConstraint(
            "tenant_id",
            "invoice_id",
            "line_number",
            name=op.f("uq_invoice_items_tenant_id_invoice_id_line_number"),
        ),
    )
    # Straight to psycopg without parameters: the schema's SQL contains literal '%' signs.
    with op.get_bind().connection.dbapi_connection.cursor() as cursor:  # type: ignore[union-attr]
        cursor.execute(SchemaManager.get_schema())
    signing_keys = sa.table("signing_keys", sa.column("name"), sa.column("secret"))
    op.bulk_insert(signing_keys, [{"name": "access_token", "secret": secrets.token_bytes(32)}])


def downgrade() -> None:
    op.drop_table("invoice_items")
    op.drop_index(
        "ix_invoices_account_status", table_name="invoices", postgresql_include=["balance"]
    )
    op.drop_table("invoices")
    op.drop_table("account_metrics")
    op.drop_table("tenants")
    op.drop_table("signing_keys")
    op.drop_index(op.f("ix_oauth_clients_tenant_id"), table_name="oauth_clients")
    op.drop_table("oauth_clients")
    op.drop_table("metrics_changes")
    op.drop_index(op.f("ix_idempotency_keys_expires_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_table("accounts")
