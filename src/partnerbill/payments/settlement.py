"""Settlement: applying a payment or a credit memo (the *source*) to invoices and debit memos
(the *targets*), unapplying it, and refunding what is left of it.

A payment and a credit memo are two kinds of source (`SourceKind`): each brings its lock, its
row write, its status rule and its wording; the rules below and the ledger writes exist here
once. Rules a finance team relies on, each a clear error with nothing written:
- a source is applied, unapplied or refunded only in its open status (a payment Processed, a
  credit memo Posted); a refund is External only, as there is no gateway;
- the target is Posted and in the source's currency, and belongs to the source's account (a
  document is settled by its own invoice owner's payments and credits);
- an application never takes a target below zero, nor the source beyond its unapplied amount
  (amount - applied - refunded); a refund never exceeds the unapplied amount;
- an unapplication never exceeds what the source has on that target.

The `applications` ledger gets one row per allocation (positive applied, negative unapplied),
the targets' balances and the source's applied or refunded amount move in the same
transaction, and the source's account metrics move through `touch`: the targets' balances and
the source's unapplied amount (unappliedPaymentAmount or unappliedCreditMemoAmount).

Locks: the source, then its targets, in the order of `core/locking.py` (its steps 3 and 4). A
transaction holds at most one source and never waits for a source while holding a target; two
requests applying to one invoice at once queue on that invoice and the second sees the first's
balance. A source is read (which applications to reverse, how much is unapplied) only after it
is locked; a refusal the request alone decides (a refund that is not External) comes before any
lock.
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Generic, Literal, NotRequired, TypedDict, TypeVar, cast

from sqlalchemy import Row, Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

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
from partnerbill.core.locking import lock_rows_in_id_order
from partnerbill.core.locks import bounded_lock_wait
from partnerbill.core.money import ZERO, amount_problem
from partnerbill.core.tenants import Tenant, document_number, next_numbers
from partnerbill.metrics.service import MetricsDelta, touch
from partnerbill.payments.schemas import (
    ApplyPaymentRequest,
    CreateRefundRequest,
    DebitMemoApplication,
    InvoiceApplication,
)
from partnerbill.tables.billing import DocumentStatus, invoices
from partnerbill.tables.memos import LockedMemo, debit_memos
from partnerbill.tables.payments import (
    LockedPayment,
    PaymentStatus,
    RefundRow,
    applications,
    refunds,
)

TargetType = Literal["Invoice", "DebitMemo"]
SourceType = Literal["Payment", "CreditMemo"]
MAX_APPLICATIONS_PER_REQUEST = 1000

_TARGETS: dict[TargetType, tuple[Table, str, str]] = {
    # type → (table, number column, name in messages)
    "Invoice": (invoices, "invoice_number", "invoice"),
    "DebitMemo": (debit_memos, "memo_number", "debit memo"),
}


class Source(TypedDict):
    """What settling reads of its source, a payment or a credit memo."""

    id: str
    account_id: str
    currency: str


class Target(TypedDict):
    """A locked invoice or debit memo, as settling reads and moves it."""

    type: TargetType
    id: str
    number: str
    status: str
    account_id: str
    currency: str
    amount: Decimal
    balance: Decimal


class RefundSource(TypedDict):
    """What a refund's answer says of its source, as the answer's own model names it."""

    paymentId: str | None
    paymentNumber: NotRequired[str | None]
    creditMemoId: str | None


class RefundJson(RefundSource):
    """A refund as Zuora answers it."""

    success: bool
    id: str
    number: str
    amount: Decimal
    status: str
    type: str
    methodType: str | None
    accountId: str
    refundDate: date
    reasonCode: str | None
    referenceId: str | None
    comment: str | None
    refundTransactionTime: str | None
    createdDate: str | None


@dataclass(frozen=True, slots=True)
class Allocation:
    """An amount of the source for one target, as the request named it."""

    target_type: TargetType
    key: str
    amount: Decimal
    where: str  # the request field, for error messages


@dataclass(frozen=True, slots=True)
class Applied:
    """What an application moved, in metric terms (the caller turns it into a MetricsDelta)."""

    to_invoices: Decimal
    to_debit_memos: Decimal

    @property
    def total(self) -> Decimal:
        return self.to_invoices + self.to_debit_memos


def unapplied(source: Mapping[str, Any]) -> Decimal:
    """What a payment or credit memo has left to apply or refund."""
    return Decimal(source["amount"] - source["applied_amount"] - source["refund_amount"])


def check_amount(amount: Decimal, currency: str, where: str, resource: Resource) -> None:
    if amount <= 0:
        raise invalid_value(resource, where, "must be greater than 0.")
    if problem := amount_problem(amount, currency):
        raise invalid_value(resource, where, problem)


def _target(row: Row[Any], target_type: TargetType, number: str) -> Target:
    return {
        "type": target_type,
        "id": row.id,
        "number": row._mapping[number],
        "status": row.status,
        "account_id": row.account_id,
        "currency": row.currency,
        "amount": row.amount,
        "balance": row.balance,
    }


async def lock_targets(
    conn: AsyncConnection, tenant: Tenant, allocations: Sequence[Allocation]
) -> dict[tuple[str, str], Target]:
    """The targets, each locked `FOR UPDATE`, in id order (after the source, if any:
    `core/locking.py`)."""
    if len(allocations) > MAX_APPLICATIONS_PER_REQUEST:
        raise invalid_value(
            Resource.GENERIC,
            "invoices",
            f"at most {MAX_APPLICATIONS_PER_REQUEST} applications per request.",
        )
    # One statement per document type, invoices first, each locking in id order: every request
    # locks targets in the same (type, id) order, so two of them never wait on each other.
    found: dict[tuple[str, str], Target] = {}
    for target_type, (table, number, _) in _TARGETS.items():
        keys = [a.key for a in allocations if a.target_type == target_type]
        if not keys:
            continue
        rows = await lock_rows_in_id_order(
            conn,
            tenant,
            table,
            table.c.id.in_(keys) | table.c[number].in_(keys),
            Resource.INVOICE if target_type == "Invoice" else Resource.DEBIT_MEMO,
        )
        for row in rows:
            target = _target(row, target_type, number)
            found[(target_type, target["id"])] = target
            found[(target_type, target["number"])] = target
    for allocation in allocations:
        if (allocation.target_type, allocation.key) not in found:
            raise not_found(Resource.GENERIC, _TARGETS[allocation.target_type][2], allocation.key)
    return {(a.target_type, a.key): found[(a.target_type, a.key)] for a in allocations}


async def applications_of(
    conn: AsyncConnection, tenant: Tenant, source_id: str
) -> dict[str, tuple[TargetType, Decimal]]:
    """What the source has on each target now: target id → (target type, amount)."""
    rows = await conn.execute(
        select(
            applications.c.target_type, applications.c.target_id, func.sum(applications.c.amount)
        )
        .where(applications.c.tenant_id == tenant.id, applications.c.source_id == source_id)
        .group_by(applications.c.target_type, applications.c.target_id)
    )
    return {target_id: (kind, amount) for kind, target_id, amount in rows if amount != 0}


async def settle(
    conn: AsyncConnection,
    tenant: Tenant,
    *,
    source_type: SourceType,
    source: Source,
    unapplied: Decimal,
    targets: Mapping[tuple[str, str], Target],
    allocations: Sequence[Allocation],
    effective_date: date,
    direction: Literal[1, -1],
    resource: Resource,
) -> Applied:
    """Apply (`direction` 1) or unapply (-1) `allocations` of `source` on locked `targets`:
    check every rule first, then write the ledger rows and the targets' balances."""
    already = (
        {
            t: amount
            for t, (_, amount) in (await applications_of(conn, tenant, source["id"])).items()
        }
        if direction < 0
        else {}
    )
    moved: dict[str, Decimal] = {}
    for allocation in allocations:
        target = targets[(allocation.target_type, allocation.key)]
        check_amount(allocation.amount, source["currency"], allocation.where, resource)
        name = _TARGETS[target["type"]][2]
        if target["status"] != DocumentStatus.POSTED:
            raise business_rule(
                resource,
                f"{name.capitalize()} {target['number']} is {target['status']}, not Posted.",
            )
        if target["account_id"] != source["account_id"]:
            raise business_rule(
                resource,
                f"{name.capitalize()} {target['number']} belongs to another account: only its "
                "own account's payments and credit memos settle it.",
            )
        if target["currency"] != source["currency"]:
            raise business_rule(
                resource,
                f"{name.capitalize()} {target['number']} is in {target['currency']}, the source "
                f"in {source['currency']}.",
            )
        moved[target["id"]] = moved.get(target["id"], ZERO) + allocation.amount
        if direction > 0 and moved[target["id"]] > target["balance"]:
            raise business_rule(
                resource,
                f"{name.capitalize()} {target['number']} has a balance of "
                f"{target['balance']}; {moved[target['id']]} cannot be applied to it.",
            )
        if direction < 0 and moved[target["id"]] > already.get(target["id"], ZERO):
            raise business_rule(
                resource,
                f"Only {already.get(target['id'], ZERO)} of this source is applied to {name} "
                f"{target['number']}; {moved[target['id']]} cannot be unapplied.",
            )
    total = sum(moved.values(), ZERO)
    if direction > 0 and total > unapplied:
        raise business_rule(
            resource, f"The unapplied amount is {unapplied}; {total} cannot be applied."
        )
    if not allocations:
        return Applied(ZERO, ZERO)
    by_type: dict[TargetType, Decimal] = {"Invoice": ZERO, "DebitMemo": ZERO}
    rows = []
    for allocation in allocations:
        target = targets[(allocation.target_type, allocation.key)]
        by_type[target["type"]] += allocation.amount
        rows.append(
            {
                "tenant_id": tenant.id,
                "id": new_id(),
                "source_type": source_type,
                "source_id": source["id"],
                "target_type": target["type"],
                "target_id": target["id"],
                "amount": direction * allocation.amount,
                "effective_date": effective_date,
            }
        )
    await conn.execute(insert(applications), rows)
    for target_id, amount in moved.items():
        target = next(t for t in targets.values() if t["id"] == target_id)
        table = _TARGETS[target["type"]][0]
        target["balance"] -= direction * amount
        assert 0 <= target["balance"] <= target["amount"], target_id
        await conn.execute(
            update(table)
            .where(table.c.tenant_id == tenant.id, table.c.id == target_id)
            .values(balance=target["balance"], updated_at=func.now())
        )
    return Applied(direction * by_type["Invoice"], direction * by_type["DebitMemo"])


