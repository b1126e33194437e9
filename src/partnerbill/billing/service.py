"""Standalone invoices' lifecycle: post, unpost, cancel (creating them is `billing/creation.py`,
reading them `billing/views.py`).

Status rules (Zuora §3.8): an invoice is created Draft or Posted; Draft → Posted by post;
Posted → Draft by unpost, only while nothing has been applied to it; Draft → Canceled by cancel.
Only Posted invoices count in the account metrics.

Locks (in the order of `core/locking.py`): the account `FOR KEY SHARE`, and the invoice row
`FOR UPDATE` with it, in one statement (`lock_invoice`), when its status changes; never a row
all writers of a partner account share.
"""

from datetime import date
from decimal import Decimal
from typing import TypedDict, cast

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.billing.views import InvoiceJson, invoice_json, invoice_row
from partnerbill.core.errors import (
    Resource,
    business_rule,
    not_found,
)
from partnerbill.core.input_policy import derived_date
from partnerbill.core.locking import FOR_UPDATE_WITH_ACCOUNT
from partnerbill.core.locks import execute_locking
from partnerbill.core.tenants import Tenant
from partnerbill.metrics.service import (
    MetricsDelta,
    touch,
)
from partnerbill.tables.billing import DocumentStatus, InvoiceRow, invoices
from partnerbill.tables.memos import credit_memos, debit_memos


class LockedInvoice(InvoiceRow):
    """An invoice held `FOR UPDATE`, with what its status change needs of its account."""

    account_number: str
    partner_account: bool


class InvoiceJob(TypedDict):
    """The answer of a post or cancel: Zuora's job fields, the job done at once."""

    success: bool
    id: str
    jobId: None
    jobStatus: str


class UnpostedInvoice(TypedDict):
    success: bool
    jobId: None
    jobStatus: str
    invoice: InvoiceJson


_INVOICE_FOR_UPDATE = text(
    "SELECT i.*, a.account_number, a.partner_account FROM invoices i "
    "JOIN accounts a ON a.tenant_id = i.tenant_id AND a.id = i.account_id "
    "WHERE i.tenant_id = :tenant_id AND (i.id = :key OR i.invoice_number = :key) "
    + FOR_UPDATE_WITH_ACCOUNT.format(document="i", account="a")
)


async def lock_invoice(conn: AsyncConnection, tenant: Tenant, key: str) -> LockedInvoice:
    """The invoice `FOR UPDATE` (its status is about to change), its account `FOR KEY SHARE`."""
    row = (
        await execute_locking(
            conn,
            tenant,
            _INVOICE_FOR_UPDATE,
            {"tenant_id": tenant.id, "key": key},
            Resource.INVOICE,
        )
    ).one_or_none()
    if row is None:
        raise not_found(Resource.INVOICE, "invoice", key)
    # `_INVOICE_FOR_UPDATE` adds the account's number and partner flag to the invoice's columns.
    return cast(LockedInvoice, dict(row._mapping))


async def _set_status(
    conn: AsyncConnection, tenant: Tenant, invoice: InvoiceRow, **values: object
) -> InvoiceRow:
    changed = (
        await conn.execute(
            update(invoices)
            .where(invoices.c.tenant_id == tenant.id, invoices.c.id == invoice["id"])
            .values(**values, updated_at=func.now())
            .returning(*invoices.c)
        )
    ).one()
    return invoice_row(changed)


async def _touch_owner(
    conn: AsyncConnection,
    tenant: Tenant,
    invoice: LockedInvoice,
    total_invoice_balance: Decimal,
    *,
    posted_invoice_date: date | None = None,
    posted_invoice_removed: bool = False,
) -> None:
    """Report a change of one invoice to its owner's metrics."""
    delta = MetricsDelta(
        account_id=invoice["account_id"],
        partner_account=invoice["partner_account"],
        total_invoice_balance=total_invoice_balance,
        posted_invoice_date=posted_invoice_date,
        posted_invoice_removed=posted_invoice_removed,
    )
    await touch(conn, tenant, [delta])


