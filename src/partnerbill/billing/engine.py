"""Billing subscriptions: the invoice lines a target date makes due, on each subscription's
invoice owner's invoice. Bill runs and an order's `runBilling` both bill through `bill`.

- One invoice per invoice owner per call (per subscription when `invoiceSeparately`).
- A period is never billed twice: each charge segment's `charged_through_date` records how far it
  is billed. A segment that was cut (cancellation, update, removal, suspension) after being billed
  beyond its new end gets negative lines for the billed part it no longer covers.
- Bounded memory: subscriptions arrive in batches (at most `BATCH_SUBSCRIPTIONS` each); lines are
  inserted batch by batch (with the segments' charged-through dates, in one statement) and only
  running totals stay in memory.
- Locks: each batch's subscriptions `FOR UPDATE` in id order, then the invoice owners it opens
  invoices for `FOR KEY SHARE` (the order of `core/locking.py`).
- A bill run loses only what it cannot bill: each batch is billed in a savepoint; a batch that
  fails is billed again a subscription at a time, and the subscriptions that still fail are
  rolled back alone and reported (`errors`).
"""

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypedDict

import structlog
from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.accounts.schemas import payment_term_days
from partnerbill.accounts.service import WritableAccount, lock_many_for_write
from partnerbill.billing.periods import (
    billable_periods,
    from_day,
    prorated_amount,
    service_periods,
)
from partnerbill.catalog.enums import BillingPeriod, BillingTiming, ChargeModel, ChargeType
from partnerbill.catalog.pricing import period_amount
from partnerbill.catalog.tiers import tiers_from_json
from partnerbill.core.errors import Resource, ZuoraError
from partnerbill.core.ids import new_id
from partnerbill.core.input_policy import FIRST_DATE, LAST_DATE
from partnerbill.core.json import dumps
from partnerbill.core.locking import lock_rows_in_id_order
from partnerbill.core.locks import bounded_lock_wait
from partnerbill.core.money import ZERO
from partnerbill.core.recordsets import execute_values, insert_rows, recordset, rows_json
from partnerbill.core.tenants import Tenant, document_number, next_numbers
from partnerbill.metrics.service import MetricsDelta, touch
from partnerbill.settings import get_settings
from partnerbill.subscriptions.dates import add_term
from partnerbill.tables.billing import DocumentStatus, invoice_items, invoices
from partnerbill.tables.subscriptions import rate_plan_charges, subscriptions

log = structlog.get_logger(__name__)

BATCH_SUBSCRIPTIONS = 500
# Terms are at least a day and lie in the input range: no subscription renews more often.
MAX_AUTO_RENEWALS = (LAST_DATE - FIRST_DATE).days + 1
ONE_DAY = timedelta(days=1)


@dataclass(slots=True)
class _Invoice:
    """An invoice being built: its header is inserted, its lines are added batch by batch."""

    id: str
    number: str
    account: WritableAccount
    invoice_date: date
    amount: Decimal = ZERO
    lines: int = 0


@dataclass(frozen=True, slots=True)
class BilledInvoice:
    id: str
    invoice_number: str
    account_id: str
    amount: Decimal


class InvoiceLine(TypedDict):
    """An invoice line a segment makes due, before it is placed on its invoice."""

    id: str
    charge_name: str
    sku: None
    uom: str | None
    product_rate_plan_charge_id: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    balance: Decimal
    service_start_date: date
    service_end_date: date
    subscription_id: str
    rate_plan_charge_id: str
    charge_number: str
    charge_type: str
    description: None
    charge_date: None
    tax_code: None
    tax_mode: None
    custom_fields: dict[str, object]


class PlacedLine(InvoiceLine):
    """A line on its invoice, in the invoice's line order."""

    invoice_id: str
    line_number: int


