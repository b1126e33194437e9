"""Creating credit and debit memos, from an invoice or from product rate plan charges.

A memo is created Draft (or Posted with `autoPost`). A credit memo from an invoice never
credits an invoice item beyond what is left of it (its amount less the non-canceled credit memo
items on it): the invoice is locked `FOR UPDATE` while that is checked (`core/locking.py`: the
invoice before the memo), so two memos cannot both take the last of it.
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal, TypedDict, Unpack, cast

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.accounts.schemas import due_date
from partnerbill.accounts.service import WritableAccount, document_currency, lock_for_write
from partnerbill.billing.service import lock_invoice
from partnerbill.core.clock import today
from partnerbill.core.errors import (
    business_rule,
    invalid_value,
    missing_field,
    not_found,
)
from partnerbill.core.ids import new_id
from partnerbill.core.locks import bounded_lock_wait
from partnerbill.core.money import ZERO
from partnerbill.core.tenants import Tenant, document_number, next_numbers
from partnerbill.memos.kinds import MemoKind
from partnerbill.memos.schemas import (
    CreateMemoFromChargesRequest,
    CreateMemoFromInvoiceRequest,
    MemoItemDetails,
    MemoOptions,
)
from partnerbill.memos.views import MemoJson, memo_json
from partnerbill.metrics.service import MetricsDelta, touch
from partnerbill.payments.settlement import check_amount, unapplied
from partnerbill.tables.billing import (
    DocumentStatus,
    InvoiceItemRow,
    invoice_items,
)
from partnerbill.tables.catalog import product_rate_plan_charges
from partnerbill.tables.memos import (
    MemoItemRow,
    MemoRow,
    credit_memo_items,
    credit_memos,
)


class ItemSource(TypedDict, total=False):
    """What a memo item takes from its source (an invoice item or a charge) where the request
    does not say it."""

    invoice_item_id: str
    product_rate_plan_charge_id: str | None
    sku_name: str | None
    description: str | None
    quantity: Decimal
    service_start_date: date
    service_end_date: date


def item_row(
    tenant: Tenant,
    memo_id: str,
    position: int,
    item: MemoItemDetails,
    amount: Decimal,
    **source: Unpack[ItemSource],
) -> MemoItemRow:
    """A memo item row: the request's details, else the source's (invoice item or charge)."""
    return {
        "tenant_id": tenant.id,
        "id": new_id(),
        "memo_id": memo_id,
        "line_number": position + 1,
        "invoice_item_id": source.get("invoice_item_id"),
        "product_rate_plan_charge_id": source.get("product_rate_plan_charge_id"),
        "sku_name": source.get("sku_name"),
        "description": item.description or item.comment or source.get("description"),
        "comment": item.comment,
        "amount": amount,
        "quantity": item.quantity if item.quantity is not None else source.get("quantity"),
        "service_start_date": item.service_start_date or source.get("service_start_date"),
        "service_end_date": item.service_end_date or source.get("service_end_date"),
    }


def memo_row(
    tenant: Tenant,
    kind: MemoKind,
    account: WritableAccount,
    currency: str,
    request: MemoOptions,
    items: Sequence[MemoItemRow],
    *,
    memo_id: str,
    number: str | None,
    referred_invoice_id: str | None,
) -> MemoRow:
    now = datetime.now(UTC)
    memo_date = request.effective_date or today()
    amount = sum((item["amount"] for item in items), ZERO)
    row: MemoRow = {
        "tenant_id": tenant.id,
        "id": memo_id,
        "memo_number": number,
        "account_id": account.id,
        "currency": currency,
        "amount": amount,
        "status": DocumentStatus.POSTED if request.auto_post else DocumentStatus.DRAFT,
        "memo_date": memo_date,
        "referred_invoice_id": referred_invoice_id,
        "reason_code": request.reason_code,
        "comment": request.comment,
        "posted_date": now if request.auto_post else None,
        "created_at": now,
        "updated_at": now,
    }
    if kind.is_credit:
        row |= {"applied_amount": ZERO, "refund_amount": ZERO}
    else:
        if request.due_date is not None and request.due_date < memo_date:
            raise invalid_value(kind.resource, "dueDate", "must not be before the memo date.")
        row |= {
            "balance": amount,
            "due_date": request.due_date
            or due_date(memo_date, account.payment_term, kind.resource),
        }
    return row


async def write_memo(
    conn: AsyncConnection,
    tenant: Tenant,
    kind: MemoKind,
    account: WritableAccount,
    row: MemoRow,
    items: Sequence[MemoItemRow],
) -> MemoJson:
    """Number, insert, and report a posted memo to its account's metrics."""
    if row["memo_number"] is None:
        (number,) = await next_numbers(conn, tenant, kind.sequence, 1)
        row["memo_number"] = document_number(kind.prefix, number)
    else:
        taken = await conn.scalar(
            select(kind.table.c.id).where(
                kind.table.c.tenant_id == tenant.id,
                kind.table.c.memo_number == row["memo_number"],
            )
        )
        if taken is not None:
            raise business_rule(
                kind.resource,
                f"{kind.name.capitalize()} number '{row['memo_number']}' already exists.",
            )
    try:
        await conn.execute(insert(kind.table).values(**row))
    except IntegrityError as exc:  # lost a race for the chosen number; the request fails whole
        raise business_rule(
            kind.resource,
            f"{kind.name.capitalize()} number '{row['memo_number']}' was taken meanwhile; retry.",
        ) from exc
    await conn.execute(insert(kind.items), list(items))
    if row["status"] == DocumentStatus.POSTED:
        await touch(conn, tenant, [posting_delta(kind, row, account.partner_account, 1)])
    return memo_json(kind, row, account.account_number)


