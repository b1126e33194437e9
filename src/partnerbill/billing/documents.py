"""`GET /v1/billing-documents`: an account's invoices, credit memos and debit memos in one list.

Rules:
- The account is required (`accountId` or `accountNumber`), as Zuora requires it; a key that
  names no account of the tenant lists nothing, as every list filtered by an account does.
- `sort` takes at most two of `documentDate` and `documentType`, each optionally prefixed:
  `-` ascending, `+` (or none) descending, as Zuora reads them; a `+` sent unencoded in a query
  string arrives as a space and means the same. Without `sort`: `documentDate` descending. Rows
  that tie are ordered by id, so pages never overlap.
- A credit memo's balance is what is left to apply or refund (amount - applied - refunded).
- Each document table is read through its own top-N (`ORDER BY … LIMIT offset + size + 1`)
  before the union is sorted, so a page costs the same however the three kinds mix.
"""

from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.errors import Resource, invalid_value
from partnerbill.core.pagination import PageRequest
from partnerbill.core.tenants import Tenant
from partnerbill.tables.accounts import accounts
from partnerbill.tables.billing import DOCUMENT_STATUSES, invoices
from partnerbill.tables.memos import credit_memos, debit_memos

SORTABLE = {"documentDate": "document_date", "documentType": "document_type"}
DEFAULT_PAGE_SIZE = 20


def _sort_keys(sort: str | None) -> list[tuple[str, bool]]:
    """(column, descending) pairs for `sort`."""
    if sort is None:
        return [("document_date", True)]
    keys: list[tuple[str, bool]] = []
    for part in sort.split(","):
        term = part.strip()
        descending = not term.startswith("-")
        name = term.removeprefix("-").removeprefix("+")
        if name not in SORTABLE:
            raise invalid_value(
                Resource.INVOICE,
                "sort",
                "sorts on documentDate or documentType, each prefixed by - (ascending) or "
                "+ (descending, the default).",
            )
        keys.append((SORTABLE[name], descending))
    if len(keys) > 2 or len({column for column, _ in keys}) != len(keys):
        raise invalid_value(Resource.INVOICE, "sort", "takes at most two different fields.")
    return keys


# Each kind of billing document as (its columns under the list's names, its table, its date).
_DOCUMENT_KINDS: list[tuple[Select[Any], Table, ColumnElement[date]]] = [
    (
        select(
            invoices.c.id,
            literal("Invoice").label("document_type"),
            invoices.c.invoice_number.label("document_number"),
            invoices.c.invoice_date.label("document_date"),
            invoices.c.amount,
            invoices.c.balance,
            invoices.c.status,
            invoices.c.currency,
        ),
        invoices,
        invoices.c.invoice_date,
    ),
    (
        select(
            credit_memos.c.id,
            literal("CreditMemo").label("document_type"),
            credit_memos.c.memo_number.label("document_number"),
            credit_memos.c.memo_date.label("document_date"),
            credit_memos.c.amount,
            (
                credit_memos.c.amount - credit_memos.c.applied_amount - credit_memos.c.refund_amount
            ).label("balance"),
            credit_memos.c.status,
            credit_memos.c.currency,
        ),
        credit_memos,
        credit_memos.c.memo_date,
    ),
    (
        select(
            debit_memos.c.id,
            literal("DebitMemo").label("document_type"),
            debit_memos.c.memo_number.label("document_number"),
            debit_memos.c.memo_date.label("document_date"),
            debit_memos.c.amount,
            debit_memos.c.balance,
            debit_memos.c.status,
            debit_memos.c.currency,
        ),
        debit_memos,
        debit_memos.c.memo_date,
    ),
]


async def list_billing_documents(
    conn: AsyncConnection,
    tenant: Tenant,
    *,
    account_id: str | None,
    account_number: str | None,
    document_date: date | None,
    status: str | None,
    sort: str | None,
    window: PageRequest,
) -> tuple[list[dict[str, object]], bool]:
    """One page of the account's billing documents, and whether another page follows."""
    if account_id is None and account_number is None:
        raise invalid_value(Resource.INVOICE, "accountId", "or accountNumber is required.")
    if status is not None and status not in DOCUMENT_STATUSES:
        raise invalid_value(
            Resource.INVOICE, "status", f"must be one of {', '.join(DOCUMENT_STATUSES)}."
        )
    keys = _sort_keys(sort)
    offset, size = window.offset, window.limit
    found = select(accounts.c.id).where(accounts.c.tenant_id == tenant.id)
    if account_id is not None:
        found = found.where(accounts.c.id == account_id)
    if account_number is not None:
        found = found.where(accounts.c.account_number == account_number)
    account = await conn.scalar(found)
    if account is None:
        return [], False

    def kind(query: Select[Any], table: Table, date_column: ColumnElement[date]) -> Select[Any]:
        query = query.where(table.c.tenant_id == tenant.id, table.c.account_id == account)
        if status is not None:
            query = query.where(table.c.status == status)
        if document_date is not None:
            query = query.where(date_column == document_date)
        return query

    branches = [kind(query, table, date_column) for query, table, date_column in _DOCUMENT_KINDS]

    def ordered(columns: Any) -> list[Any]:
        order = [columns[name].desc() if desc else columns[name].asc() for name, desc in keys]
        return [*order, columns["id"].asc()]

    reach = offset + size + 1
    tops = [
        branch.order_by(*ordered(branch.selected_columns)).limit(reach).subquery().select()
        for branch in branches
    ]
    union = union_all(*tops).subquery()
    rows = (
        await conn.execute(select(union).order_by(*ordered(union.c)).offset(offset).limit(size + 1))
    ).all()
    documents: list[dict[str, object]] = [
        {
            "id": row.id,
            "documentType": row.document_type,
            "documentNumber": row.document_number,
            "documentDate": row.document_date,
            "amount": row.amount,
            "balance": row.balance,
            "status": row.status,
            "currency": row.currency,
            "accountId": account,
        }
        for row in rows[:size]
    ]
    return documents, len(rows) > size
