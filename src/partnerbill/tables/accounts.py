"""The customer account. Its metrics live in `account_metrics` (metrics feature), never here, so
profile edits and metric writes never contend for the same row.

Its bill-to and sold-to contacts are JSON on its row (one shared object when it has no separate
sold-to); its other contacts are rows of `account_contacts`. A contact id lives in exactly one
of the two places: switching a role moves the contact's JSON between them (`accounts.contacts`).
"""

from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, TypeAlias

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    SmallInteger,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from partnerbill.core.db import metadata
from partnerbill.core.tenant_tables import (
    tenant_column,
    tenant_foreign_key,
    tenant_primary_key,
    tenant_unique,
)


class AccountStatus(StrEnum):
    """An account's status (Zuora's values, stored as they are). The API creates accounts
    Active and sets no other status; a Canceled one (from a migration) takes no new document."""

    ACTIVE = "Active"
    CANCELED = "Canceled"


accounts = Table(
    "accounts",
    metadata,
    tenant_column(),
    Column("id", String(32), nullable=False),
    Column("account_number", String(70), nullable=False),
    Column("name", String(255), nullable=False),
    Column("status", String(16), nullable=False, server_default=AccountStatus.ACTIVE),
    Column("currency", String(3), nullable=False),
    Column("bill_cycle_day", SmallInteger, nullable=False),
    Column("bcd_setting_option", String(16), nullable=False, server_default="ManualSet"),
    Column("payment_term", String(64), nullable=False, server_default="Due Upon Receipt"),
    Column("auto_pay", Boolean, nullable=False, server_default="false"),
    Column("batch", String(20), nullable=False, server_default="Batch1"),
    Column("notes", Text),
    Column("crm_id", String(100)),
    Column("sales_rep", String(50)),
    Column("purchase_order_number", String(100)),
    Column("customer_service_rep_name", String(50)),
    Column("invoice_delivery_prefs_email", Boolean, nullable=False, server_default="false"),
    Column("invoice_delivery_prefs_print", Boolean, nullable=False, server_default="false"),
    Column("partner_account", Boolean, nullable=False, server_default="false"),
    Column("bill_to_contact", JSONB, nullable=False),
    Column("sold_to_contact", JSONB, nullable=False),
    Column("custom_fields", JSONB, nullable=False, server_default="{}"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    tenant_primary_key("id"),
    tenant_unique("account_number"),
    Index("ix_accounts_bill_to_contact_id", "tenant_id", text("(bill_to_contact ->> 'id')")),
    Index("ix_accounts_sold_to_contact_id", "tenant_id", text("(sold_to_contact ->> 'id')")),
)

# A contact as it is kept (on the account row or in `account_contacts`): its `id`, the fields its
# request gave (`description` for Zuora's `contactDescription`) and its custom fields.
ContactJson: TypeAlias = dict[str, Any]


class AccountRow(Protocol):
    """An `accounts` row as read (every column), by attribute: a SQLAlchemy row of them is one
    as it is, nothing is copied."""

    tenant_id: str
    id: str
    account_number: str
    name: str
    status: str  # an AccountStatus
    currency: str
    bill_cycle_day: int
    bcd_setting_option: str
    payment_term: str
    auto_pay: bool
    batch: str
    notes: str | None
    crm_id: str | None
    sales_rep: str | None
    purchase_order_number: str | None
    customer_service_rep_name: str | None
    invoice_delivery_prefs_email: bool
    invoice_delivery_prefs_print: bool
    partner_account: bool
    bill_to_contact: ContactJson
    sold_to_contact: ContactJson
    custom_fields: dict[str, Any]
    created_at: datetime
    updated_at: datetime


account_contacts = Table(
    "account_contacts",
    metadata,
    tenant_column(),
    Column("id", String(32), nullable=False),
    Column("account_id", String(32), nullable=False),
    Column("contact", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    tenant_primary_key("id"),
    tenant_foreign_key("account_id", "accounts"),
    Index("ix_account_contacts_account", "tenant_id", "account_id", "id"),
)
