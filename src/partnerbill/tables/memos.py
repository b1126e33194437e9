"""Credit memos and debit memos with their items."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any, NotRequired, TypedDict

from sqlalchemy import (
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

from partnerbill.core.db import metadata
from partnerbill.core.tenant_tables import (
    tenant_column,
    tenant_foreign_key,
    tenant_primary_key,
    tenant_unique,
)


def _memo_table(name: str, extra: list[Column[Any]]) -> Table:
    return Table(
        name,
        metadata,
        tenant_column(),
        Column("id", String(32), nullable=False),
        Column("memo_number", String(64), nullable=False),
        Column("account_id", String(32), nullable=False),
        Column("currency", String(3), nullable=False),
        Column("amount", Numeric, nullable=False),
        Column("status", String(16), nullable=False),  # DocumentStatus
        Column("memo_date", Date, nullable=False),
        Column("referred_invoice_id", String(32)),
        Column("reason_code", String(100)),
        Column("comment", Text),
        Column("posted_date", DateTime(timezone=True)),
        *extra,
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        tenant_primary_key("id"),
        tenant_unique("memo_number"),
        tenant_foreign_key("account_id", "accounts"),
        Index(f"ix_{name}_account", "tenant_id", "account_id", "status"),
        Index(f"ix_{name}_account_id_order", "tenant_id", "account_id", "id"),
        Index(f"ix_{name}_invoice", "tenant_id", "referred_invoice_id"),
    )


def _item_table(name: str, memo_table: str) -> Table:
    return Table(
        name,
        metadata,
        tenant_column(),
        Column("id", String(32), nullable=False),
        Column("memo_id", String(32), nullable=False),
        Column("line_number", Integer, nullable=False),
        Column("invoice_item_id", String(32)),
        Column("product_rate_plan_charge_id", String(32)),
        Column("sku_name", String(255)),
        Column("description", Text),
        Column("comment", Text),
        Column("amount", Numeric, nullable=False),
        Column("quantity", Numeric),
        Column("service_start_date", Date),
        Column("service_end_date", Date),
        tenant_primary_key("id"),
        tenant_foreign_key("memo_id", memo_table, ondelete="CASCADE"),
        Index(f"ix_{name}_memo", "tenant_id", "memo_id"),
        Index(f"ix_{name}_invoice_item", "tenant_id", "invoice_item_id"),
    )


credit_memos = _memo_table(
    "credit_memos",
    [
        Column("applied_amount", Numeric, nullable=False, server_default="0"),
        Column("refund_amount", Numeric, nullable=False, server_default="0"),
    ],
)
credit_memo_items = _item_table("credit_memo_items", "credit_memos")
debit_memos = _memo_table(
    "debit_memos",
    [
        Column("balance", Numeric, nullable=False),
        Column("due_date", Date, nullable=False),
    ],
)
debit_memo_items = _item_table("debit_memo_items", "debit_memos")


class MemoRow(TypedDict):
    """A credit or debit memo's columns, as a new memo is written and as a read gives them back."""

    tenant_id: str
    id: str
    memo_number: str | None  # None until the memo is numbered
    account_id: str
    currency: str
    amount: Decimal
    status: str  # a DocumentStatus
    memo_date: date
    referred_invoice_id: str | None
    reason_code: str | None
    comment: str | None
    posted_date: datetime | None
    created_at: datetime
    updated_at: datetime
    # A credit memo's.
    applied_amount: NotRequired[Decimal]
    refund_amount: NotRequired[Decimal]
    # A debit memo's.
    balance: NotRequired[Decimal]
    due_date: NotRequired[date]


class LockedMemo(MemoRow):
    """A memo held `FOR UPDATE`, with what a change of it needs of its account."""

    account_number: str
    partner_account: bool


class MemoItemRow(TypedDict):
    """A memo item's columns."""

    tenant_id: str
    id: str
    memo_id: str
    line_number: int
    invoice_item_id: str | None
    product_rate_plan_charge_id: str | None
    sku_name: str | None
    description: str | None
    comment: str | None
    amount: Decimal
    quantity: Decimal | None
    service_start_date: date | None
    service_end_date: date | None