def _line(
    sub: Mapping[str, Any],
    segment: Mapping[Any, Any],
    start: date,
    end: date,
    amount: Decimal,
    unit_price: Decimal,
) -> InvoiceLine:
    return {
        "id": new_id(),
        "charge_name": segment["name"],
        "sku": None,
        "uom": segment["uom"],
        "product_rate_plan_charge_id": segment["product_rate_plan_charge_id"],
        "quantity": segment["quantity"],
        "unit_price": unit_price,
        "amount": amount,
        "balance": amount,
        "service_start_date": start,
        "service_end_date": end,
        "subscription_id": sub["id"],
        "rate_plan_charge_id": segment["id"],
        "charge_number": segment["charge_number"],
        "charge_type": segment["charge_type"],
        "description": None,
        "charge_date": None,
        "tax_code": None,
        "tax_mode": None,
        "custom_fields": {},
    }


def _service_end(sub: Mapping[str, Any], segment: Mapping[Any, Any]) -> date | None:
    """Where the segment's service ends (exclusive): its own end, the cancellation, or the end of
    a term that does not renew."""
    ends = [segment["effective_end_date"], sub["cancelled_date"]]
    if sub["term_type"] == "TERMED" and not sub["auto_renew"]:
        ends.append(sub["term_end_date"])
    known = [e for e in ends if e is not None]
    return min(known) if known else None


def segment_lines(
    sub: Mapping[str, Any], segment: Mapping[Any, Any], target_date: date
) -> tuple[list[InvoiceLine], date | None]:
    """The lines due for one segment and its new charged-through date."""
    tiers = tiers_from_json(segment["tiers"])
    model = ChargeModel(segment["charge_model"])
    amount = period_amount(model, segment["quantity"], tiers)
    unit_price = tiers[0].price
    currency = sub["currency"]
    charged_through: date | None = segment["charged_through_date"]
    start: date = segment["effective_start_date"]
    end = _service_end(sub, segment)
    if segment["charge_type"] == ChargeType.ONE_TIME.value:
        if charged_through is None and start <= target_date and (end is None or start < end):
            rounded = prorated_amount(amount, Decimal(1), currency)
            return [_line(sub, segment, start, start, rounded, unit_price)], start + ONE_DAY
        return [], charged_through
    period = BillingPeriod(segment["billing_period"])
    months = segment["specific_billing_period"]
    cycle_day = segment["bill_cycle_day"]
    lines: list[InvoiceLine] = []
    if charged_through is not None and end is not None and charged_through > end:
        # Credit the billed periods (as they were billed) from the new end on.
        previously = service_periods(
            start, charged_through, period, months, cycle_day, charged_through
        )
        for billed_period in previously:
            if billed_period.end < end:
                continue
            credit = from_day(billed_period, max(billed_period.start, end))
            credited = -prorated_amount(amount, credit.proration, currency)
            lines.append(_line(sub, segment, credit.start, credit.end, credited, unit_price))
        charged_through = end
    due = billable_periods(
        service_periods(start, end, period, months, cycle_day, target_date + ONE_DAY),
        BillingTiming(segment["billing_timing"]),
        target_date,
        charged_through,
    )
    for p in due:
        billed = prorated_amount(amount, p.proration, currency)
        lines.append(_line(sub, segment, p.start, p.end, billed, unit_price))
    if due:
        charged_through = due[-1].end + ONE_DAY
    return lines, charged_through


# The renewed terms of a batch in one statement.
_RENEW_TERMS = text(
    "UPDATE subscriptions s SET term_start_date = v.term_start_date, "
    "term_end_date = v.term_end_date "
    "FROM jsonb_to_recordset(CAST(:renewed AS jsonb)) "
    "AS v(id text, term_start_date date, term_end_date date) "
    "WHERE s.tenant_id = :tenant_id AND s.id = v.id"
)


