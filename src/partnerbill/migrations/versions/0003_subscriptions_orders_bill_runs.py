"""subscriptions, orders, bill runs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 20:02:02.325478

Subscriptions with rate plans and charge segments, orders and async order jobs, bill runs,
subscription lines on invoice items, order limits per tenant, and the new document sequences.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

NEW_SEQUENCES = (
    "subscription_number",
    "rate_plan_number",
    "charge_number",
    "order_number",
    "bill_run_number",
)

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "async_jobs",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("job_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("request", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("errors", sa.Text(), nullable=True),
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
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_async_jobs")),
    )
    op.create_table(
        "bill_runs",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("bill_run_number", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("target_date", sa.Date(), nullable=False),
        sa.Column("invoice_date", sa.Date(), nullable=False),
        sa.Column("auto_post", sa.Boolean(), nullable=False),
        sa.Column(
            "charge_type_to_exclude",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("account_id", sa.String(length=32), nullable=True),
        sa.Column("bill_cycle_day", sa.String(length=20), nullable=True),
        sa.Column(
            "batches", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column("invoice_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
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
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_bill_runs")),
        sa.UniqueConstraint(
            "tenant_id", "bill_run_number", name=op.f("uq_bill_runs_tenant_id_bill_run_number")
        ),
    )
    op.create_table(
        "orders",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("order_number", sa.String(length=100), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("order_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_orders")),
        sa.UniqueConstraint(
            "tenant_id", "order_number", name=op.f("uq_orders_tenant_id_order_number")
        ),
    )
    op.create_index("ix_orders_account", "orders", ["tenant_id", "account_id"], unique=False)
    op.create_table(
        "rate_plans",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("subscription_id", sa.String(length=32), nullable=False),
        sa.Column("rate_plan_number", sa.String(length=64), nullable=False),
        sa.Column("product_rate_plan_id", sa.String(length=32), nullable=False),
        sa.Column("product_id", sa.String(length=32), nullable=False),
        sa.Column("product_name", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("last_change_type", sa.String(length=8), nullable=False),
        sa.Column("removed_date", sa.Date(), nullable=True),
        sa.Column("unique_token", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_rate_plans")),
        sa.UniqueConstraint(
            "tenant_id", "rate_plan_number", name=op.f("uq_rate_plans_tenant_id_rate_plan_number")
        ),
    )
    op.create_index(
        "ix_rate_plans_subscription", "rate_plans", ["tenant_id", "subscription_id"], unique=False
    )
    op.create_table(
        "subscription_versions",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("subscription_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_subscription_versions")),
    )
    op.create_index(
        "ix_subscription_versions_subscription",
        "subscription_versions",
        ["tenant_id", "subscription_id"],
        unique=False,
    )
    op.create_table(
        "rate_plan_charges",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("subscription_id", sa.String(length=32), nullable=False),
        sa.Column("rate_plan_id", sa.String(length=32), nullable=False),
        sa.Column("charge_number", sa.String(length=64), nullable=False),
        sa.Column("segment", sa.SmallInteger(), nullable=False),
        sa.Column("is_last_segment", sa.Boolean(), nullable=False),
        sa.Column("product_rate_plan_charge_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("charge_type", sa.String(length=16), nullable=False),
        sa.Column("charge_model", sa.String(length=16), nullable=False),
        sa.Column("billing_period", sa.String(length=24), nullable=True),
        sa.Column("specific_billing_period", sa.Integer(), nullable=True),
        sa.Column("billing_timing", sa.String(length=16), nullable=False),
        sa.Column("bill_cycle_day", sa.SmallInteger(), nullable=False),
        sa.Column("trigger_event", sa.String(length=24), nullable=False),
        sa.Column("end_date_condition", sa.String(length=24), nullable=False),
        sa.Column("quantity", sa.Numeric(), nullable=False),
        sa.Column("tiers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("uom", sa.String(length=25), nullable=True),
        sa.Column("effective_start_date", sa.Date(), nullable=False),
        sa.Column("effective_end_date", sa.Date(), nullable=True),
        sa.Column("charged_through_date", sa.Date(), nullable=True),
        sa.Column("mrr", sa.Numeric(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "rate_plan_id"],
            ["rate_plans.tenant_id", "rate_plans.id"],
            name=op.f("fk_rate_plan_charges_tenant_id_rate_plan_id_rate_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_rate_plan_charges")),
        sa.UniqueConstraint(
            "tenant_id",
            "charge_number",
            "segment",
            name=op.f("uq_rate_plan_charges_tenant_id_charge_number_segment"),
        ),
    )
    op.create_index(
        "ix_rate_plan_charges_subscription",
        "rate_plan_charges",
        ["tenant_id", "subscription_id"],
        unique=False,
    )
    op.create_table(
        "subscriptions",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("version_id", sa.String(length=32), nullable=False),
        sa.Column("subscription_number", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("invoice_owner_account_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("term_type", sa.String(length=16), nullable=False),
        sa.Column("initial_term", sa.Integer(), nullable=True),
        sa.Column("initial_term_period_type", sa.String(length=8), nullable=True),
        sa.Column("renewal_term", sa.Integer(), nullable=True),
        sa.Column("renewal_term_period_type", sa.String(length=8), nullable=True),
        sa.Column("renewal_setting", sa.String(length=32), nullable=False),
        sa.Column("auto_renew", sa.Boolean(), nullable=False),
        sa.Column("contract_effective_date", sa.Date(), nullable=False),
        sa.Column("service_activation_date", sa.Date(), nullable=False),
        sa.Column("customer_acceptance_date", sa.Date(), nullable=False),
        sa.Column("term_start_date", sa.Date(), nullable=False),
        sa.Column("term_end_date", sa.Date(), nullable=True),
        sa.Column("cancelled_date", sa.Date(), nullable=True),
        sa.Column("suspended_date", sa.Date(), nullable=True),
        sa.Column("resume_date", sa.Date(), nullable=True),
        sa.Column("invoice_separately", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("order_id", sa.String(length=32), nullable=True),
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
        sa.ForeignKeyConstraint(
            ["tenant_id", "account_id"],
            ["accounts.tenant_id", "accounts.id"],
            name=op.f("fk_subscriptions_tenant_id_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "invoice_owner_account_id"],
            ["accounts.tenant_id", "accounts.id"],
            name=op.f("fk_subscriptions_tenant_id_invoice_owner_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint(
            "tenant_id",
            "subscription_number",
            name=op.f("uq_subscriptions_tenant_id_subscription_number"),
        ),
        sa.UniqueConstraint(
            "tenant_id", "version_id", name=op.f("uq_subscriptions_tenant_id_version_id")
        ),
    )
    op.create_index(
        "ix_subscriptions_invoice_owner",
        "subscriptions",
        ["tenant_id", "invoice_owner_account_id", "id"],
        unique=False,
    )
    op.create_index(
        "ix_subscriptions_owner", "subscriptions", ["tenant_id", "account_id"], unique=False
    )
    op.add_column(
        "invoice_items", sa.Column("subscription_id", sa.String(length=32), nullable=True)
    )
    op.add_column(
        "invoice_items", sa.Column("rate_plan_charge_id", sa.String(length=32), nullable=True)
    )
    op.add_column("invoice_items", sa.Column("charge_number", sa.String(length=64), nullable=True))
    op.add_column(
        "invoice_items",
        sa.Column("charge_type", sa.String(length=16), server_default="OneTime", nullable=False),
    )
    op.create_index(
        "ix_invoice_items_charge",
        "invoice_items",
        ["tenant_id", "rate_plan_charge_id"],
        unique=False,
    )
    op.add_column("invoices", sa.Column("bill_run_id", sa.String(length=32), nullable=True))
    op.add_column("invoices", sa.Column("target_date", sa.Date(), nullable=True))
    op.create_index("ix_invoices_bill_run", "invoices", ["tenant_id", "bill_run_id"], unique=False)
    op.add_column(
        "tenants", sa.Column("order_sync_limit", sa.Integer(), server_default="50", nullable=False)
    )
    op.add_column(
        "tenants",
        sa.Column("order_async_limit", sa.Integer(), server_default="300", nullable=False),
    )

    op.create_check_constraint(
        "order_sync_limit_range", "tenants", "order_sync_limit BETWEEN 1 AND 1000"
    )
    op.create_check_constraint(
        "order_async_limit_range", "tenants", "order_async_limit BETWEEN 1 AND 10000"
    )
    # The new per-tenant document sequences, for tenants that exist already.
    for kind in NEW_SEQUENCES:
        op.execute(
            f"DO $$ DECLARE t record; BEGIN FOR t IN SELECT number FROM tenants LOOP "
            f"EXECUTE format('CREATE SEQUENCE IF NOT EXISTS %I', '{kind}_t' || t.number); "
            f"END LOOP; END $$"
        )


def downgrade() -> None:
    op.drop_column("tenants", "order_async_limit")
    op.drop_column("tenants", "order_sync_limit")
    op.drop_index("ix_invoices_bill_run", table_name="invoices")
    op.drop_column("invoices", "target_date")
    op.drop_column("invoices", "bill_run_id")
    op.drop_index("ix_invoice_items_charge", table_name="invoice_items")
    op.drop_column("invoice_items", "charge_type")
    op.drop_column("invoice_items", "charge_number")
    op.drop_column("invoice_items", "rate_plan_charge_id")
    op.drop_column("invoice_items", "subscription_id")
    op.drop_index("ix_subscriptions_owner", table_name="subscriptions")
    op.drop_index("ix_subscriptions_invoice_owner", table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_index("ix_rate_plan_charges_subscription", table_name="rate_plan_charges")
    op.drop_table("rate_plan_charges")
    op.drop_index("ix_subscription_versions_subscription", table_name="subscription_versions")
    op.drop_table("subscription_versions")
    op.drop_index("ix_rate_plans_subscription", table_name="rate_plans")
    op.drop_table("rate_plans")
    op.drop_index("ix_orders_account", table_name="orders")
    op.drop_table("orders")
    op.drop_table("bill_runs")
    op.drop_table("async_jobs")
