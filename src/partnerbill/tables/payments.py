"""Payments, refunds, and the application ledger (Invoice Settlement).

`applications` is append-only: applying adds a positive row for a (source, target) pair and
unapplying a negative one, so what a source has on a target is the sum of its rows there, and
the history is never rewritten. The running totals on the documents (`applied_amount`,
`refund_amount`, an invoice's or debit memo's `balance`) are kept in step in the same
transaction, under the documents' row locks.
"""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TypedDict

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Index,
    Numeric,
    String,
    Table,
    Text,
    func,
)

from partnerbill.core.db import metadata
from partnerbill.core.tenant_tables import (
    tenant_column,
    tenant_foreign_key,
    tenant_primary_key,
    tenant_unique,
)


class PaymentStatus(StrEnum):
    """A payment's or refund's status (Zuora's values, stored as they are)."""

    PROCESSED = "Processed"
    CANCELED = "Canceled"


payments = Table(
    "payments",
    metadata,
    tenant_column(),
    Column("id", String(32), nullable=False),
    Column("payment_number", String(64), nullable=False),
    Column("account_id", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", Numeric, nullable=False),
    Column("applied_amount", Numeric, nullable=False, server_default="0"),
    Column("refund_amount", Numeric, nullable=False, server_default="0"),
    Column("status", String(16), nullable=False),  # PaymentStatus
    Column("type", String(16), nullable=False),  # External | Electronic
    Column("effective_date", Date, nullable=False),
    Column("payment_method_type", String(32)),
    Column("payment_method_id", String(32)),  # an account's external payment method, if named
    Column("reference_id", String(100)),
    Column("comment", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    tenant_primary_key("id"),
    tenant_unique("payment_number"),
    tenant_foreign_key("account_id", "accounts"),
    # The account's payments, and its last one (by effective date, then creation).
    Index("ix_payments_account_id_order", "tenant_id", "account_id", "id"),
    Index(
        "ix_payments_account", "tenant_id", "account_id", "status", "effective_date", "created_at"
    ),
)


class PaymentValues(TypedDict):
    """A new payment's columns, as it is written (the database stamps its times)."""

    tenant_id: str
    id: str
    payment_number: str
    account_id: str
    currency: str
    amount: Decimal
    applied_amount: Decimal
    refund_amount: Decimal
    status: str  # a PaymentStatus
    type: str
    effective_date: date
    payment_method_type: str | None
    payment_method_id: str | None
    reference_id: str | None
    comment: str | None


class PaymentRow(PaymentValues):
    """A payment's columns, as a read gives them back."""

    created_at: datetime
    updated_at: datetime


class LockedPayment(PaymentRow):
    """A payment held `FOR UPDATE`, with what a change of it needs of its account."""

    account_number: str
    partner_account: bool


applications = Table(
    "applications",
    metadata,
    tenant_column(),
    Column("id", String(32), nullable=False),
    Column("source_type", String(16), nullable=False),  # Payment | CreditMemo
    Column("source_id", String(32), nullable=False),
    Column("target_type", String(16), nullable=False),  # Invoice | DebitMemo
    Column("target_id", String(32), nullable=False),
    Column("amount", Numeric, nullable=False),  # + applied, - unapplied
    Column("effective_date", Date, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    tenant_primary_key("id"),
    Index("ix_applications_source", "tenant_id", "source_id", "target_id"),
    Index("ix_applications_target", "tenant_id", "target_id"),
)

refunds = Table(
    "refunds",
    metadata,
    tenant_column(),
    Column("id", String(32), nullable=False),
    Column("refund_number", String(64), nullable=False),
    Column("account_id", String(32), nullable=False),
    Column("source_type", String(16), nullable=False),  # Payment | CreditMemo
    Column("payment_id", String(32)),
    Column("credit_memo_id", String(32)),
    Column("amount", Numeric, nullable=False),
    Column("status", String(16), nullable=False),  # PaymentStatus
    Column("type", String(16), nullable=False),  # External | Electronic
    Column("method_type", String(32)),
    Column("refund_date", Date, nullable=False),
    Column("reason_code", String(100)),
    Column("reference_id", String(100)),
    Column("comment", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    tenant_primary_key("id"),
    tenant_unique("refund_number"),
    Index("ix_refunds_account", "tenant_id", "account_id"),
)


class RefundRow(TypedDict):
    """A refund's columns, as a read gives them back."""

    tenant_id: str
    id: str
    refund_number: str
    account_id: str
    source_type: str
    payment_id: str | None
    credit_memo_id: str | None
    amount: Decimal
    status: str  # a PaymentStatus
    type: str
    method_type: str | None
    refund_date: date
    reason_code: str | None
    reference_id: str | None
    comment: str | None
    created_at: datetime