async def _renew_due_terms(
    conn: AsyncConnection, tenant: Tenant, subs: list[dict[str, Any]], target_date: date
) -> None:
    """An auto-renewing term that ends by the target date renews (Zuora renews at term end)."""
    renewed = []
    for sub in subs:
        if sub["term_type"] != "TERMED" or not sub["auto_renew"] or sub["cancelled_date"]:
            continue
        renewals = 0
        while sub["term_end_date"] <= target_date:
            assert renewals < MAX_AUTO_RENEWALS, sub["id"]
            renewals += 1
            sub["term_start_date"] = sub["term_end_date"]
            sub["term_end_date"] = add_term(
                sub["term_end_date"],
                sub["renewal_term"] or sub["initial_term"],
                sub["renewal_term_period_type"] or sub["initial_term_period_type"],
            )
        if renewals:
            renewed.append(
                {
                    "id": sub["id"],
                    "term_start_date": sub["term_start_date"],
                    "term_end_date": sub["term_end_date"],
                }
            )
    if renewed:
        await conn.execute(
            _RENEW_TERMS, {"tenant_id": tenant.id, "renewed": dumps(renewed).decode()}
        )


@dataclass(frozen=True, slots=True)
class BillingError:
    """A subscription the run could not bill, and why."""

    subscription_id: str
    error: Exception


# The owners locked and each open invoice's (amount, lines) at a savepoint.
_Mark = tuple[set[str], dict[tuple[str, str | None], tuple[Decimal, int]]]


@dataclass(frozen=True, slots=True)
class _BatchContext:
    """What every batch of one `bill` call is billed with."""

    tenant: Tenant
    target_date: date
    invoice_date: date
    now: datetime
    bill_run_id: str | None
    excluded_types: set[str]


@dataclass(slots=True)
class _Billing:
    """What one `bill` call has built so far: the owners it locked and the invoices it opened."""

    owners: dict[str, WritableAccount] = field(default_factory=dict)
    open_invoices: dict[tuple[str, str | None], _Invoice] = field(default_factory=dict)

    def mark(self) -> _Mark:
        return set(self.owners), {k: (i.amount, i.lines) for k, i in self.open_invoices.items()}

    def roll_back_to(self, mark: _Mark) -> None:
        """Forget what was built since `mark`: its savepoint was rolled back."""
        owners, totals = mark
        for owner in set(self.owners) - owners:
            del self.owners[owner]
        for key in set(self.open_invoices) - totals.keys():
            del self.open_invoices[key]
        for key, (amount, lines) in totals.items():
            self.open_invoices[key].amount = amount
            self.open_invoices[key].lines = lines


async def bill(
    conn: AsyncConnection,
    tenant: Tenant,
    batches: AsyncIterator[list[str]],
    *,
    target_date: date,
    invoice_date: date,
    post: bool,
    excluded: Iterable[ChargeType] = (),
    bill_run_id: str | None = None,
    deltas: list[MetricsDelta] | None = None,
    errors: list[BillingError] | None = None,
) -> list[BilledInvoice]:
    """Bill the subscriptions whose ids `batches` yields, up to `target_date`.

    Posted invoices are reported to their owners through `touch`, or appended to `deltas` when
    given, for a caller that reports its own changes in the same `touch` (one lock order).

    `errors` given (a bill run): a subscription that cannot be billed, whatever the reason (bad
    stored data, a lock wait past the bound), is rolled back alone (a savepoint), appended to
    `errors`, and the others are billed. Not given (an order's `runBilling`): the first error
    raises, and the caller's transaction fails whole."""
    billing = _Billing()
    now = datetime.now(UTC)
    context = _BatchContext(
        tenant, target_date, invoice_date, now, bill_run_id, {t.value for t in excluded}
    )
    async for batch in batches:
        assert len(batch) <= BATCH_SUBSCRIPTIONS, len(batch)
        if errors is None:
            await _bill_batch(conn, context, billing, batch)
        elif await _bill_in_savepoint(conn, context, billing, batch) is not None:
            # Which of them cannot be billed? Each alone; the others join their owner's invoice.
            for subscription_id in batch:
                error = await _bill_in_savepoint(conn, context, billing, [subscription_id])
                if error is not None:
                    errors.append(BillingError(subscription_id, error))
    return await _finish(conn, tenant, list(billing.open_invoices.values()), post, deltas)


