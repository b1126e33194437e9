"""The product catalog: products, their rate plans, and the plans' charges.

Prices live with the charge as JSONB (currency → tiers, decimals as exact strings): a charge is
always read whole, and subscriptions copy its prices at the time they subscribe.
"""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol, TypedDict

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


class StoredTier(TypedDict):
    """A price tier as a charge's `tiers` JSON keeps it (a product rate plan charge's and a
    subscription charge segment's)."""

    tier: int
    startingUnit: str
    endingUnit: str | None
    price: str
    priceFormat: str  # a catalog PriceFormat


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


class ProductRow(Protocol):
    """A `products` row as read (every column), by attribute: a SQLAlchemy row of them is one
    as it is."""

    tenant_id: str
    id: str
    name: str
    sku: str
    product_number: str
    category: str
    description: str | None
    effective_start_date: date
    effective_end_date: date
    custom_fields: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ProductRatePlanStatus(StrEnum):
    """A product rate plan's status (not stored: every rate plan here is Active)."""

    ACTIVE = "Active"


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


class ProductRatePlanRow(Protocol):
    """A `product_rate_plans` row as read (every column), by attribute."""

    tenant_id: str
    id: str
    product_id: str
    product_rate_plan_number: str
    name: str
    description: str | None
    effective_start_date: date
    effective_end_date: date
    custom_fields: dict[str, Any]
    created_at: datetime
    updated_at: datetime


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


class ProductRatePlanChargeRow(Protocol):
    """A `product_rate_plan_charges` row as read (every column), by attribute."""

    tenant_id: str
    id: str
    product_rate_plan_id: str
    product_rate_plan_charge_number: str
    name: str
    charge_type: str
    charge_model: str
    billing_period: str | None
    specific_billing_period: int | None
    billing_timing: str
    bill_cycle_type: str
    bill_cycle_day: int | None
    trigger_event: str
    end_date_condition: str
    up_to_periods: int | None
    up_to_periods_type: str | None
    default_quantity: Decimal | None
    uom: str | None
    tiers: dict[str, list[StoredTier]]  # by currency
    description: str | None
    custom_fields: dict[str, Any]
    created_at: datetime
    updated_at: datetime
