"""Credit memos and debit memos (Zuora Invoice Settlement): create from an invoice or from
product rate plan charges, post, unpost, cancel, read; apply, unapply and refund a credit memo.

Status rules: a memo is created Draft (or Posted with `autoPost`); Draft → Posted by post;
Posted → Draft by unpost, only while nothing is applied to it or refunded from it; Draft →
Canceled by cancel. Only Posted memos count in the metrics: a credit memo's unapplied amount
(amount - applied - refunded) in unappliedCreditMemoAmount, a debit memo's balance in
totalDebitMemoBalance — both on the memo's own account.

A credit memo from an invoice never credits an invoice item beyond what is left of it (its
amount less the non-canceled credit memo items on it): the invoice is locked `FOR UPDATE` while
that is checked, so two memos cannot both take the last of it.

Apply, unapply and refund of a credit memo are `settlement`'s, with the credit memo as the
source (`CREDIT_SOURCE`): open while Posted.

Locks: documents only, in the order of `core/locking.py`: an invoice a memo is created from
before the memo; the source credit memo of an application before its targets, as for payments.
A memo and its account are locked in one statement (`lock_memo`).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal, TypedDict, Unpack, cast

from sqlalchemy import Row, Table, TextClause, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.accounts.schemas import due_date
from partnerbill.accounts.service import WritableAccount, lock_for_write
from partnerbill.billing.service import lock_invoice
from partnerbill.core.clock import today
from partnerbill.core.errors import (
    Resource,
    ZuoraError,
    business_rule,
    invalid_value,
    missing_field,
    not_found,
)
from partnerbill.core.ids import new_id
from partnerbill.core.json import v1_datetime
from partnerbill.core.locking import FOR_UPDATE_WITH_ACCOUNT
from partnerbill.core.locks import bounded_lock_wait, execute_locking
from partnerbill.core.money import ZERO
from partnerbill.core.pagination import PageRequest
from partnerbill.core.tenants import Tenant, document_number, next_numbers
from partnerbill.memos.schemas import (
    CreateMemoFromChargesRequest,
    CreateMemoFromInvoiceRequest,
    MemoItemDetails,
    MemoOptions,
    UpdateMemoRequest,
)
from partnerbill.metrics.service import MetricsDelta, touch
from partnerbill.payments import settlement
from partnerbill.payments.schemas import ApplyPaymentRequest, CreateRefundRequest
from partnerbill.payments.settlement import RefundJson, SourceKind, check_amount, unapplied
from partnerbill.tables.accounts import accounts
from partnerbill.tables.billing import (
    DOCUMENT_STATUSES,
    DocumentStatus,
    InvoiceItemRow,
    invoice_items,
)
from partnerbill.tables.catalog import product_rate_plan_charges
from partnerbill.tables.memos import (
    LockedMemo,
    MemoItemRow,
    MemoRow,
    credit_memo_items,
    credit_memos,
    debit_memo_items,
    debit_memos,
)

DEFAULT_PAGE_SIZE = 20


@dataclass(frozen=True, slots=True)
class MemoKind:
    """What differs between credit and debit memos for the operations they share."""

    name: str  # in messages
    table: Table
    items: Table
    resource: Resource
    sequence: str
    prefix: str

    @property
    def is_credit(self) -> bool:
        return self.table is credit_memos


CREDIT = MemoKind(
    "credit memo", credit_memos, credit_memo_items, Resource.CREDIT_MEMO, "credit_memo_number", "CM"
)
DEBIT = MemoKind(
    "debit memo", debit_memos, debit_memo_items, Resource.DEBIT_MEMO, "debit_memo_number", "DM"
)


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


# --- create ------------------------------------------------------------------------------------


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
        await touch(conn, tenant, [_posting_delta(kind, row, account.partner_account, 1)])
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
    if account.status == "Canceled":
        raise business_rule(kind.resource, f"Account '{account.account_number}' is canceled.")
    currency = request.currency or account.currency
    if currency != account.currency:
        raise business_rule(
            kind.resource,
            f"'currency' {currency} differs from the account's currency {account.currency}.",
        )
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


# --- status changes ----------------------------------------------------------------------------


def _posting_delta(
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


def _memo_query(kind: MemoKind, lock: str = "") -> TextClause:
    return text(
        f"SELECT m.*, a.account_number, a.partner_account FROM {kind.table.name} m "
        "JOIN accounts a ON a.tenant_id = m.tenant_id AND a.id = m.account_id "
        "WHERE m.tenant_id = :tenant_id AND (m.id = :key OR m.memo_number = :key) "
        f"ORDER BY m.id = :key DESC LIMIT 1 {lock}"
    )


_LOCK_MEMO = FOR_UPDATE_WITH_ACCOUNT.format(document="m", account="a")


def _memo(row: Row[Any]) -> MemoRow:
    """A memo read with all its columns (`SELECT m.*` or `RETURNING`), and perhaps more."""
    return cast(MemoRow, dict(row._mapping))


async def lock_memo(conn: AsyncConnection, tenant: Tenant, kind: MemoKind, key: str) -> LockedMemo:
    """The memo `FOR UPDATE` (it is about to change), its account `FOR KEY SHARE`."""
    row = (
        await execute_locking(
            conn,
            tenant,
            _memo_query(kind, _LOCK_MEMO),
            {"tenant_id": tenant.id, "key": key},
            kind.resource,
        )
    ).one_or_none()
    if row is None:
        raise not_found(kind.resource, kind.name, key)
    # `_memo_query` adds the account's number and partner flag to the memo's columns.
    return cast(LockedMemo, dict(row._mapping))


async def _update_memo(
    conn: AsyncConnection, tenant: Tenant, kind: MemoKind, memo: MemoRow, **values: object
) -> MemoRow:
    changed = (
        await conn.execute(
            update(kind.table)
            .where(kind.table.c.tenant_id == tenant.id, kind.table.c.id == memo["id"])
            .values(**values, updated_at=func.now())
            .returning(*kind.table.c)
        )
    ).one()
    return _memo(changed)


def _wrong_status(kind: MemoKind, memo: MemoRow, action: str, needed: str) -> ZuoraError:
    hint = (
        " Unpost it first."
        if action == "canceled" and memo["status"] == DocumentStatus.POSTED
        else ""
    )
    return business_rule(
        kind.resource,
        f"Only a {needed} {kind.name} can be {action}; {kind.name} {memo['memo_number']} is "
        f"{memo['status']}.{hint}",
    )


async def post_memo(conn: AsyncConnection, tenant: Tenant, kind: MemoKind, key: str) -> MemoJson:
    memo = await lock_memo(conn, tenant, kind, key)
    if memo["status"] != DocumentStatus.DRAFT:
        raise _wrong_status(kind, memo, "posted", DocumentStatus.DRAFT)
    posted = await _update_memo(
        conn, tenant, kind, memo, status=DocumentStatus.POSTED, posted_date=func.now()
    )
    await touch(conn, tenant, [_posting_delta(kind, posted, memo["partner_account"], 1)])
    return memo_json(kind, posted, memo["account_number"])


async def unpost_memo(conn: AsyncConnection, tenant: Tenant, kind: MemoKind, key: str) -> MemoJson:
    memo = await lock_memo(conn, tenant, kind, key)
    if memo["status"] != DocumentStatus.POSTED:
        raise _wrong_status(kind, memo, "unposted", DocumentStatus.POSTED)
    settled = (
        memo["applied_amount"] != 0 or memo["refund_amount"] != 0
        if kind.is_credit
        else memo["balance"] != memo["amount"]
    )
    if settled:
        what = "is applied or refunded" if kind.is_credit else "has payments or credits applied"
        raise business_rule(
            kind.resource,
            f"{kind.name.capitalize()} {memo['memo_number']} {what}; unapply it before unposting.",
        )
    unposted = await _update_memo(
        conn, tenant, kind, memo, status=DocumentStatus.DRAFT, posted_date=None
    )
    await touch(conn, tenant, [_posting_delta(kind, memo, memo["partner_account"], -1)])
    return memo_json(kind, unposted, memo["account_number"])


async def cancel_memo(conn: AsyncConnection, tenant: Tenant, kind: MemoKind, key: str) -> MemoJson:
    memo = await lock_memo(conn, tenant, kind, key)
    if memo["status"] != DocumentStatus.DRAFT:
        raise _wrong_status(kind, memo, "canceled", DocumentStatus.DRAFT)
    # A Draft memo never counted in the metrics, so canceling it changes none.
    canceled = await _update_memo(conn, tenant, kind, memo, status=DocumentStatus.CANCELED)
    return memo_json(kind, canceled, memo["account_number"])


# --- credit memo settlement --------------------------------------------------------------------


def _refund_exceeds(memo: MemoRow, amount: Decimal, remaining: Decimal) -> str:
    return (
        f"'totalAmount' {amount} exceeds the unapplied amount of credit memo "
        f"{memo['memo_number']}: {remaining}."
    )


# A credit memo as a settlement source: open while Posted, answered as a CreditMemoResponse;
# its refund answers `RefundCreditMemoResponse`, which names no payment number.
CREDIT_SOURCE: SourceKind[LockedMemo, MemoRow, MemoJson] = SourceKind(
    source_type="CreditMemo",
    resource=CREDIT.resource,
    open_status=DocumentStatus.POSTED,
    refund_column="credit_memo_id",
    no_gateway=(
        "'type' Electronic needs a payment gateway, which this server has none of; record the "
        "refund with type External."
    ),
    lock=lambda conn, tenant, key: lock_memo(conn, tenant, CREDIT, key),
    save=lambda conn, tenant, memo, **values: _update_memo(conn, tenant, CREDIT, memo, **values),
    not_open=lambda memo, action: _wrong_status(CREDIT, memo, action, DocumentStatus.POSTED),
    refund_exceeds=_refund_exceeds,
    answer=lambda row, account_number: memo_json(CREDIT, row, account_number),
    refund_answer=lambda refund, memo: settlement.refund_json(
        refund, {"creditMemoId": refund["credit_memo_id"], "paymentId": None}
    ),
)


async def apply_credit_memo(
    conn: AsyncConnection,
    tenant: Tenant,
    key: str,
    request: ApplyPaymentRequest,
    direction: Literal[1, -1],
) -> MemoJson:
    """Apply (1) or unapply (-1) a posted credit memo to invoices and debit memos of its
    account (`settlement.apply`)."""
    return await settlement.apply(conn, tenant, CREDIT_SOURCE, key, request, direction)


async def refund_credit_memo(
    conn: AsyncConnection, tenant: Tenant, key: str, request: CreateRefundRequest
) -> RefundJson:
    """Refund (part of) a posted credit memo's unapplied amount (`settlement.refund`)."""
    return await settlement.refund(conn, tenant, CREDIT_SOURCE, key, request)