async def _bill_in_savepoint(
    conn: AsyncConnection, context: _BatchContext, billing: _Billing, batch: list[str]
) -> Exception | None:
    """Bill `batch` in a savepoint; the error it was rolled back for, if it was."""
    mark = billing.mark()
    try:
        async with conn.begin_nested():
            await _bill_batch(conn, context, billing, batch)
    except Exception as error:  # bad data can fail in Python or in the database alike
        billing.roll_back_to(mark)
        if not isinstance(error, ZuoraError):
            log.warning(
                "subscription_not_billed",
                tenant_id=context.tenant.id,
                subscriptions=len(batch),
                exc_info=error,
            )
        return error
    return None


async def _bill_batch(
    conn: AsyncConnection, context: _BatchContext, billing: _Billing, batch: list[str]
) -> None:
    tenant, target_date = context.tenant, context.target_date
    subs = [
        dict(r._mapping)
        for r in await lock_rows_in_id_order(
            conn, tenant, subscriptions, subscriptions.c.id.in_(batch), Resource.SUBSCRIPTION
        )
    ]
    await _renew_due_terms(conn, tenant, subs, target_date)
    by_id = {sub["id"]: sub for sub in subs}
    segments = await conn.execute(
        select(rate_plan_charges)
        .where(
            rate_plan_charges.c.tenant_id == tenant.id,
            rate_plan_charges.c.subscription_id.in_(batch),
        )
        .order_by(
            rate_plan_charges.c.subscription_id,
            rate_plan_charges.c.charge_number,
            rate_plan_charges.c.segment,
        )
    )
    batch_lines: dict[tuple[str, str | None], list[InvoiceLine]] = {}
    charged_through: list[dict[str, object]] = []
    for row in segments:
        segment = row._mapping
        if segment["charge_type"] in context.excluded_types:
            continue
        sub = by_id[segment["subscription_id"]]
        lines, through = segment_lines(sub, segment, target_date)
        if not lines:
            continue
        key = (
            sub["invoice_owner_account_id"],
            sub["id"] if sub["invoice_separately"] else None,
        )
        batch_lines.setdefault(key, []).extend(lines)
        charged_through.append({"id": segment["id"], "charged_through_date": through})
    await _open_invoices(conn, context, batch_lines, billing)
    items: list[PlacedLine] = []
    for key, lines in batch_lines.items():
        invoice = billing.open_invoices[key]
        for line in lines:
            invoice.lines += 1
            invoice.amount += line["amount"]
            items.append({**line, "invoice_id": invoice.id, "line_number": invoice.lines})
    if items and get_settings().distributed:
        # The items as VALUES, which Citus routes to the tenant's shard; the update from a JSON
        # recordset has no insert to collect, so it is routed as it is.
        await execute_values(conn, invoice_items, tenant.id, items)
        await conn.execute(
            _WRITE_CHARGED_THROUGH,
            {
                "tenant_id": tenant.id,
                "charged_through": rows_json(charged_through, _CHARGED_THROUGH_COLUMNS),
            },
        )
    elif items:
        await conn.execute(
            _WRITE_LINES,
            {
                "tenant_id": tenant.id,
                "items": rows_json(items, _ITEM_COLUMNS),
                "charged_through": rows_json(charged_through, _CHARGED_THROUGH_COLUMNS),
            },
        )