async def _reject_if_memos(
    conn: AsyncConnection, tenant: Tenant, invoice: InvoiceRow, action: str
) -> None:
    """An invoice with (non-canceled) credit or debit memos from it stays as it is: those memos
    were created against its posted items. The caller holds the invoice `FOR UPDATE`, which a
    memo created from the invoice also takes, so none can appear meanwhile."""
    for table, name in ((credit_memos, "credit"), (debit_memos, "debit")):
        memo_number = await conn.scalar(
            select(table.c.memo_number)
            .where(
                table.c.tenant_id == tenant.id,
                table.c.referred_invoice_id == invoice["id"],
                table.c.status != DocumentStatus.CANCELED,
            )
            .limit(1)
        )
        if memo_number is not None:
            raise business_rule(
                Resource.INVOICE,
                f"Invoice {invoice['invoice_number']} has {name} memo {memo_number} created from "
                f"it; cancel or unpost and cancel its memos before it can be {action}.",
            )


async def post_invoice(
    conn: AsyncConnection, tenant: Tenant, key: str, invoice_date: date | None
) -> InvoiceJob:
    invoice = await lock_invoice(conn, tenant, key)
    if invoice["status"] != DocumentStatus.DRAFT:
        raise business_rule(
            Resource.INVOICE,
            f"Only a Draft invoice can be posted; invoice {invoice['invoice_number']} is "
            f"{invoice['status']}.",
        )
    values: dict[str, object] = {"status": DocumentStatus.POSTED, "posted_date": func.now()}
    if invoice_date is not None:
        # The due date moves with the invoice date, keeping the payment term's distance.
        values["invoice_date"] = invoice_date
        values["due_date"] = derived_date(
            invoice["due_date"] + (invoice_date - invoice["invoice_date"]),
            Resource.INVOICE,
            "invoiceDate",
            "the due date",
        )
    posted = await _set_status(conn, tenant, invoice, **values)
    await _touch_owner(
        conn, tenant, invoice, posted["balance"], posted_invoice_date=posted["invoice_date"]
    )
    return {"success": True, "id": posted["id"], "jobId": None, "jobStatus": "Completed"}


async def unpost_invoice(conn: AsyncConnection, tenant: Tenant, key: str) -> UnpostedInvoice:
    invoice = await lock_invoice(conn, tenant, key)
    if invoice["status"] != DocumentStatus.POSTED:
        raise business_rule(
            Resource.INVOICE,
            f"Only a Posted invoice can be unposted; invoice {invoice['invoice_number']} is "
            f"{invoice['status']}.",
        )
    if invoice["balance"] != invoice["amount"]:
        raise business_rule(
            Resource.INVOICE,
            f"Invoice {invoice['invoice_number']} has payments or credits applied; "
            "unapply them before unposting.",
        )
    await _reject_if_memos(conn, tenant, invoice, "unposted")
    unposted = await _set_status(
        conn, tenant, invoice, status=DocumentStatus.DRAFT, posted_date=None
    )
    await _touch_owner(conn, tenant, invoice, -invoice["balance"], posted_invoice_removed=True)
    return {
        "success": True,
        "jobId": None,
        "jobStatus": "Completed",
        "invoice": invoice_json(unposted, invoice["account_number"]),
    }


async def cancel_invoice(conn: AsyncConnection, tenant: Tenant, key: str) -> InvoiceJob:
    invoice = await lock_invoice(conn, tenant, key)
    if invoice["status"] != DocumentStatus.DRAFT:
        hint = " Unpost it first." if invoice["status"] == DocumentStatus.POSTED else ""
        raise business_rule(
            Resource.INVOICE,
            f"Only a Draft invoice can be canceled; invoice {invoice['invoice_number']} is "
            f"{invoice['status']}.{hint}",
        )
    await _reject_if_memos(conn, tenant, invoice, "canceled")
    canceled = await _set_status(conn, tenant, invoice, status=DocumentStatus.CANCELED)
    # A Draft invoice never counted in the metrics, so canceling it changes none.
    return {"success": True, "id": canceled["id"], "jobId": None, "jobStatus": "Completed"}
