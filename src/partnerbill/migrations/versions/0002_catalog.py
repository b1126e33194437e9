"""catalog

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 10:00:00.000000

Products, product rate plans and their charges; the per-tenant sequences that number them, for
the tenants that exist already (new tenants get theirs from `create_tenant`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQUENCE_KINDS = ("product_number", "product_rate_plan_number", "product_rate_plan_charge_number")


def _timestamps() -> list[sa.Column[sa.DateTime]]:
    return [
        sa.Column(
            name,
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        )
        for name in ("created_at", "updated_at")
    ]


def _custom_fields() -> sa.Column[postgresql.JSONB]:
    return sa.Column(
        "custom_fields",
        postgresql.JSONB(astext_type=sa.Text()),
        server_default="{}",
        nullable=False,
    )


def _tenant_numbers() -> list[int]:
    return list(op.get_bind().execute(sa.text("SELECT number FROM tenants")).scalars())


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("sku", sa.String(length=50), nullable=False),
        sa.Column("product_number", sa.String(length=100), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("effective_start_date", sa.Date(), nullable=False),
        sa.Column("effective_end_date", sa.Date(), nullable=False),
        _custom_fields(),
        *_timestamps(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_products")),
        sa.UniqueConstraint("tenant_id", "sku", name=op.f("uq_products_tenant_id_sku")),
        sa.UniqueConstraint(
            "tenant_id", "product_number", name=op.f("uq_products_tenant_id_product_number")
        ),
    )
    op.create_table(
        "product_rate_plans",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("product_id", sa.String(length=32), nullable=False),
        sa.Column("product_rate_plan_number", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("effective_start_date", sa.Date(), nullable=False),
        sa.Column("effective_end_date", sa.Date(), nullable=False),
        _custom_fields(),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["tenant_id", "product_id"],
            ["products.tenant_id", "products.id"],
            name=op.f("fk_product_rate_plans_tenant_id_product_id_products"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_product_rate_plans")),
        sa.UniqueConstraint(
            "tenant_id",
            "product_rate_plan_number",
            name=op.f("uq_product_rate_plans_tenant_id_product_rate_plan_number"),
        ),
    )
    op.create_index(
        "ix_product_rate_plans_product",
        "product_rate_plans",
        ["tenant_id", "product_id", "id"],
        unique=False,
    )
    op.create_table(
        "product_rate_plan_charges",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("product_rate_plan_id", sa.String(length=32), nullable=False),
        sa.Column("product_rate_plan_charge_number", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("charge_type", sa.String(length=16), nullable=False),
        sa.Column("charge_model", sa.String(length=16), nullable=False),
        sa.Column("billing_period", sa.String(length=16), nullable=True),
        sa.Column("specific_billing_period", sa.SmallInteger(), nullable=True),
        sa.Column("billing_timing", sa.String(length=16), nullable=False),
        sa.Column("bill_cycle_type", sa.String(length=32), nullable=False),
        sa.Column("bill_cycle_day", sa.SmallInteger(), nullable=True),
        sa.Column("trigger_event", sa.String(length=32), nullable=False),
        sa.Column("end_date_condition", sa.String(length=32), nullable=False),
        sa.Column("up_to_periods", sa.Integer(), nullable=True),
        sa.Column("up_to_periods_type", sa.String(length=16), nullable=True),
        sa.Column("default_quantity", sa.Numeric(), nullable=True),
        sa.Column("uom", sa.String(length=25), nullable=True),
        sa.Column("tiers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        _custom_fields(),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["tenant_id", "product_rate_plan_id"],
            ["product_rate_plans.tenant_id", "product_rate_plans.id"],
            name=op.f(
                "fk_product_rate_plan_charges_tenant_id_product_rate_plan_id_product_rate_plans"
            ),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_product_rate_plan_charges")),
        sa.UniqueConstraint(
            "tenant_id",
            "product_rate_plan_charge_number",
            name=op.f("uq_product_rate_plan_charges_tenant_id_product_rate_plan_charge_number"),
        ),
    )
    op.create_index(
        "ix_product_rate_plan_charges_plan",
        "product_rate_plan_charges",
        ["tenant_id", "product_rate_plan_id", "id"],
        unique=False,
    )
    for number in _tenant_numbers():
        for kind in SEQUENCE_KINDS:
            op.execute(f'CREATE SEQUENCE IF NOT EXISTS "{kind}_t{number}"')


def downgrade() -> None:
    for number in _tenant_numbers():
        for kind in SEQUENCE_KINDS:
            op.execute(f'DROP SEQUENCE IF EXISTS "{kind}_t{number}"')
    op.drop_index("ix_product_rate_plan_charges_plan", table_name="product_rate_plan_charges")
    op.drop_table("product_rate_plan_charges")
    op.drop_index("ix_product_rate_plans_product", table_name="product_rate_plans")
    op.drop_table("product_rate_plans")
    op.drop_table("products")
