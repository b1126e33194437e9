"""Reads of credit and debit memos: one by id or number, pages of the tenant's, their items;
and a memo's answer (`memo_json`) every memo operation gives. Read-only: no locks."""

from datetime import date
from decimal import Decimal
from typing import Any, TypedDict, cast

from sqlalchemy import Row, TextClause, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.errors import (
    invalid_value,
    not_found,
)
from partnerbill.core.json import v1_datetime
from partnerbill.core.money import ZERO
from partnerbill.core.pagination import PageRequest
from partnerbill.core.tenants import Tenant
from partnerbill.memos.kinds import MemoKind
from partnerbill.payments.settlement import unapplied
from partnerbill.tables.accounts import accounts
from partnerbill.tables.billing import (
    DOCUMENT_STATUSES,
)
from partnerbill.tables.memos import (
    MemoItemRow,
    MemoRow,
)

DEFAULT_PAGE_SIZE = 20


class MemoJsonFields(TypedDict):
    """What CreditMemoResponse and DebitMemoResponse share."""

    success: bool
    id: str
    number: str | None
    accountId: str
    accountNumber: str
    amount: Decimal
    taxAmount: Decimal
    totalTaxExemptAmount: Decimal
    status: str
    referredInvoiceId: str | None
    sourceType: str
    reasonCode: str | None
    comment: str | None
    currency: str
    postedOn: str | None
    createdDate: str | None
    updatedDate: str | None


class CreditMemoJson(MemoJsonFields):
    creditMemoDate: date
    appliedAmount: Decimal
    refundAmount: Decimal
    unappliedAmount: Decimal
    autoApplyUponPosting: bool
    reversed: bool


class DebitMemoJson(MemoJsonFields):
    debitMemoDate: date
    dueDate: date
    balance: Decimal
    beAppliedAmount: Decimal


MemoJson = CreditMemoJson | DebitMemoJson


def memo_query(kind: MemoKind, lock: str = "") -> TextClause:
    return text(
        f"SELECT m.*, a.account_number, a.partner_account FROM {kind.table.name} m "
        "JOIN accounts a ON a.tenant_id = m.tenant_id AND a.id = m.account_id "
        "WHERE m.tenant_id = :tenant_id AND (m.id = :key OR m.memo_number = :key) "
        f"ORDER BY m.id = :key DESC LIMIT 1 {lock}"
    )


def memo_of(row: Row[Any]) -> MemoRow:
    """A memo read with all its columns (`SELECT m.*` or `RETURNING`), and perhaps more."""
    return cast(MemoRow, dict(row._mapping))


def memo_json(kind: MemoKind, row: MemoRow, account_number: str) -> MemoJson:
    """CreditMemoResponse / DebitMemoResponse."""
    common: MemoJsonFields = {
        "success": True,
        "id": row["id"],
        "number": row["memo_number"],
        "accountId": row["account_id"],
        "accountNumber": account_number,
        "amount": row["amount"],
        "taxAmount": ZERO,
        "totalTaxExemptAmount": ZERO,
        "status": row["status"],
        "referredInvoiceId": row["referred_invoice_id"],
        "sourceType": "Invoice" if row["referred_invoice_id"] else "Standalone",
        "reasonCode": row["reason_code"],
        "comment": row["comment"],
        "currency": row["currency"],
        "postedOn": v1_datetime(row["posted_date"]),
        "createdDate": v1_datetime(row["created_at"]),
        "updatedDate": v1_datetime(row["updated_at"]),
    }
    if kind.is_credit:
        return {
            **common,
            "creditMemoDate": row["memo_date"],
            "appliedAmount": row["applied_amount"],
            "refundAmount": row["refund_amount"],
            "unappliedAmount": unapplied(row),
            "autoApplyUponPosting": False,
            "reversed": False,
        }
    return {
        **common,
        "debitMemoDate": row["memo_date"],
        "dueDate": row["due_date"],
        "balance": row["balance"],
        "beAppliedAmount": row["amount"] - row["balance"],
    }


