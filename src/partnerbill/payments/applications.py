"""Applying a payment or a credit memo to invoices and debit memos, and unapplying it.

Rules a finance team relies on, each a clear error with nothing written:
- the target is Posted and in the source's currency, and belongs to the source's account (a
  document is settled by its own invoice owner's payments and credits);
- an application never takes a target below zero, nor the source beyond its unapplied amount;
- an unapplication never exceeds what the source has on that target.

Locks: the source `FOR UPDATE` first, then the targets in id order; never an account row beyond
the `FOR KEY SHARE` every document write takes. A transaction holds at most one source and never
waits for a source while holding a target, so no two requests deadlock; two requests applying to
one invoice at once queue on that invoice and the second sees the first's balance. A source is
read (which applications to reverse, how much is unapplied) only after it is locked.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.billing.tables import invoices
from partnerbill.core.errors import (
    Resource,
    business_rule,
    invalid_value,
    missing_field,
    not_found,
)
from partnerbill.core.ids import new_id
from partnerbill.core.locks import execute_locking
from partnerbill.core.money import ZERO, amount_problem
from partnerbill.core.tenants import Tenant
from partnerbill.memos.tables import debit_memos
from partnerbill.payments.tables import applications

TargetType = Literal["Invoice", "DebitMemo"]
SourceType = Literal["Payment", "CreditMemo"]
MAX_APPLICATIONS_PER_REQUEST = 1000

_TARGETS: dict[str, tuple[Table, str, str]] = {
    # type → (table, number column, name in messages)
    "Invoice": (invoices, "invoice_number", "invoice"),
    "DebitMemo": (debit_memos, "memo_number", "debit memo"),
}


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


def unapplied(source: Mapping[Any, Any]) -> Decimal:
    """What a payment or credit memo has left to apply or refund."""
    return Decimal(source["amount"] - source["applied_amount"] - source["refund_amount"])


def check_amount(amount: Decimal, currency: str, where: str, resource: Resource) -> None:
    if amount <= 0:
        raise invalid_value(resource, where, "must be greater than 0.")
    if problem := amount_problem(amount, currency):
        raise invalid_value(resource, where, problem)


async def lock_targets(
    conn: AsyncConnection, tenant: Tenant, allocations: Sequence[Allocation]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The targets, each locked `FOR UPDATE`, in id order (after the source, if any)."""
    if len(allocations) > MAX_APPLICATIONS_PER_REQUEST:
        raise invalid_value(
            Resource.GENERIC,
            "invoices",
            f"at most {MAX_APPLICATIONS_PER_REQUEST} applications per request.",
        )
    # One statement per document type, invoices first, each locking in id order: every request
    # locks targets in the same (type, id) order, so two of them never wait on each other.
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for target_type, (table, number, _) in _TARGETS.items():
        keys = [a.key for a in allocations if a.target_type == target_type]
        if not keys:
            continue
        rows = await execute_locking(
            conn,
            tenant,
            select(table)
            .where(
                table.c.tenant_id == tenant.id,
                table.c.id.in_(keys) | table.c[number].in_(keys),
            )
            .order_by(table.c.id)
            .with_for_update(),
            resource=Resource.INVOICE if target_type == "Invoice" else Resource.DEBIT_MEMO,
        )
        for row in rows:
            target = {**row._mapping, "type": target_type, "number": row._mapping[number]}
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
    source: Mapping[str, Any],
    unapplied: Decimal,
    targets: Mapping[tuple[str, str], dict[str, Any]],
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
        if target["status"] != "Posted":
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
    by_type: dict[str, Decimal] = {"Invoice": ZERO, "DebitMemo": ZERO}
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
    invoices_requested: Sequence[Any], debit_memos_requested: Sequence[Any]
) -> list[Allocation]:
    """The allocations of an apply/unapply/create request (`invoices[]`, `debitMemos[]`)."""
    found: list[Allocation] = []
    for i, item in enumerate(invoices_requested):
        key = item.invoice_id or item.invoice_number
        if key is None:
            raise missing_field(Resource.GENERIC, f"invoices[{i}].invoiceId")
        found.append(Allocation("Invoice", key, item.amount, f"invoices[{i}].amount"))
    for i, item in enumerate(debit_memos_requested):
        key = item.debit_memo_id or item.debit_memo_number
        if key is None:
            raise missing_field(Resource.GENERIC, f"debitMemos[{i}].debitMemoId")
        found.append(Allocation("DebitMemo", key, item.amount, f"debitMemos[{i}].amount"))
    return found