async def create_from_invoice(
    conn: AsyncConnection,
    tenant: Tenant,
    kind: MemoKind,
    invoice_key: str,
    request: CreateMemoFromInvoiceRequest,
) -> MemoJson:
    """A memo on the invoice's account and in its currency, for (parts of) its items."""
    async with bounded_lock_wait(conn, tenant, kind.resource):
        invoice = await lock_invoice(conn, tenant, invoice_key)
        if invoice["status"] != DocumentStatus.POSTED:
            raise business_rule(
                kind.resource,
                f"A {kind.name} is created only from a Posted invoice; invoice "
                f"{invoice['invoice_number']} is {invoice['status']}.",
            )
        account = await lock_for_write(conn, tenant, invoice["account_id"])
    sources = await invoice_items_by_id(conn, tenant, invoice["id"])
    creditable = (
        await creditable_amounts(conn, tenant, invoice["id"], sources) if kind.is_credit else {}
    )
    memo_id = new_id()
    items = []
    for i, item in enumerate(request.items):
        where = f"items[{i}]"
        check_amount(item.amount, invoice["currency"], f"{where}.amount", kind.resource)
        source: ItemSource = {"sku_name": item.sku_name}
        if item.invoice_item_id is None:
            if kind.is_credit:
                raise missing_field(kind.resource, f"{where}.invoiceItemId")
        else:
            invoice_item = sources.get(item.invoice_item_id)
            if invoice_item is None:
                raise invalid_value(
                    kind.resource,
                    f"{where}.invoiceItemId",
                    f"'{item.invoice_item_id}' is not an item of invoice "
                    f"{invoice['invoice_number']}.",
                )
            source = _from_invoice_item(invoice_item) | {
                "sku_name": item.sku_name or invoice_item["sku"]
            }
            if kind.is_credit:
                left = creditable[item.invoice_item_id]
                if item.amount > left:
                    raise business_rule(
                        kind.resource,
                        f"'{where}.amount' {item.amount} exceeds what is left to credit on "
                        f"invoice item {item.invoice_item_id}: {left}.",
                    )
                creditable[item.invoice_item_id] = left - item.amount
        items.append(item_row(tenant, memo_id, i, item, item.amount, **source))
    row = memo_row(
        tenant,
        kind,
        account,
        invoice["currency"],
        request,
        items,
        memo_id=memo_id,
        number=None,
        referred_invoice_id=invoice["id"],
    )
    return await write_memo(conn, tenant, kind, account, row, items)


async def invoice_items_by_id(
    conn: AsyncConnection, tenant: Tenant, invoice_id: str
) -> dict[str, InvoiceItemRow]:
    """The invoice's items in line order, by id."""
    rows = await conn.execute(
        select(invoice_items)
        .where(invoice_items.c.tenant_id == tenant.id, invoice_items.c.invoice_id == invoice_id)
        .order_by(invoice_items.c.line_number)
    )
    # The one conversion point: the statement reads every column of the item.
    return {row.id: cast(InvoiceItemRow, dict(row._mapping)) for row in rows}