# --- read --------------------------------------------------------------------------------------


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
    row = (
        await conn.execute(_memo_query(kind), {"tenant_id": tenant.id, "key": key})
    ).one_or_none()
    if row is None:
        raise not_found(kind.resource, kind.name, key)
    return memo_json(kind, _memo(row), row.account_number)


async def list_memos(
    conn: AsyncConnection,
    tenant: Tenant,
    kind: MemoKind,
    *,
    account_key: str | None,
    status: str | None,
    window: PageRequest,
) -> tuple[list[dict[str, object]], bool]:
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
    # Plain dicts, as a page's entries are.
    memos = [dict(memo_json(kind, _memo(row), row.account_number)) for row in rows[:limit]]
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


async def update_memo(
    conn: AsyncConnection, tenant: Tenant, kind: MemoKind, key: str, request: UpdateMemoRequest
) -> MemoJson:
    """PUT /v1/credit-memos/{key} and /v1/debit-memos/{key}: comment and reasonCode on a Draft
    or Posted memo, `effectiveDate` (the memo date) only while Draft, `dueDate` only on a debit
    memo and not before its memo date. No amount changes, so no metrics change; the memo is
    locked `FOR UPDATE` as a status change locks it. Every check runs before the one UPDATE."""
    memo = await lock_memo(conn, tenant, kind, key)
    values = request.model_dump(
        by_alias=False, include=set(type(request).model_fields), exclude_unset=True
    )
    if memo["status"] == DocumentStatus.CANCELED:
        raise _wrong_status(kind, memo, "edited", "Draft or Posted")
    if "due_date" in values and kind.is_credit:
        raise invalid_value(kind.resource, "dueDate", "a credit memo has no due date.")
    for field, name in (("effective_date", "effectiveDate"), ("due_date", "dueDate")):
        if field in values and values[field] is None:
            raise invalid_value(kind.resource, name, "may not be null.")
    if "effective_date" in values and memo["status"] != DocumentStatus.DRAFT:
        raise _wrong_status(kind, memo, "given another effectiveDate", DocumentStatus.DRAFT)
    changes = {
        column: values[field]
        for field, column in (
            ("comment", "comment"),
            ("reason_code", "reason_code"),
            ("effective_date", "memo_date"),
            ("due_date", "due_date"),
        )
        if field in values
    }
    memo_date = changes.get("memo_date", memo["memo_date"])
    if not kind.is_credit and changes.get("due_date", memo["due_date"]) < memo_date:
        raise invalid_value(kind.resource, "dueDate", "may not be before the memo date.")
    if changes:
        await _update_memo(conn, tenant, kind, memo, **changes)
    return await get_memo(conn, tenant, kind, memo["id"])
