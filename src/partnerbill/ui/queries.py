"""The reads only pages make: the account list and the account page's document tabs.

Every page is a keyset page (`WHERE key > :after ORDER BY key LIMIT n+1`), never OFFSET and
never a count over all rows, each walking an index in its order: accounts by
`(tenant_id, account_number)` (the unique key), an account's documents by
`(tenant_id, account_id, id)` (ids are time-ordered UUIDv7: newest first). An account with
200,000 invoices opens as fast as an empty one.

A search by name is a case-insensitive substring match filtered along the number order: it
reads the tenant's accounts until a page is full, which suits tenants of thousands of
accounts; a number search is a prefix range on the unique key.
"""

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Column, Row, Table, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.tenants import Tenant
from partnerbill.metrics.service import MetricsSnapshot, with_metrics
from partnerbill.tables.accounts import accounts
from partnerbill.tables.billing import invoices
from partnerbill.tables.memos import credit_memos, debit_memos
from partnerbill.tables.payments import payments
from partnerbill.tables.subscriptions import subscriptions

T = TypeVar("T")
ACCOUNTS_PER_PAGE = 25
DOCUMENTS_PER_PAGE = 20
MAX_SEARCH_LENGTH = 100


@dataclass(frozen=True, slots=True)
class AccountRow:
    id: str
    account_number: str
    name: str
    status: str
    partner_account: bool
    currency: str
    snapshot: MetricsSnapshot


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    rows: list[T]
    next_after: str | None  # the key the next page starts after; None on the last page


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def account_page(
    conn: AsyncConnection,
    tenant: Tenant,
    *,
    search: str = "",
    partner: bool | None = None,
    after: str | None = None,
) -> Page[AccountRow]:
    where = [accounts.c.tenant_id == tenant.id]
    search = search.strip()[:MAX_SEARCH_LENGTH]
    if search:
        pattern = _like_escaped(search)
        where.append(
            or_(
                accounts.c.account_number.startswith(search, autoescape=True),
                accounts.c.name.ilike(f"%{pattern}%", escape="\\"),
            )
        )
    if partner is not None:
        where.append(accounts.c.partner_account.is_(partner))
    if after:
        where.append(accounts.c.account_number > after)
    statement = (
        with_metrics(
            select(
                accounts.c.id,
                accounts.c.account_number,
                accounts.c.name,
                accounts.c.status,
                accounts.c.partner_account,
                accounts.c.currency,
            ).where(and_(*where)),
            tenant.id,
        )
        .order_by(accounts.c.account_number)
        .limit(ACCOUNTS_PER_PAGE + 1)
    )
    rows = (await conn.execute(statement)).all()
    found = [
        AccountRow(
            row.id,
            row.account_number,
            row.name,
            row.status,
            row.partner_account,
            row.currency,
            MetricsSnapshot.of(row),
        )
        for row in rows[:ACCOUNTS_PER_PAGE]
    ]
    more = len(rows) > ACCOUNTS_PER_PAGE
    return Page(found, found[-1].account_number if more else None)


@dataclass(frozen=True, slots=True)
class DocumentTab:
    title: str
    table: Table
    columns: tuple[tuple[str, Column[Any]], ...]  # heading, column


_DOCUMENT_TABS = {
    "subscriptions": DocumentTab(
        "Subscriptions",
        subscriptions,
        (
            ("Number", subscriptions.c.subscription_number),
            ("Status", subscriptions.c.status),
            ("Term start", subscriptions.c.term_start_date),
            ("Term end", subscriptions.c.term_end_date),
            ("Auto renew", subscriptions.c.auto_renew),
        ),
    ),
    "invoices": DocumentTab(
        "Invoices",
        invoices,
        (
            ("Number", invoices.c.invoice_number),
            ("Date", invoices.c.invoice_date),
            ("Due", invoices.c.due_date),
            ("Status", invoices.c.status),
            ("Amount", invoices.c.amount),
            ("Balance", invoices.c.balance),
        ),
    ),
    "payments": DocumentTab(
        "Payments",
        payments,
        (
            ("Number", payments.c.payment_number),
            ("Effective", payments.c.effective_date),
            ("Status", payments.c.status),
            ("Type", payments.c.type),
            ("Amount", payments.c.amount),
            ("Applied", payments.c.applied_amount),
            ("Refunded", payments.c.refund_amount),
        ),
    ),
    "credit-memos": DocumentTab(
        "Credit memos",
        credit_memos,
        (
            ("Number", credit_memos.c.memo_number),
            ("Date", credit_memos.c.memo_date),
            ("Status", credit_memos.c.status),
            ("Amount", credit_memos.c.amount),
            ("Applied", credit_memos.c.applied_amount),
        ),
    ),
    "debit-memos": DocumentTab(
        "Debit memos",
        debit_memos,
        (
            ("Number", debit_memos.c.memo_number),
            ("Date", debit_memos.c.memo_date),
            ("Status", debit_memos.c.status),
            ("Amount", debit_memos.c.amount),
            ("Balance", debit_memos.c.balance),
        ),
    ),
}
TAB_NAMES = tuple(_DOCUMENT_TABS)


def document_tab(name: str) -> DocumentTab:
    return _DOCUMENT_TABS.get(name, _DOCUMENT_TABS["invoices"])


async def document_page(
    conn: AsyncConnection, tenant: Tenant, account_id: str, tab: DocumentTab, after: str | None
) -> Page[Row[Any]]:
    table = tab.table
    where = [table.c.tenant_id == tenant.id, table.c.account_id == account_id]
    if after:
        where.append(table.c.id < after)
    rows = (
        await conn.execute(
            select(table.c.id, *(column for _, column in tab.columns))
            .where(*where)
            .order_by(table.c.id.desc())
            .limit(DOCUMENTS_PER_PAGE + 1)
        )
    ).all()
    more = len(rows) > DOCUMENTS_PER_PAGE
    shown = list(rows[:DOCUMENTS_PER_PAGE])
    return Page(shown, shown[-1].id if more else None)
