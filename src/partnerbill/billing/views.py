"""Reads of standalone invoices: one by id or number (with what has been applied to it), its
items page by page, and the invoice's answer (`invoice_json`) every invoice operation gives.
Read-only: no locks."""

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any, TypedDict, cast

from sqlalchemy import Row, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.errors import (
    Resource,
    not_found,
)
from partnerbill.core.json import v1_datetime
from partnerbill.core.money import (
    ZERO,
)
from partnerbill.core.pagination import PageRequest
from partnerbill.core.tenants import Tenant
from partnerbill.tables.billing import InvoiceRow, invoice_items, invoices
from partnerbill.tables.subscriptions import subscriptions

DEFAULT_PAGE_SIZE = 20


class InvoiceJson(TypedDict):
    """An invoice as Zuora answers it; its custom fields follow as keys of their own."""

    success: bool
    id: str
    invoiceNumber: str | None
    accountId: str
    accountNumber: str
    invoiceDate: date
    dueDate: date
    status: str
    sourceType: str
    currency: str
    amount: Decimal
    amountWithoutTax: Decimal
    taxAmount: Decimal
    balance: Decimal
    paymentAmount: Decimal
    refundAmount: Decimal
    creditMemoAmount: Decimal
    adjustmentAmount: Decimal
    creditBalanceAdjustmentAmount: Decimal
    discount: Decimal
    paymentTerm: str
    autoPay: bool
    comments: str | None
    postedDate: str | None
    createdDate: str | None
    updatedDate: str | None


def _with_custom_fields(answer: InvoiceJson, custom_fields: Mapping[str, object]) -> InvoiceJson:
    """The answer followed by the custom fields (one overriding a key keeps that key's place)."""
    if not custom_fields:
        return answer
    # The one place the custom fields' keys join the typed answer: a TypedDict may have more.
    return cast(InvoiceJson, {**answer, **custom_fields})


def invoice_json(row: InvoiceRow, account_number: str) -> InvoiceJson:
    answer: InvoiceJson = {
        "success": True,
        "id": row["id"],
        "invoiceNumber": row["invoice_number"],
        "accountId": row["account_id"],
        "accountNumber": account_number,
        "invoiceDate": row["invoice_date"],
        "dueDate": row["due_date"],
        "status": row["status"],
        "sourceType": row["source_type"],
        "currency": row["currency"],
        "amount": row["amount"],
        "amountWithoutTax": row["amount"],
        "taxAmount": ZERO,
        "balance": row["balance"],
        "paymentAmount": row.get("payment_amount", ZERO),
        "refundAmount": ZERO,
        "creditMemoAmount": row.get("credit_memo_amount", ZERO),
        "adjustmentAmount": ZERO,
        "creditBalanceAdjustmentAmount": ZERO,
        "discount": ZERO,
        "paymentTerm": row["payment_term"],
        "autoPay": row["auto_pay"],
        "comments": row["comments"],
        "postedDate": v1_datetime(row["posted_date"]),
        "createdDate": v1_datetime(row["created_at"]),
        "updatedDate": v1_datetime(row["updated_at"]),
    }
    return _with_custom_fields(answer, row["custom_fields"])


def invoice_row(row: Row[Any]) -> InvoiceRow:
    """An invoice read with all its columns (`SELECT i.*` or `RETURNING`), and perhaps more."""
    return cast(InvoiceRow, dict(row._mapping))


# What payments and credit memos have applied to the invoice, net of unapplications (an
# application row is negative when it unapplies); an invoice answered at its creation or posting
# has none, so only this read adds them. The subqueries bind the tenant id themselves: one shard
# on a distributed database.
_INVOICE_BY_KEY = text(
    "SELECT i.*, a.account_number, "
    "(SELECT coalesce(sum(p.amount), 0) FROM applications p WHERE p.tenant_id = :tenant_id "
    "AND p.target_id = i.id AND p.source_type = 'Payment') AS payment_amount, "
    "(SELECT coalesce(sum(c.amount), 0) FROM applications c WHERE c.tenant_id = :tenant_id "
    "AND c.target_id = i.id AND c.source_type = 'CreditMemo') AS credit_memo_amount "
    "FROM invoices i "
    "JOIN accounts a ON a.tenant_id = i.tenant_id AND a.id = i.account_id "
    "WHERE i.tenant_id = :tenant_id AND (i.id = :key OR i.invoice_number = :key)"
)


async def get_invoice(conn: AsyncConnection, tenant: Tenant, key: str) -> InvoiceJson:
    row = (await conn.execute(_INVOICE_BY_KEY, {"tenant_id": tenant.id, "key": key})).one_or_none()
    if row is None:
        raise not_found(Resource.INVOICE, "invoice", key)
    return invoice_json(invoice_row(row), row.account_number)


async def get_invoice_items(
    conn: AsyncConnection, tenant: Tenant, key: str, window: PageRequest
) -> tuple[list[dict[str, object]], bool]:
    """One page of the invoice's items and whether another page follows."""
    invoice_id = await conn.scalar(
        select(invoices.c.id).where(
            invoices.c.tenant_id == tenant.id,
            (invoices.c.id == key) | (invoices.c.invoice_number == key),
        )
    )
    if invoice_id is None:
        raise not_found(Resource.INVOICE, "invoice", key)
    rows = (
        await conn.execute(
            select(invoice_items, subscriptions.c.subscription_number)
            .outerjoin(
                subscriptions,
                (subscriptions.c.tenant_id == invoice_items.c.tenant_id)
                & (subscriptions.c.id == invoice_items.c.subscription_id),
            )
            .where(invoice_items.c.tenant_id == tenant.id, invoice_items.c.invoice_id == invoice_id)
            .order_by(invoice_items.c.line_number)
            .offset(window.offset)
            .limit(window.limit + 1)
        )
    ).all()
    items: list[dict[str, object]] = [
        {
            "id": row.id,
            "chargeName": row.charge_name,
            "chargeType": row.charge_type,
            "description": row.description,
            "chargeAmount": format(row.amount, "f"),
            "taxAmount": "0",
            "balance": format(row.balance, "f"),
            "quantity": row.quantity,
            "unitPrice": row.unit_price,
            "uom": row.uom,
            "sku": row.sku,
            "serviceStartDate": row.service_start_date,
            "serviceEndDate": row.service_end_date,
            "productRatePlanChargeId": row.product_rate_plan_charge_id,
            "subscriptionId": row.subscription_id,
            "subscriptionName": row.subscription_number,
            "processingType": "Charge",
            "taxCode": row.tax_code,
            "taxMode": row.tax_mode,
            **row.custom_fields,
        }
        for row in rows[: window.limit]
    ]
    return items, len(rows) > window.limit