async def get_memo(conn: AsyncConnection, tenant: Tenant, kind: MemoKind, key: str) -> MemoJson:
    row = (await conn.execute(memo_query(kind), {"tenant_id": tenant.id, "key": key})).one_or_none()
    if row is None:
        raise not_found(kind.resource, kind.name, key)
    return memo_json(kind, memo_of(row), row.account_number)


async def list_memos(
    conn: AsyncConnection,
    tenant: Tenant,
    kind: MemoKind,
    *,
    account_key: str | None,
    status: str | None,
    window: PageRequest,
) -> tuple[list[MemoJson], bool]:
    """One page of the tenant's memos (oldest first), and whether another page follows."""
    offset, limit = window.offset, window.limit
    if status is not None and status not in DOCUMENT_STATUSES:
        raise invalid_value(
            kind.resource, "status", f"must be one of {', '.join(DOCUMENT_STATUSES)}."
        )
    table = kind.table
    query = (
        select(table, accounts.c.account_number)
        .join(
            accounts,
            (accounts.c.tenant_id == table.c.tenant_id) & (accounts.c.id == table.c.account_id),
        )
        .where(table.c.tenant_id == tenant.id)
    )
    if account_key is not None:
        query = query.where(
            (accounts.c.id == account_key) | (accounts.c.account_number == account_key)
        )
    if status is not None:
        query = query.where(table.c.status == status)
    rows = (
        await conn.execute(
            query.order_by(table.c.created_at, table.c.id).offset(offset).limit(limit + 1)
        )
    ).all()
    memos = [memo_json(kind, memo_of(row), row.account_number) for row in rows[:limit]]
    return memos, len(rows) > limit


async def get_memo_items(
    conn: AsyncConnection, tenant: Tenant, kind: MemoKind, key: str, window: PageRequest
) -> tuple[list[dict[str, object]], bool]:
    """One page of the memo's items, and whether another page follows."""
    offset, limit = window.offset, window.limit
    memo = await get_memo(conn, tenant, kind, key)
    items = kind.items
    rows = (
        await conn.execute(
            select(items)
            .where(items.c.tenant_id == tenant.id, items.c.memo_id == memo["id"])
            .order_by(items.c.line_number)
            .offset(offset)
            .limit(limit + 1)
        )
    ).all()
    found = [item_json(_memo_item(row)) for row in rows[:limit]]
    return found, len(rows) > limit


async def get_memo_item(
    conn: AsyncConnection, tenant: Tenant, kind: MemoKind, key: str, item_id: str
) -> dict[str, object]:
    """One item of the memo `key`; not found when the item belongs to another memo."""
    memo = await get_memo(conn, tenant, kind, key)
    items = kind.items
    row = (
        await conn.execute(
            select(items).where(
                items.c.tenant_id == tenant.id,
                items.c.memo_id == memo["id"],
                items.c.id == item_id,
            )
        )
    ).one_or_none()
    if row is None:
        raise not_found(kind.resource, f"{kind.name} item", item_id)
    return {"success": True, **item_json(_memo_item(row))}


def _memo_item(row: Row[Any]) -> MemoItemRow:
    """A memo item read with all its columns."""
    return cast(MemoItemRow, dict(row._mapping))


def item_json(row: MemoItemRow) -> dict[str, object]:
    """A memo item as Zuora shows it: no tax is computed, so the amount is without tax."""
    return {
        "id": row["id"],
        "amount": row["amount"],
        "amountWithoutTax": row["amount"],
        "taxAmount": ZERO,
        "skuName": row["sku_name"],
        "description": row["description"],
        "comment": row["comment"],
        "quantity": row["quantity"],
        "serviceStartDate": row["service_start_date"],
        "serviceEndDate": row["service_end_date"],
        "sourceItemId": row["invoice_item_id"] or row["product_rate_plan_charge_id"],
        "sourceItemType": "InvoiceDetail" if row["invoice_item_id"] else "ProductRatePlanCharge",
        "productRatePlanChargeId": row["product_rate_plan_charge_id"],
    }
