"""The product catalog: products, their rate plans, and the plans' charges.

Prices live with the charge as JSONB (currency → tiers, decimals as exact strings): a charge is
always read whole, and subscriptions copy its prices at the time they subscribe.
"""

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Table,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from partnerbill.core.db import metadata
from partnerbill.core.tenant_tables import (
    tenant_column,
    tenant_foreign_key,
    tenant_primary_key,
    tenant_unique,
)

products = Table(
    "products",
    metadata,
    tenant_column(),
    Column("id", String(32), nullable=False),
    Column("name", String(100), nullable=False),
    Column("sku", String(50), nullable=False),
    Column("product_number", String(100), nullable=False),
    Column("category", String(32), nullable=False),
    Column("description", String(500)),
    Column("effective_start_date", Date, nullable=False),
    Column("effective_end_date", Date, nullable=False),
    Column("custom_fields", JSONB, nullable=False, server_default="{}"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    tenant_primary_key("id"),
    tenant_unique("sku"),
    tenant_unique("product_number"),
)

product_rate_plans = Table(
    "product_rate_plans",
    metadata,
    tenant_column(),
    Column("id", String(32), nullable=False),
    Column("product_id", String(32), nullable=False),
    Column("product_rate_plan_number", String(100), nullable=False),
    Column("name", String(255), nullable=False),
    Column("description", String(500)),
    Column("effective_start_date", Date, nullable=False),
    Column("effective_end_date", Date, nullable=False),
    Column("custom_fields", JSONB, nullable=False, server_default="{}"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    tenant_primary_key("id"),
    tenant_unique("product_rate_plan_number"),
    tenant_foreign_key("product_id", "products"),
    Index("ix_product_rate_plans_product", "tenant_id", "product_id", "id"),
)

product_rate_plan_charges = Table(
    "product_rate_plan_charges",
    metadata,
    tenant_column(),
    Column("id", String(32), nullable=False),
    Column("product_rate_plan_id", String(32), nullable=False),
    Column("product_rate_plan_charge_number", String(100), nullable=False),
    Column("name", String(100), nullable=False),
    Column("charge_type", String(16), nullable=False),
    Column("charge_model", String(16), nullable=False),
    Column("billing_period", String(16)),
    Column("specific_billing_period", SmallInteger),
    Column("billing_timing", String(16), nullable=False),
    Column("bill_cycle_type", String(32), nullable=False),
    Column("bill_cycle_day", SmallInteger),
    Column("trigger_event", String(32), nullable=False),
    Column("end_date_condition", String(32), nullable=False),
    Column("up_to_periods", Integer),
    Column("up_to_periods_type", String(16)),
    Column("default_quantity", Numeric),
    Column("uom", String(25)),
    Column("tiers", JSONB, nullable=False),
    Column("description", String(500)),
    Column("custom_fields", JSONB, nullable=False, server_default="{}"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    tenant_primary_key("id"),
    tenant_unique("product_rate_plan_charge_number"),
    tenant_foreign_key(
        "product_rate_plan_id",
        "product_rate_plans",
    ),
    Index("ix_product_rate_plan_charges_plan", "tenant_id", "product_rate_plan_id", "id"),
)
