"""`payment_methods`: one row per external payment method of an account.

The account's default is the row with `is_default`; a partial unique index keeps at most one
per account, and every switch of the default holds the account's advisory lock (see service).
"""

from datetime import datetime
from enum import StrEnum
from typing import Protocol

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    String,
    Table,
    func,
    text,
)

from partnerbill.core.db import metadata
from partnerbill.core.tenant_tables import tenant_column, tenant_primary_key


class PaymentMethodStatus(StrEnum):
    """A payment method's status (Zuora's values, stored as they are): every one here is
    Active."""

    ACTIVE = "Active"


payment_methods = Table(
    "payment_methods",
    metadata,
    tenant_column(),
    Column("id", String(32), nullable=False),
    Column("account_id", String(32), nullable=False),
    Column("type", String(32), nullable=False),
    Column("status", String(16), nullable=False, server_default=PaymentMethodStatus.ACTIVE),
    Column("is_default", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    tenant_primary_key("id"),
    Index("ix_payment_methods_account", "tenant_id", "account_id", "id"),
    Index(
        "uq_payment_methods_default",
        "tenant_id",
        "account_id",
        unique=True,
        postgresql_where=text("is_default"),
    ),
)


class PaymentMethodRow(Protocol):
    """A `payment_methods` row as read (every column), by attribute: a SQLAlchemy row of them is
    one as it is."""

    tenant_id: str
    id: str
    account_id: str
    type: str
    status: str  # a PaymentMethodStatus
    is_default: bool
    created_at: datetime
    updated_at: datetime
