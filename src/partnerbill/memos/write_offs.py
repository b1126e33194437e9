"""Writing off what is left of an invoice or a debit memo.

A write-off is a credit memo, posted at once, for the amount written off (default: the whole
balance), applied to the document in the same transaction — so the document's balance falls and
the account's metrics move exactly as for a credit memo created, posted and applied by hand, and
unapplying the memo brings the balance back.

- An invoice's write-off memo is created from the invoice: its items credit the invoice's items in
  line order, each up to what is left to credit on it (a credit memo never credits an invoice item
  beyond its amount). If the invoice's items have less left to credit than the amount — other
  credit memos from this invoice, applied elsewhere — the write-off is refused.
- A debit memo's write-off memo has one item, which names the debit memo it writes off.
- Item-level write-off (`items`) is not supported: the whole amount is written off the document.

Locks: the document `FOR UPDATE` first, with its account (create locks both again, as a no-op);
the new memo is invisible to others until commit, so applying it after the document keeps the
order of `core/locking.py` (source before targets) safe.
"""

from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.accounts.service import lock_for_write
from partnerbill.billing.service import lock_invoice
from partnerbill.core.clock import today
from partnerbill.core.errors import business_rule, invalid_value
from partnerbill.core.ids import new_id
from partnerbill.core.locks import bounded_lock_wait
from partnerbill.core.money import ZERO
from partnerbill.core.schemas import CamelModel, Date
from partnerbill.core.tenants import Tenant
from partnerbill.memos import creation, kinds, service
from partnerbill.memos.kinds import CREDIT
from partnerbill.memos.schemas import (
    CreateMemoFromInvoiceRequest,
    MemoItemDetails,
    MemoOptions,
)
from partnerbill.memos.views import MemoJson
from partnerbill.payments.schemas import ApplyPaymentRequest
from partnerbill.payments.settlement import check_amount
from partnerbill.tables.billing import DocumentStatus

REASON_CODE = "Write-off"


class WriteOffRequest(CamelModel):
    """Zuora's write-off body; its accounting fields (`revenueImpacting`, the NetSuite fields,
    `taxAutoCalculation`) are accepted and have nothing to act on here."""

    amount: Decimal | None = None
    memo_date: Date | None = None
    reason_code: Annotated[str | None, Field(max_length=100)] = None
    comment: Annotated[str | None, Field(max_length=255)] = None
    items: list[dict[str, Any]] | None = None


def _amount(request: WriteOffRequest, balance: Decimal, currency: str, what: str) -> Decimal:
    if request.items:
        raise invalid_value(
            CREDIT.resource,
            "items",
            "item-level write-off is not supported; give `amount` (default: the whole balance).",
        )
    if balance <= ZERO:
        raise business_rule(CREDIT.resource, f"{what} has no balance to write off.")
    amount = balance if request.amount is None else request.amount
    check_amount(amount, currency, "amount", CREDIT.resource)
    if amount > balance:
        raise business_rule(
            CREDIT.resource, f"'amount' {amount} exceeds the balance of {what}: {balance}."
        )
    return amount


def _options(request: WriteOffRequest) -> dict[str, object]:
    """The memo's options: posted at once, dated the write-off's memo date."""
    return {
        "effectiveDate": request.memo_date,
        "reasonCode": request.reason_code or REASON_CODE,
        "comment": request.comment,
        "autoPost": True,
    }


def _answer(memo: MemoJson) -> dict[str, object]:
    return {"success": True, "creditMemo": {"id": memo["id"]}}


async def write_off_invoice(
    conn: AsyncConnection, tenant: Tenant, key: str, request: WriteOffRequest
) -> dict[str, object]:
    async with bounded_lock_wait(conn, tenant, CREDIT.resource):
        invoice = await lock_invoice(conn, tenant, key)
    what = f"invoice {invoice['invoice_number']}"
    if invoice["status"] != DocumentStatus.POSTED:
        raise business_rule(
            CREDIT.resource,
            f"Only a Posted invoice can be written off; {what} is {invoice['status']}.",
        )
    amount = _amount(request, invoice["balance"], invoice["currency"], what)
    sources = await creation.invoice_items_by_id(conn, tenant, invoice["id"])
    left = amount
    items: list[dict[str, object]] = []
    for item_id, creditable in (
        await creation.creditable_amounts(conn, tenant, invoice["id"], sources)
    ).items():
        take = min(creditable, left)
        if take > ZERO:
            items.append({"amount": take, "invoiceItemId": item_id})
            left -= take
    if left > ZERO:
        raise business_rule(
            CREDIT.resource,
            f"The items of {what} have only {amount - left} left to credit; "
            f"{amount} cannot be written off.",
        )
    memo = await creation.create_from_invoice(
        conn,
        tenant,
        CREDIT,
        invoice["id"],
        CreateMemoFromInvoiceRequest.model_validate({"items": items, **_options(request)}),
    )
    await service.apply_credit_memo(
        conn,
        tenant,
        memo["id"],
        ApplyPaymentRequest.model_validate(
            {
                "effectiveDate": request.memo_date,
                "invoices": [{"invoiceId": invoice["id"], "amount": amount}],
            }
        ),
        1,
    )
    return _answer(memo)


async def write_off_debit_memo(
    conn: AsyncConnection, tenant: Tenant, key: str, request: WriteOffRequest
) -> dict[str, object]:
    async with bounded_lock_wait(conn, tenant, CREDIT.resource):
        debit_memo = await service.lock_memo(conn, tenant, kinds.DEBIT, key)
        account = await lock_for_write(conn, tenant, debit_memo["account_id"])
    what = f"debit memo {debit_memo['memo_number']}"
    if debit_memo["status"] != DocumentStatus.POSTED:
        raise business_rule(
            CREDIT.resource,
            f"Only a Posted debit memo can be written off; {what} is {debit_memo['status']}.",
        )
    amount = _amount(request, debit_memo["balance"], debit_memo["currency"], what)
    memo_id = new_id()
    item = creation.item_row(
        tenant,
        memo_id,
        0,
        MemoItemDetails(),
        amount,
        description=f"Write-off of {what}",
        service_start_date=request.memo_date or today(),
        service_end_date=request.memo_date or today(),
    )
    row = creation.memo_row(
        tenant,
        CREDIT,
        account,
        debit_memo["currency"],
        MemoOptions.model_validate(_options(request)),
        [item],
        memo_id=memo_id,
        number=None,
        referred_invoice_id=None,
    )
    memo = await creation.write_memo(conn, tenant, CREDIT, account, row, [item])
    await service.apply_credit_memo(
        conn,
        tenant,
        memo_id,
        ApplyPaymentRequest.model_validate(
            {
                "effectiveDate": request.memo_date,
                "debitMemos": [{"debitMemoId": debit_memo["id"], "amount": amount}],
            }
        ),
        1,
    )
    return _answer(memo)
