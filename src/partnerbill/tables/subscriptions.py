"""Subscriptions, their rate plans, and their charges' segments.

A charge is a chain of segments sharing a `charge_number`: an UpdateProduct effective on a date ends
the current segment there and starts the next with the new quantity or price. The last segment
(`is_last_segment`) is what contractedMrr counts. `charged_through_date` (exclusive) is how far a
segment has been billed: a bill run never bills before it, and credits what lies beyond a segment's
end when the segment was cut after it was billed.

Each version has its own id, as in Zuora (`version_id`; the row's `id` stays for internal
references). An amendment keeps the version it replaces as a JSON snapshot under that version's
id (`subscription_versions`), so a GET by an old version's id answers with that version and
`isLatestVersion: false`.
"""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, NotRequired, TypedDict, cast

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Row

from partnerbill.core.db import metadata
from partnerbill.core.tenant_tables import (
    tenant_column,
    tenant_foreign_key,
    tenant_primary_key,
    tenant_unique,
)
from partnerbill.tables.catalog import StoredTier


class SubscriptionStatus(StrEnum):
    """A subscription's status (Zuora's values, stored as they are)."""

    ACTIVE = "Active"
    CANCELLED = "Cancelled"
    SUSPENDED = "Suspended"


subscriptions = Table(
    "subscriptions",
    metadata,
    tenant_column(),
    Column("id", String(32), nullable=False),  # stable: rate plans, charges and lines use it
    Column("version_id", String(32), nullable=False),  # the id clients see: new per version
    Column("subscription_number", String(100), nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("account_id", String(32), nullable=False),  # the subscription owner
    Column("invoice_owner_account_id", String(32), nullable=False),
    Column("status", String(24), nullable=False),  # SubscriptionStatus
    Column("currency", String(3), nullable=False),
    Column("term_type", String(16), nullable=False),
    Column("initial_term", Integer),
    Column("initial_term_period_type", String(8)),
    Column("renewal_term", Integer),
    Column("renewal_term_period_type", String(8)),
    Column("renewal_setting", String(32), nullable=False),
    Column("auto_renew", Boolean, nullable=False),
    Column("contract_effective_date", Date, nullable=False),
    Column("service_activation_date", Date, nullable=False),
    Column("customer_acceptance_date", Date, nullable=False),
    Column("term_start_date", Date, nullable=False),
    Column("term_end_date", Date),  # exclusive; null for evergreen
    Column("cancelled_date", Date),  # service ends before this date
    Column("suspended_date", Date),
    Column("resume_date", Date),
    Column("invoice_separately", Boolean, nullable=False, server_default="false"),
    Column("notes", Text),
    Column("order_id", String(32)),
    Column("custom_fields", JSONB, nullable=False, server_default="{}"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    tenant_primary_key("id"),
    tenant_unique("subscription_number"),
    tenant_unique("version_id"),
    tenant_foreign_key("account_id", "accounts"),
    tenant_foreign_key("invoice_owner_account_id", "accounts"),
    Index("ix_subscriptions_owner", "tenant_id", "account_id"),
    Index("ix_subscriptions_account_id_order", "tenant_id", "account_id", "id"),
    Index("ix_subscriptions_invoice_owner", "tenant_id", "invoice_owner_account_id", "id"),
)


class _SubscriptionColumns(TypedDict):
    """The columns a subscription has from its insert on."""

    id: str
    version_id: str
    account_id: str
    invoice_owner_account_id: str
    status: str  # a SubscriptionStatus
    currency: str
    term_type: str
    initial_term: int | None
    initial_term_period_type: str | None
    renewal_term: int | None
    renewal_term_period_type: str | None
    renewal_setting: str
    auto_renew: bool
    contract_effective_date: date
    service_activation_date: date
    customer_acceptance_date: date
    term_start_date: date
    term_end_date: date | None
    invoice_separately: bool
    notes: str | None
    order_id: str | None


class SubscriptionRow(_SubscriptionColumns):
    """A `subscriptions` row as a dict, the one an amendment reads and changes in place."""

    tenant_id: str
    subscription_number: str
    version: int
    cancelled_date: date | None
    suspended_date: date | None
    resume_date: date | None
    custom_fields: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class NewSubscriptionRow(_SubscriptionColumns):
    """A `subscriptions` row to insert: numbered at insert when it has no number."""

    subscription_number: str | None


class SubscriptionChanges(TypedDict, total=False):
    """What an amendment changes on a subscription's row (`service.save`)."""

    version: int
    version_id: str
    account_id: str
    invoice_owner_account_id: str
    status: str  # a SubscriptionStatus
    term_type: str
    initial_term: int | None
    initial_term_period_type: str | None
    renewal_term: int | None
    renewal_term_period_type: str | None
    renewal_setting: str
    auto_renew: bool
    term_start_date: date
    term_end_date: date | None
    cancelled_date: date | None
    suspended_date: date | None
    resume_date: date | None
    invoice_separately: bool
    notes: str | None


def subscription_row(row: Row[Any]) -> SubscriptionRow:
    """A row read from `subscriptions` (every column) as the dict an amendment changes."""
    return cast(SubscriptionRow, row._asdict())


subscription_versions = Table(
    "subscription_versions",
    metadata,
    tenant_column(),
    Column("id", String(32), nullable=False),  # the id that version had
    Column("subscription_id", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("snapshot", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    tenant_primary_key("id"),
    Index("ix_subscription_versions_subscription", "tenant_id", "subscription_id"),
)

rate_plans = Table(
    "rate_plans",
    metadata,
    tenant_column(),
    Column("id", String(32), nullable=False),
    Column("subscription_id", String(32), nullable=False),
    Column("rate_plan_number", String(64), nullable=False),
    Column("product_rate_plan_id", String(32), nullable=False),
    Column("product_id", String(32), nullable=False),
    Column("product_name", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("last_change_type", String(8), nullable=False),  # Add | Update | Remove
    Column("removed_date", Date),
    Column("unique_token", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    tenant_primary_key("id"),
    tenant_unique("rate_plan_number"),
    Index("ix_rate_plans_subscription", "tenant_id", "subscription_id"),
)


class NewRatePlanRow(TypedDict):
    """A `rate_plans` row to insert, numbered at insert."""

    id: str
    subscription_id: str
    product_rate_plan_id: str
    product_id: str
    product_name: str
    name: str
    last_change_type: str
    unique_token: str | None
    rate_plan_number: NotRequired[str]


rate_plan_charges = Table(
    "rate_plan_charges",
    metadata,
    tenant_column(),
    Column("id", String(32), nullable=False),
    Column("subscription_id", String(32), nullable=False),
    Column("rate_plan_id", String(32), nullable=False),
    Column("charge_number", String(64), nullable=False),
    Column("segment", SmallInteger, nullable=False),
    Column("is_last_segment", Boolean, nullable=False),
    Column("product_rate_plan_charge_id", String(32), nullable=False),
    Column("name", String(255), nullable=False),
    Column("charge_type", String(16), nullable=False),
    Column("charge_model", String(16), nullable=False),
    Column("billing_period", String(24)),
    Column("specific_billing_period", Integer),
    Column("billing_timing", String(16), nullable=False),
    Column("bill_cycle_day", SmallInteger, nullable=False),
    Column("trigger_event", String(24), nullable=False),
    Column("end_date_condition", String(24), nullable=False),
    Column("quantity", Numeric, nullable=False),
    Column("tiers", JSONB, nullable=False),
    Column("uom", String(25)),
    Column("description", String(500)),
    Column("effective_start_date", Date, nullable=False),
    Column("effective_end_date", Date),  # exclusive; null: runs to the subscription's end
    Column("charged_through_date", Date),  # exclusive
    Column("mrr", Numeric, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    tenant_primary_key("id"),
    tenant_unique("charge_number", "segment"),
    Index("ix_rate_plan_charges_subscription", "tenant_id", "subscription_id"),
    tenant_foreign_key("rate_plan_id", "rate_plans", ondelete="CASCADE"),
)


class _ChargeSegmentColumns(TypedDict):
    """The columns a charge segment has from its insert on."""

    id: str
    subscription_id: str
    rate_plan_id: str
    segment: int
    is_last_segment: bool
    product_rate_plan_charge_id: str
    name: str
    charge_type: str  # a catalog ChargeType
    charge_model: str  # a catalog ChargeModel
    billing_period: str | None
    specific_billing_period: int | None
    billing_timing: str
    bill_cycle_day: int
    trigger_event: str
    end_date_condition: str
    quantity: Decimal
    tiers: list[StoredTier]
    uom: str | None
    description: str | None
    effective_start_date: date
    effective_end_date: date | None
    charged_through_date: date | None
    mrr: Decimal


class NewChargeSegment(_ChargeSegmentColumns):
    """A charge's first segment to insert, numbered at insert."""

    charge_number: NotRequired[str]


class ChargeSegment(_ChargeSegmentColumns):
    """A `rate_plan_charges` row as a dict."""

    tenant_id: str
    charge_number: str
    created_at: datetime


def charge_segment(row: Row[Any]) -> ChargeSegment:
    """A row read from `rate_plan_charges` (every column) as a dict."""
    return cast(ChargeSegment, row._asdict())