def allocations_from(
    invoices_requested: Sequence[InvoiceApplication],
    debit_memos_requested: Sequence[DebitMemoApplication],
) -> list[Allocation]:
    """The allocations of an apply/unapply/create request (`invoices[]`, `debitMemos[]`)."""
    found: list[Allocation] = []
    for i, item in enumerate(invoices_requested):
        key = item.invoice_id or item.invoice_number
        if key is None:
            raise missing_field(Resource.GENERIC, f"invoices[{i}].invoiceId")
        found.append(Allocation("Invoice", key, item.amount, f"invoices[{i}].amount"))
    for i, memo in enumerate(debit_memos_requested):
        key = memo.debit_memo_id or memo.debit_memo_number
        if key is None:
            raise missing_field(Resource.GENERIC, f"debitMemos[{i}].debitMemoId")
        found.append(Allocation("DebitMemo", key, memo.amount, f"debitMemos[{i}].amount"))
    return found


# A source locked with its account's fields, the row a write of it gives back, and its answer.
Locked = TypeVar("Locked", LockedPayment, LockedMemo)
Saved = TypeVar("Saved")
Answer = TypeVar("Answer")


@dataclass(frozen=True, slots=True)
class SourceKind(Generic[Locked, Saved, Answer]):
    """What a payment and a credit memo each bring to apply, unapply and refund."""

    source_type: SourceType  # as the ledger and the refunds name it
    resource: Resource
    # The one status in which it is applied, unapplied or refunded.
    open_status: DocumentStatus | PaymentStatus
    refund_column: str  # the `refunds` column naming the source
    no_gateway: str  # the refusal of a refund that is not External
    # The source by id or number, `FOR UPDATE`, with its account's `account_number` and
    # `partner_account` (the account held `FOR KEY SHARE`); not found otherwise.
    lock: Callable[[AsyncConnection, Tenant, str], Awaitable[Locked]]
    # Write these columns of the locked source (and stamp it updated); the row as it now is.
    save: Callable[..., Awaitable[Saved]]
    # The refusal of a source not in `open_status`, for an action ("applied", "refunded", ...).
    not_open: Callable[[Locked, str], ZuoraError]
    # The refusal of a refund of `amount` beyond the source's unapplied `remaining`.
    refund_exceeds: Callable[[Locked, Decimal, Decimal], str]
    # The answer for the source as it now is, and its account number.
    answer: Callable[[Saved, str], Answer]
    # The answer for a refund of the source: `refund_json` with the source's own fields.
    refund_answer: Callable[[RefundRow, Locked], RefundJson]


