"""Invoices and their items, and the statuses billing documents share."""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import NotRequired, TypedDict

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
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


class DocumentStatus(StrEnum):
    """An invoice's, credit memo's or debit memo's status (Zuora's values, stored as they are)."""

    DRAFT = "Draft"
    POSTED = "Posted"
    CANCELED = "Canceled"


# The values a status filter of a document list accepts.
DOCUMENT_STATUSES = tuple(DocumentStatus)

invoices = Table(
    "invoices",
    metadata,
    tenant_column(),
    Column("id", String(32), nullable=False),
    Column("invoice_number", String(64), nullable=False),
    Column("account_id", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # DocumentStatus
    Column("source_type", String(16), nullable=False, server_default="Standalone"),
    Column("currency", String(3), nullable=False),
    Column("invoice_date", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("payment_term", String(64), nullable=False),
    Column("amount", Numeric, nullable=False),
    Column("balance", Numeric, nullable=False),
    Column("auto_pay", Boolean, nullable=False, server_default="false"),
    Column("comments", Text),
    Column("custom_fields", JSONB, nullable=False, server_default="{}"),
    Column("posted_date", DateTime(timezone=True)),
    Column("bill_run_id", String(32)),
    Column("target_date", Date),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    tenant_primary_key("id"),
    tenant_unique("invoice_number"),
    Index("ix_invoices_bill_run", "tenant_id", "bill_run_id"),
    # The account page's invoices tab: a keyset page in id order.
    Index("ix_invoices_account_id_order", "tenant_id", "account_id", "id"),
    tenant_foreign_key("account_id", "accounts"),
    # Covers the metrics recompute (sum of balances, max date of posted invoices) and the
    # summary's recent invoices without touching the heap.
    Index(
        "ix_invoices_account_status",
        "tenant_id",
        "account_id",
        "status",
        "invoice_date",
        postgresql_include=["balance"],
    ),
)


class InvoiceRow(TypedDict):
    """An invoice's columns, as a new invoice is written and as a read gives them back."""

    tenant_id: str
    id: str
    invoice_number: str | None  # None until the insert numbers the invoice
    account_id: str
    status: str  # a DocumentStatus
    source_type: str
    currency: str
    invoice_date: date
    due_date: date
    payment_term: str
    amount: Decimal
    balance: Decimal
    auto_pay: bool
    comments: str | None
    custom_fields: dict[str, object]
    posted_date: datetime | None
    created_at: datetime
    updated_at: datetime
    # A subscription invoice's; a standalone invoice is written without them.
    bill_run_id: NotRequired[str | None]
    target_date: NotRequired[date | None]
    # What payments and credit memos have applied to it, where a read sums them.
    payment_amount: NotRequired[Decimal]
    credit_memo_amount: NotRequired[Decimal]


invoice_items = Table(
    "invoice_items",
    metadata,
    tenant_column(),
    Column("id", String(32), nullable=False),
    Column("invoice_id", String(32), nullable=False),
    Column("line_number", Integer, nullable=False),
    Column("charge_name", String(255)),
    Column("description", Text),
    Column("sku", String(100)),
    Column("uom", String(25)),
    Column("product_rate_plan_charge_id", String(32)),
    Column("quantity", Numeric, nullable=False),
    Column("unit_price", Numeric, nullable=False),
    Column("amount", Numeric, nullable=False),
    Column("balance", Numeric, nullable=False),
    Column("service_start_date", Date, nullable=False),
    Column("service_end_date", Date, nullable=False),
    Column("charge_date", DateTime(timezone=False)),
    Column("tax_code", String(64)),
    Column("tax_mode", String(16)),
    Column("custom_fields", JSONB, nullable=False, server_default="{}"),
    # Subscription items: which charge segment and subscription the item bills.
    Column("subscription_id", String(32)),
    Column("rate_plan_charge_id", String(32)),
    Column("charge_number", String(64)),
    Column("charge_type", String(16), nullable=False, server_default="OneTime"),
    tenant_primary_key("id"),
    tenant_unique("invoice_id", "line_number"),
    tenant_foreign_key("invoice_id", "invoices", ondelete="CASCADE"),
    Index("ix_invoice_items_charge", "tenant_id", "rate_plan_charge_id"),
)


class InvoiceItemValues(TypedDict):
    """An invoice item as a standalone invoice writes it."""

    tenant_id: str
    id: str
    invoice_id: str
    line_number: int
    charge_name: str | None
    description: str | None
    sku: str | None
    uom: str | None
    product_rate_plan_charge_id: str | None
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    balance: Decimal
    service_start_date: date
    service_end_date: date
    charge_date: datetime | None
    tax_code: str | None
    tax_mode: str | None
    custom_fields: dict[str, object]


class InvoiceItemRow(InvoiceItemValues):
    """An invoice item's columns, as a read gives them back (a bill run's items name their
    subscription charge)."""

    subscription_id: str | None
    rate_plan_charge_id: str | None
    charge_number: str | None
    charge_type: str


class BillRunStatus(StrEnum):
    """A bill run's status: Pending → Processing → Completed (or Error); then Posted or
    Canceled."""

    PENDING = "Pending"
    PROCESSING = "Processing"
    COMPLETED = "Completed"
    ERROR = "Error"
    POSTED = "Posted"
    CANCELED = "Canceled"


bill_runs = Table(
    "bill_runs",
    metadata,
    tenant_column(),
    Column("id", String(32), nullable=False),
    Column("bill_run_number", String(32), nullable=False),
    Column("name", String(255)),
    Column("status", String(24), nullable=False),  # BillRunStatus
    Column("target_date", Date, nullable=False),
    Column("invoice_date", Date, nullable=False),
    Column("auto_post", Boolean, nullable=False),
    Column("charge_type_to_exclude", JSONB, nullable=False, server_default="[]"),
    Column("account_id", String(32)),  # an account-level run; null: by bill cycle day
    Column("bill_cycle_day", String(20)),  # "AllBillCycleDays" or "1".."31"
    Column("batches", JSONB, nullable=False, server_default="[]"),
    Column("invoice_count", Integer, nullable=False, server_default="0"),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    tenant_primary_key("id"),
    tenant_unique("bill_run_number"),
)


class BillRunRow(TypedDict):
    """A bill run's columns, as a read gives them back."""

    tenant_id: str
    id: str
    bill_run_number: str
    name: str | None
    status: str  # a BillRunStatus
    target_date: date
    invoice_date: date
    auto_post: bool
    charge_type_to_exclude: list[str]
    account_id: str | None
    bill_cycle_day: str | None
    batches: list[str]
    invoice_count: int
    error: str | None
    created_at: datetime
    updated_at: datetime


# The subscriptions a bill run could not bill, one row each: the run billed the rest. Written in
# the run's own transaction, so a run that is rolled back (and run again) leaves none behind.
bill_run_errors = Table(
    "bill_run_errors",
    metadata,
    tenant_column(),
    Column("bill_run_id", String(32), nullable=False),
    Column("subscription_id", String(32), nullable=False),
    Column("subscription_number", String(100), nullable=False),
    Column("account_id", String(32), nullable=False),
    Column("account_number", String(70), nullable=False),
    Column("code", Integer, nullable=False),
    Column("message", Text, nullable=False),
    tenant_primary_key("bill_run_id", "subscription_id"),
    tenant_foreign_key("bill_run_id", "bill_runs", ondelete="CASCADE"),
)


class BillRunErrorRow(TypedDict):
    """A subscription a bill run could not bill, with its invoice owner."""

    tenant_id: str
    bill_run_id: str
    subscription_id: str
    subscription_number: str
    account_id: str
    account_number: str
    code: int
    message: str
