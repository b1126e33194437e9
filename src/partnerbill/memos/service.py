"""Credit memos and debit memos (Zuora Invoice Settlement): post, unpost, cancel and edit; apply,
unapply and refund a credit memo. Creating them is `memos/creation.py`, reading them
`memos/views.py`.

Status rules: a memo is created Draft (or Posted with `autoPost`); Draft → Posted by post;
Posted → Draft by unpost, only while nothing is applied to it or refunded from it; Draft →
Canceled by cancel. Only Posted memos count in the metrics: a credit memo's unapplied amount
(amount - applied - refunded) in unappliedCreditMemoAmount, a debit memo's balance in
totalDebitMemoBalance — both on the memo's own account.

Apply, unapply and refund of a credit memo are `settlement`'s, with the credit memo as the
source (`CREDIT_SOURCE`): open while Posted.

Locks: documents only, in the order of `core/locking.py`: an invoice a memo is created from
before the memo; the source credit memo of an application before its targets, as for payments.
A memo and its account are locked in one statement (`lock_memo`).
"""

from decimal import Decimal
from typing import Literal, cast

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.errors import (
    ZuoraError,
    business_rule,
    invalid_value,
    not_found,
)
from partnerbill.core.locking import FOR_UPDATE_WITH_ACCOUNT
from partnerbill.core.locks import execute_locking
from partnerbill.core.tenants import Tenant
from partnerbill.memos.creation import posting_delta
from partnerbill.memos.kinds import CREDIT, MemoKind
from partnerbill.memos.schemas import (
    UpdateMemoRequest,
)
from partnerbill.memos.views import MemoJson, get_memo, memo_json, memo_of, memo_query
from partnerbill.metrics.service import touch
from partnerbill.payments import settlement
from partnerbill.payments.schemas import ApplyPaymentRequest, CreateRefundRequest
from partnerbill.payments.settlement import RefundJson, SourceKind
from partnerbill.tables.billing import (
    DocumentStatus,
)
from partnerbill.tables.memos import (
    LockedMemo,
    MemoRow,
)

_LOCK_MEMO = FOR_UPDATE_WITH_ACCOUNT.format(document="m", account="a")


async def lock_memo(conn: AsyncConnection, tenant: Tenant, kind: MemoKind, key: str) -> LockedMemo:
    """The memo `FOR UPDATE` (it is about to change), its account `FOR KEY SHARE`."""
    row = (
        await execute_locking(
            conn,
            tenant,
            memo_query(kind, _LOCK_MEMO),
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
    return memo_of(changed)


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
    await touch(conn, tenant, [posting_delta(kind, posted, memo["partner_account"], 1)])
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
    await touch(conn, tenant, [posting_delta(kind, memo, memo["partner_account"], -1)])
    return memo_json(kind, unposted, memo["account_number"])


async def cancel_memo(conn: AsyncConnection, tenant: Tenant, kind: MemoKind, key: str) -> MemoJson:
    memo = await lock_memo(conn, tenant, kind, key)
    if memo["status"] != DocumentStatus.DRAFT:
        raise _wrong_status(kind, memo, "canceled", DocumentStatus.DRAFT)
    # A Draft memo never counted in the metrics, so canceling it changes none.
    canceled = await _update_memo(conn, tenant, kind, memo, status=DocumentStatus.CANCELED)
    return memo_json(kind, canceled, memo["account_number"])


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