def _from_invoice_item(invoice_item: InvoiceItemRow) -> ItemSource:
    return {
        "invoice_item_id": invoice_item["id"],
        "product_rate_plan_charge_id": invoice_item["product_rate_plan_charge_id"],
        "description": invoice_item["description"] or invoice_item["charge_name"],
        "quantity": invoice_item["quantity"],
        "service_start_date": invoice_item["service_start_date"],
        "service_end_date": invoice_item["service_end_date"],
    }


async def creditable_amounts(
    conn: AsyncConnection,
    tenant: Tenant,
    invoice_id: str,
    invoice_items_by_id: Mapping[str, InvoiceItemRow],
) -> dict[str, Decimal]:
    """What is left to credit on each item of the invoice (the caller holds the invoice lock)."""
    credited: dict[str, Decimal] = {
        item_id: amount
        for item_id, amount in (
            await conn.execute(
                select(credit_memo_items.c.invoice_item_id, func.sum(credit_memo_items.c.amount))
                .join(
                    credit_memos,
                    (credit_memos.c.tenant_id == credit_memo_items.c.tenant_id)
                    & (credit_memos.c.id == credit_memo_items.c.memo_id),
                )
                .where(
                    credit_memos.c.tenant_id == tenant.id,
                    credit_memos.c.referred_invoice_id == invoice_id,
                    credit_memos.c.status != DocumentStatus.CANCELED,
                )
                .group_by(credit_memo_items.c.invoice_item_id)
            )
        )
    }
    return {
        item_id: item["amount"] - credited.get(item_id, ZERO)
        for item_id, item in invoice_items_by_id.items()
    }


async def create_from_charges(
    conn: AsyncConnection,
    tenant: Tenant,
    kind: MemoKind,
    request: CreateMemoFromChargesRequest,
) -> MemoJson:
    """A standalone memo on an account, one item per product rate plan charge named."""
    key = request.account_id or request.account_number
    if key is None:
        raise missing_field(kind.resource, "accountId")
    async with bounded_lock_wait(conn, tenant, kind.resource):
        account = await lock_for_write(conn, tenant, key)
    if request.account_number and request.account_number != account.account_number:
        raise invalid_value(kind.resource, "accountNumber", "names another account than accountId.")
    currency = document_currency(account, request.currency, kind.resource)
    charges = []
    for i, charge in enumerate(request.charges):
        charge_id = charge.product_rate_plan_charge_id or charge.charge_id
        if charge_id is None:
            raise missing_field(kind.resource, f"charges[{i}].productRatePlanChargeId")
        amount = charge.amount if charge.amount is not None else charge.memo_item_amount
        if amount is None:
            raise missing_field(kind.resource, f"charges[{i}].amount")
        check_amount(amount, currency, f"charges[{i}].amount", kind.resource)
        charges.append((charge_id, amount))
    names: dict[str, str] = {
        charge_id: name
        for charge_id, name in (
            await conn.execute(
                select(product_rate_plan_charges.c.id, product_rate_plan_charges.c.name).where(
                    product_rate_plan_charges.c.tenant_id == tenant.id,
                    product_rate_plan_charges.c.id.in_({charge_id for charge_id, _ in charges}),
                )
            )
        )
    }
    memo_id = new_id()
    items = []
    for i, (charge_id, amount) in enumerate(charges):
        if charge_id not in names:
            raise not_found(kind.resource, "product rate plan charge", charge_id)
        items.append(
            item_row(
                tenant,
                memo_id,
                i,
                request.charges[i],
                amount,
                product_rate_plan_charge_id=charge_id,
                description=names[charge_id],
            )
        )
    row = memo_row(
        tenant,
        kind,
        account,
        currency,
        request,
        items,
        memo_id=memo_id,
        number=request.number,
        referred_invoice_id=None,
    )
    return await write_memo(conn, tenant, kind, account, row, items)


def posting_delta(
    kind: MemoKind, memo: MemoRow, partner_account: bool, sign: Literal[1, -1]
) -> MetricsDelta:
    """What a memo entering (1) or leaving (-1) the Posted state moves on its account."""
    if kind.is_credit:
        remaining = unapplied(memo)
        return MetricsDelta(
            account_id=memo["account_id"],
            partner_account=partner_account,
            unapplied_credit_memo_amount=sign * remaining,
        )
    return MetricsDelta(
        account_id=memo["account_id"],
        partner_account=partner_account,
        total_debit_memo_balance=sign * memo["balance"],
    )