def moved(
    source_type: SourceType,
    account_id: str,
    partner_account: bool,
    applied: Applied,
    unapplied_change: Decimal,
) -> MetricsDelta:
    """What settling moved on the source's account: the targets' balances fall by what was
    applied to them, the source's unapplied amount by `unapplied_change`."""
    return MetricsDelta(
        account_id=account_id,
        partner_account=partner_account,
        total_invoice_balance=-applied.to_invoices,
        total_debit_memo_balance=-applied.to_debit_memos,
        unapplied_payment_amount=unapplied_change if source_type == "Payment" else ZERO,
        unapplied_credit_memo_amount=unapplied_change if source_type == "CreditMemo" else ZERO,
    )


async def apply(
    conn: AsyncConnection,
    tenant: Tenant,
    kind: SourceKind[Locked, Saved, Answer],
    key: str,
    request: ApplyPaymentRequest,
    direction: Literal[1, -1],
) -> Answer:
    """Apply (1) or unapply (-1) the source `key` to the invoices and debit memos the request
    names, through the application ledger."""
    allocations = allocations_from(request.invoices, request.debit_memos)
    if not allocations:
        raise missing_field(kind.resource, "invoices")
    async with bounded_lock_wait(conn, tenant, kind.resource):
        source = await kind.lock(conn, tenant, key)
        targets = await lock_targets(conn, tenant, allocations)
    if source["status"] != kind.open_status:
        raise kind.not_open(source, "applied" if direction > 0 else "unapplied")
    applied = await settle(
        conn,
        tenant,
        source_type=kind.source_type,
        source=source,
        unapplied=unapplied(source),
        targets=targets,
        allocations=allocations,
        effective_date=request.effective_date or today(),
        direction=direction,
        resource=kind.resource,
    )
    applied_amount = source["applied_amount"] + applied.total
    assert ZERO <= applied_amount <= source["amount"] - source["refund_amount"], source["id"]
    row = await kind.save(conn, tenant, source, applied_amount=applied_amount)
    delta = moved(
        kind.source_type, source["account_id"], source["partner_account"], applied, -applied.total
    )
    await touch(conn, tenant, [delta])
    return kind.answer(row, source["account_number"])


