"""Orders and asynchronous order jobs."""

from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from partnerbill.core.db import metadata
from partnerbill.core.tenant_tables import tenant_column, tenant_primary_key, tenant_unique


class OrderStatus(StrEnum):
    """An order's status (Zuora's values, stored as they are). A placed order is Completed at
    once; a draft is Draft until activated (Completed) or cancelled. Pending and Scheduled
    orders are never made here, but Zuora's rules for them are kept (`lookup.check_change`)."""

    DRAFT = "Draft"
    PENDING = "Pending"
    SCHEDULED = "Scheduled"
    COMPLETED = "Completed"
    CANCELLED = "Cancelled"


class JobStatus(StrEnum):
    """An asynchronous order job's status."""

    PROCESSING = "Processing"
    FAILED = "Failed"
    COMPLETED = "Completed"


orders = Table(
    "orders",
    metadata,
    tenant_column(),
    Column("id", String(32), nullable=False),
    Column("order_number", String(100), nullable=False),
    Column("account_id", String(32), nullable=False),
    Column("order_date", Date, nullable=False),
    Column("status", String(16), nullable=False),  # OrderStatus
    Column("category", String(16), nullable=False),
    Column("description", Text),
    Column("response", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    tenant_primary_key("id"),
    tenant_unique("order_number"),
    Index("ix_orders_account", "tenant_id", "account_id"),
)


class OrderRow(Protocol):
    """An `orders` row as read (every column), by attribute: a SQLAlchemy row of them is one as
    it is."""

    tenant_id: str
    id: str
    order_number: str
    account_id: str
    order_date: date
    status: str  # an OrderStatus
    category: str
    description: str | None
    response: dict[str, Any]  # the CreateOrderResponse, or a draft's answer and request
    created_at: datetime


# One row per order action, in the order's sequence (read by the query surfaces).
order_actions = Table(
    "order_actions",
    metadata,
    tenant_column(),
    Column("id", String(32), nullable=False),
    Column("order_id", String(32), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("type", String(32), nullable=False),
    Column("subscription_id", String(32), nullable=False),
    Column("subscription_number", String(100), nullable=False),
    # The action as the request gave it (camelCase); null for orders placed before it was kept.
    Column("detail", JSONB),
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
    tenant_primary_key("id"),
    Index("ix_order_actions_order", "tenant_id", "order_id"),
)

# An async order: recorded, and its job deferred, in the request's transaction.
async_jobs = Table(
    "async_jobs",
    metadata,
    tenant_column(),
    Column("id", String(36), nullable=False),
    Column("job_type", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # JobStatus
    Column("request", JSONB, nullable=False),
    Column("result", JSONB),
    Column("errors", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    tenant_primary_key("id"),
)
