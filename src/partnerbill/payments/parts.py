"""Application parts: what one payment or credit memo has on one invoice or debit memo now.

The `applications` ledger is append-only (apply adds a positive row, unapply a negative one),
so a part is the sum of a (source, target) pair's rows. Its id is the smallest id among the
pair's ledger rows, which later applies and unapplies never change; its `createdDate` is the
pair's first row's time and its `updatedDate` its latest row's. A pair whose sum is zero (fully
unapplied) is no part, as Zuora drops a part that is unapplied in full. Parts are listed
oldest first, paged like every v1 list. A refund has one part, the whole refund from its
payment or credit memo, under the refund's id. Read-only: no locks.
"""

from datetime import datetime
from decimal import Decimal
from typing import TypedDict, cast

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.errors import Resource, not_found
from partnerbill.core.pagination import MAX_PAGE_SIZE, PageRequest
from partnerbill.core.tenants import Tenant
from partnerbill.payments.settlement import refund_row
from partnerbill.tables.billing import invoices
from partnerbill.tables.memos import credit_memos, debit_memos
from partnerbill.tables.payments import RefundRow, applications, payments, refunds

# Each document a part can name: its table, its number column, its resource and its name.
_DOCUMENTS: dict[str, tuple[Table, str, Resource, str]] = {
    "Invoice": (invoices, "invoice_number", Resource.INVOICE, "invoice"),
    "DebitMemo": (debit_memos, "memo_number", Resource.DEBIT_MEMO, "debit memo"),
    "CreditMemo": (credit_memos, "memo_number", Resource.CREDIT_MEMO, "credit memo"),
    "Payment": (payments, "payment_number", Resource.PAYMENT, "payment"),
}


async def document_id(conn: AsyncConnection, tenant: Tenant, kind: str, key: str) -> str:
    """The id of the `kind` document whose id or number is `key`; not found otherwise."""
    table, number, resource, name = _DOCUMENTS[kind]
    found = (
        await conn.execute(
            select(table.c.id)
            .where(table.c.tenant_id == tenant.id, (table.c.id == key) | (table.c[number] == key))
            .order_by((table.c.id == key).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if found is None:
        raise not_found(resource, name, key)
    return str(found)


class Part(TypedDict):
    """What one source has on one target now, summed over the pair's ledger rows."""

    source_type: str
    source_id: str
    target_type: str
    target_id: str
    id: str
    amount: Decimal
    created_at: datetime
    updated_at: datetime


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


# Where one part is looked up by id: the whole first page.
FIRST_PAGE = PageRequest(1, MAX_PAGE_SIZE)


async def parts(
    conn: AsyncConnection,
    tenant: Tenant,
    *,
    side: str,
    document: str,
    window: PageRequest = FIRST_PAGE,
    part_id: str | None = None,
) -> tuple[list[Part], bool]:
    """One page of the parts of `document`, which is the ledger's `side` ("source" or
    "target"); only the part `part_id` when it is given. Returns the page and whether another
    page follows."""
    own = applications.c[f"{side}_id"]
    pair = (
        applications.c.source_type,
        applications.c.source_id,
        applications.c.target_type,
        applications.c.target_id,
    )
    query = (
        select(
            *pair,
            func.min(applications.c.id).label("id"),
            func.sum(applications.c.amount).label("amount"),
            func.min(applications.c.created_at).label("created_at"),
            func.max(applications.c.created_at).label("updated_at"),
        )
        .where(applications.c.tenant_id == tenant.id, own == document)
        .group_by(*pair)
        .having(func.sum(applications.c.amount) != 0)
    )
    if part_id is not None:
        query = query.having(func.min(applications.c.id) == part_id)
    rows = (
        await conn.execute(
            query.order_by(func.min(applications.c.created_at), func.min(applications.c.id))
            .offset(window.offset)
            .limit(window.limit + 1)
        )
    ).all()
    # The query's columns are the part's keys.
    found = [cast(Part, dict(row._mapping)) for row in rows[: window.limit]]
    return found, len(rows) > window.limit


def source_part_json(part: Part) -> dict[str, object]:
    """A part as its source (payment or credit memo) shows it: the target it is on."""
    return {
        "id": part["id"],
        "amount": part["amount"],
        "invoiceId": part["target_id"] if part["target_type"] == "Invoice" else None,
        "debitMemoId": part["target_id"] if part["target_type"] == "DebitMemo" else None,
        "createdDate": _timestamp(part["created_at"]),
        "updatedDate": _timestamp(part["updated_at"]),
    }


def target_part_json(part: Part) -> dict[str, object]:
    """A part as its target (invoice or debit memo) shows it: the source applied to it."""
    return {
        "appliedAmount": part["amount"],
        "paymentId": part["source_id"] if part["source_type"] == "Payment" else None,
        "creditMemoId": part["source_id"] if part["source_type"] == "CreditMemo" else None,
        "createdDate": _timestamp(part["created_at"]),
        "updatedDate": _timestamp(part["updated_at"]),
    }


async def refund(conn: AsyncConnection, tenant: Tenant, key: str) -> RefundRow:
    """The refund whose id or number is `key`; not found otherwise."""
    row = (
        await conn.execute(
            select(refunds).where(
                refunds.c.tenant_id == tenant.id,
                (refunds.c.id == key) | (refunds.c.refund_number == key),
            )
        )
    ).one_or_none()
    if row is None:
        raise not_found(Resource.PAYMENT, "refund", key)
    return refund_row(row)


def refund_part_json(refund: RefundRow) -> dict[str, object]:
    """A refund's one part: the whole refund, from its payment or credit memo."""
    return {
        "id": refund["id"],
        "amount": refund["amount"],
        "paymentId": refund["payment_id"],
        "creditMemoId": refund["credit_memo_id"],
        "createdDate": _timestamp(refund["created_at"]),
        "updatedDate": _timestamp(refund["created_at"]),
    }