_ITEM_COLUMNS = tuple(c.name for c in invoice_items.c if c.name != "tenant_id")
_CHARGED_THROUGH_COLUMNS = ("id", "charged_through_date")
# A batch's invoice lines and its segments' new charged-through dates in one statement: one
# round trip, however many lines.
_CHARGED_THROUGH = (
    "UPDATE rate_plan_charges c SET charged_through_date = v.charged_through_date "
    f"FROM {recordset(rate_plan_charges, 'charged_through', _CHARGED_THROUGH_COLUMNS)} "
    "WHERE c.tenant_id = :tenant_id AND c.id = v.id"
)
_WRITE_LINES = text(
    f"WITH new_items AS ({insert_rows(invoice_items, 'items', _ITEM_COLUMNS)}) " + _CHARGED_THROUGH
)
_WRITE_CHARGED_THROUGH = text(_CHARGED_THROUGH)


async def _open_invoices(
    conn: AsyncConnection,
    context: _BatchContext,
    batch_lines: Mapping[tuple[str, str | None], list[InvoiceLine]],
    billing: _Billing,
) -> None:
    """Insert a Draft header for each invoice this batch needs and no earlier batch opened."""
    tenant, invoice_date, now = context.tenant, context.invoice_date, context.now
    bill_run_id, target_date = context.bill_run_id, context.target_date
    open_invoices, owners = billing.open_invoices, billing.owners
    new_keys = sorted(
        (k for k in batch_lines if k not in open_invoices), key=lambda k: (k[0], k[1] or "")
    )
    if not new_keys:
        return
    async with bounded_lock_wait(conn, tenant, Resource.SUBSCRIPTION):
        owners.update(
            await lock_many_for_write(
                conn, tenant, {owner for owner, _ in new_keys} - owners.keys()
            )
        )
    numbers = await next_numbers(conn, tenant, "invoice_number", len(new_keys))
    rows = []
    for key, number in zip(new_keys, numbers, strict=True):
        account = owners[key[0]]
        invoice = _Invoice(new_id(), document_number("INV", number), account, invoice_date)
        open_invoices[key] = invoice
        rows.append(
            {
                "tenant_id": tenant.id,
                "id": invoice.id,
                "invoice_number": invoice.number,
                "account_id": account.id,
                "status": DocumentStatus.DRAFT,
                "source_type": "Subscription",
                "currency": account.currency,
                "invoice_date": invoice_date,
                "due_date": invoice_date + timedelta(days=payment_term_days(account.payment_term)),
                "payment_term": account.payment_term,
                "amount": ZERO,
                "balance": ZERO,
                "bill_run_id": bill_run_id,
                "target_date": target_date,
                "created_at": now,
                "updated_at": now,
            }
        )
    await conn.execute(insert(invoices), rows)


async def _finish(
    conn: AsyncConnection,
    tenant: Tenant,
    built: list[_Invoice],
    post: bool,
    deltas: list[MetricsDelta] | None,
) -> list[BilledInvoice]:
    """Write each invoice's total; post them (and report to their owners) when asked."""
    if not built:
        return []
    status = DocumentStatus.POSTED if post else DocumentStatus.DRAFT
    await conn.execute(
        update(invoices)
        .where(invoices.c.tenant_id == tenant.id, invoices.c.id == bindparam("invoice_id"))
        .values(
            amount=bindparam("total"),
            balance=bindparam("total"),
            status=status,
            posted_date=datetime.now(UTC) if post else None,
        ),
        [{"invoice_id": i.id, "total": i.amount} for i in built],
    )
    if post:
        posted = [
            MetricsDelta(
                account_id=i.account.id,
                partner_account=i.account.partner_account,
                total_invoice_balance=i.amount,
                posted_invoice_date=i.invoice_date,
            )
            for i in built
        ]
        if deltas is None:
            await touch(conn, tenant, posted)
        else:
            deltas.extend(posted)
    return [BilledInvoice(i.id, i.number, i.account.id, i.amount) for i in built]


async def subscription_batches(ids: list[str]) -> AsyncIterator[list[str]]:
    """The given subscriptions, in batches."""
    for start in range(0, len(ids), BATCH_SUBSCRIPTIONS):
        yield ids[start : start + BATCH_SUBSCRIPTIONS]