async def refund(
    conn: AsyncConnection,
    tenant: Tenant,
    kind: SourceKind[Locked, Saved, Answer],
    key: str,
    request: CreateRefundRequest,
) -> RefundJson:
    """Refund (part of) the source's unapplied amount, recorded as External."""
    if request.type != "External":
        raise business_rule(kind.resource, kind.no_gateway)
    async with bounded_lock_wait(conn, tenant, kind.resource):
        source = await kind.lock(conn, tenant, key)
    if source["status"] != kind.open_status:
        raise kind.not_open(source, "refunded")
    amount = request.total_amount
    check_amount(amount, source["currency"], "totalAmount", kind.resource)
    remaining = unapplied(source)
    if amount > remaining:
        raise business_rule(kind.resource, kind.refund_exceeds(source, amount, remaining))
    (sequence,) = await next_numbers(conn, tenant, "refund_number", 1)
    row = (
        await conn.execute(
            insert(refunds)
            .values(
                tenant_id=tenant.id,
                id=new_id(),
                refund_number=document_number("R-", sequence),
                account_id=source["account_id"],
                source_type=kind.source_type,
                **{kind.refund_column: source["id"]},
                amount=amount,
                status=PaymentStatus.PROCESSED,
                type=request.type,
                method_type=request.method_type,
                refund_date=request.refund_date or today(),
                reason_code=request.reason_code,
                reference_id=request.reference_id,
                comment=request.comment,
            )
            .returning(*refunds.c)
        )
    ).one()
    await kind.save(conn, tenant, source, refund_amount=source["refund_amount"] + amount)
    nothing = Applied(ZERO, ZERO)
    await touch(
        conn,
        tenant,
        [
            moved(
                kind.source_type, source["account_id"], source["partner_account"], nothing, -amount
            )
        ],
    )
    return kind.refund_answer(refund_row(row), source)


def refund_row(row: Row[Any]) -> RefundRow:
    """A refund read with all its columns (`RETURNING` or `SELECT`), and perhaps more."""
    return cast(RefundRow, dict(row._mapping))


def refund_json(refund: RefundRow, source_fields: RefundSource) -> RefundJson:
    """A refund as Zuora answers it; `source_fields` name what it refunds, as the answer's own
    model names them (`RefundResponse` has a `paymentNumber`, `RefundCreditMemoResponse` not)."""
    return {
        "success": True,
        "id": refund["id"],
        "number": refund["refund_number"],
        "amount": refund["amount"],
        "status": refund["status"],
        "type": refund["type"],
        "methodType": refund["method_type"],
        **source_fields,
        "accountId": refund["account_id"],
        "refundDate": refund["refund_date"],
        "reasonCode": refund["reason_code"],
        "referenceId": refund["reference_id"],
        "comment": refund["comment"],
        "refundTransactionTime": v1_datetime(refund["created_at"]),
        "createdDate": v1_datetime(refund["created_at"]),
    }
