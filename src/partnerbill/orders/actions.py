"""Order actions on an existing subscription: one function per action type, and `amend`, which
dispatches an action to its function.

Each works in the order's transaction on a subscription the order has locked (all of them at
once when the order starts); an owner transfer locks the destination accounts for write
(through the order's state), in the order of `core/locking.py`. A subscription gets one new
version per order, before its first change. A cancelled subscription refuses every action but
an owner transfer.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.catalog.enums import PriceFormat, Tier
from partnerbill.catalog.tiers import tiers_from_json
from partnerbill.core.errors import Resource, business_rule, invalid_value
from partnerbill.core.input_policy import derived_date
from partnerbill.core.tenants import Tenant
from partnerbill.orders.schemas import OrderAction
from partnerbill.orders.state import OrderState, action_dates, catalog_plans, writable_account
from partnerbill.subscriptions import service as subs
from partnerbill.subscriptions.dates import ActionDates, add_term, checked_end
from partnerbill.subscriptions.schemas import Pricing
from partnerbill.subscriptions.segments import end_segments, last_segments, split_segment
from partnerbill.tables.subscriptions import (
    ChargeSegment,
    SubscriptionChanges,
    SubscriptionRow,
    SubscriptionStatus,
    rate_plans,
)

ORDER = Resource.ORDER


@dataclass(frozen=True, slots=True)
class _Change:
    """One order action on one subscription, with what every action function needs."""

    conn: AsyncConnection
    tenant: Tenant
    state: OrderState
    sub: SubscriptionRow
    action: OrderAction
    dates: ActionDates
    order_date: date
    where: str  # the action's place in the request, to name in an error


async def amend(
    conn: AsyncConnection,
    tenant: Tenant,
    state: OrderState,
    sub: SubscriptionRow,
    action: OrderAction,
    order_date: date,
    where: str,
) -> None:
    """Apply one order action to an existing subscription."""
    await _version(conn, tenant, state, sub)
    dates = action_dates(action, order_date)
    if sub["status"] == SubscriptionStatus.CANCELLED and action.type != "OwnerTransfer":
        raise business_rule(
            ORDER, f"Subscription {sub['subscription_number']} is cancelled; it cannot change."
        )
    await _ACTIONS[action.type](_Change(conn, tenant, state, sub, action, dates, order_date, where))


async def _version(
    conn: AsyncConnection, tenant: Tenant, state: OrderState, sub: SubscriptionRow
) -> None:
    """One new version per subscription per order."""
    if sub["id"] not in state.versioned:
        state.versioned.add(sub["id"])
        await subs.new_version(conn, tenant, sub)


async def add_product(change: _Change) -> None:
    assert change.action.add_product is not None
    plans = await catalog_plans(
        change.conn,
        change.tenant,
        change.state,
        [change.action.add_product],
        [f"{change.where}.addProduct"],
    )
    sub = change.sub
    invoice_owner = change.state.accounts_by_key[sub["invoice_owner_account_id"]]
    await subs.add_rate_plans(
        change.conn,
        change.tenant,
        sub["id"],
        plans,
        currency=sub["currency"],
        dates=change.dates,
        invoice_owner_bill_cycle_day=invoice_owner.bill_cycle_day,
        subscription_start=sub["contract_effective_date"],
        change_type="Add",
    )


async def update_product(change: _Change) -> None:
    product_update = change.action.update_product
    assert product_update is not None
    conn, tenant, where = change.conn, change.tenant, change.where
    on = product_update.specific_update_date or change.dates.contract_effective
    plan_id = await _rate_plan_id(
        conn,
        tenant,
        change.sub,
        [
            product_update.rate_plan_id,
            product_update.subscription_rate_plan_number,
            product_update.unique_token,
        ],
        f"{where}.updateProduct",
    )
    segments = {
        s["charge_number"]: s for s in await last_segments(conn, tenant, change.sub["id"], plan_id)
    }
    for i, charge_update in enumerate(product_update.charge_updates):
        segment = segments.get(charge_update.charge_number)
        if segment is None:
            raise invalid_value(
                ORDER,
                f"{where}.updateProduct.chargeUpdates[{i}].chargeNumber",
                f"'{charge_update.charge_number}' is not a charge of that rate plan.",
            )
        quantity, tiers = _updated_price(segment, charge_update.pricing)
        await split_segment(
            conn,
            tenant,
            segment,
            on,
            quantity=quantity,
            tiers=tiers,
            description=charge_update.description,
        )
    await _mark_plan(conn, tenant, plan_id, "Update")


async def remove_product(change: _Change) -> None:
    remove = change.action.remove_product
    assert remove is not None
    conn, tenant = change.conn, change.tenant
    effective = change.dates.contract_effective
    plan_id = await _rate_plan_id(
        conn,
        tenant,
        change.sub,
        [
            remove.rate_plan_id,
            remove.subscription_rate_plan_number,
            remove.unique_token,
            remove.product_rate_plan_id,
        ],
        f"{change.where}.removeProduct",
    )
    await end_segments(
        conn, tenant, await last_segments(conn, tenant, change.sub["id"], plan_id), effective
    )
    await _mark_plan(conn, tenant, plan_id, "Remove", removed_date=effective)


async def cancel_subscription(change: _Change) -> None:
    cancel = change.action.cancel_subscription
    assert cancel is not None
    sub = change.sub
    match cancel.cancellation_policy:
        case "EndOfCurrentTerm":
            if sub["term_end_date"] is None:
                raise business_rule(
                    ORDER, "An EVERGREEN subscription has no current term end; cancel on a date."
                )
            on = sub["term_end_date"]
        case "SpecificDate":
            if cancel.cancellation_effective_date is None:
                raise invalid_value(
                    ORDER,
                    f"{change.where}.cancellationEffectiveDate",
                    "is required for SpecificDate.",
                )
            on = cancel.cancellation_effective_date
        case _:  # EndOfLastInvoicePeriod
            through = [
                s["charged_through_date"]
                for s in await last_segments(change.conn, change.tenant, sub["id"])
                if s["charged_through_date"] is not None
            ]
            on = max(through) if through else sub["contract_effective_date"]
    if on < sub["contract_effective_date"]:
        raise business_rule(ORDER, "A subscription cannot be cancelled before it starts.")
    await subs.save(
        change.conn, change.tenant, sub, status=SubscriptionStatus.CANCELLED, cancelled_date=on
    )


async def suspend(change: _Change) -> None:
    request = change.action.suspend
    assert request is not None
    sub = change.sub
    if sub["status"] == SubscriptionStatus.SUSPENDED:
        raise business_rule(
            ORDER, f"Subscription {sub['subscription_number']} is already suspended."
        )
    on = _policy_date(
        request.suspend_policy,
        change.order_date,
        request.suspend_specific_date,
        request.suspend_periods,
        request.suspend_periods_type,
        change.order_date,
        f"{change.where}.suspend",
        "suspendSpecificDate",
        "suspendPeriods",
    )
    conn, tenant = change.conn, change.tenant
    await end_segments(conn, tenant, await last_segments(conn, tenant, sub["id"]), on)
    await subs.save(
        conn, tenant, sub, status=SubscriptionStatus.SUSPENDED, suspended_date=on, resume_date=None
    )


async def resume(change: _Change) -> None:
    request = change.action.resume
    assert request is not None
    conn, tenant, sub, where = change.conn, change.tenant, change.sub, change.where
    if sub["status"] != SubscriptionStatus.SUSPENDED:
        raise business_rule(ORDER, f"Subscription {sub['subscription_number']} is not suspended.")
    suspended = sub["suspended_date"]
    assert suspended is not None  # a suspension sets it
    on = _policy_date(
        request.resume_policy,
        change.order_date,
        request.resume_specific_date,
        request.resume_periods,
        request.resume_periods_type,
        suspended,
        f"{where}.resume",
        "resumeSpecificDate",
        "resumePeriods",
    )
    if on < suspended:
        raise business_rule(ORDER, "A subscription cannot resume before it was suspended.")
    for segment in await last_segments(conn, tenant, sub["id"]):
        if segment["effective_end_date"] == max(suspended, segment["effective_start_date"]):
            await split_segment(
                conn,
                tenant,
                {**segment, "effective_end_date": None},
                suspended,
                quantity=segment["quantity"],
                tiers=tiers_from_json(segment["tiers"]),
                start=on,
            )
    values: SubscriptionChanges = {"status": SubscriptionStatus.ACTIVE, "resume_date": on}
    if request.extends_term and sub["term_end_date"] is not None:
        values["term_end_date"] = derived_date(
            add_term(sub["term_end_date"], (on - suspended).days, "Day"),
            ORDER,
            f"{where}.resume.extendsTerm",
            "the extended term's end",
        )
    await subs.save(conn, tenant, sub, **values)


async def renew_subscription(change: _Change) -> None:
    sub = change.sub
    if sub["term_type"] != "TERMED" or sub["term_end_date"] is None:
        raise business_rule(ORDER, "Only a TERMED subscription can be renewed.")
    term = sub["renewal_term"] or sub["initial_term"]
    period_type = sub["renewal_term_period_type"] or sub["initial_term_period_type"]
    assert term is not None and period_type is not None  # a TERMED term has both
    new_end = checked_end(
        sub["term_end_date"],
        term,
        period_type,
        change.where,
        "the renewed term's end",
    )
    await subs.save(
        change.conn, change.tenant, sub, term_start_date=sub["term_end_date"], term_end_date=new_end
    )


async def terms_and_conditions(change: _Change) -> None:
    terms = change.action.terms_and_conditions
    assert terms is not None
    values: SubscriptionChanges = {}
    if terms.auto_renew is not None:
        values["auto_renew"] = terms.auto_renew
    if terms.renewal_setting is not None:
        values["renewal_setting"] = terms.renewal_setting
    if terms.invoice_separately is not None:
        values["invoice_separately"] = terms.invoice_separately
    if terms.renewal_terms:
        values["renewal_term"] = terms.renewal_terms[0].period
        values["renewal_term_period_type"] = terms.renewal_terms[0].period_type
    if terms.last_term is not None:
        last = terms.last_term
        start = last.start_date or change.sub["term_start_date"]
        values["term_type"] = last.term_type
        values["term_start_date"] = start
        if last.term_type == "TERMED":
            if last.period is None:
                raise invalid_value(ORDER, f"{change.where}.lastTerm.period", "is required.")
            values["initial_term"] = last.period
            values["initial_term_period_type"] = last.period_type
            values["term_end_date"] = checked_end(
                start,
                last.period,
                last.period_type,
                f"{change.where}.termsAndConditions.lastTerm.period",
                "the term's end",
            )
        else:
            values["term_end_date"] = None
    if values:
        await subs.save(change.conn, change.tenant, change.sub, **values)


async def owner_transfer(change: _Change) -> None:
    transfer = change.action.owner_transfer
    assert transfer is not None
    conn, tenant, state = change.conn, change.tenant, change.state
    values: SubscriptionChanges = {}
    if transfer.destination_account_number:
        owner = await writable_account(conn, tenant, state, transfer.destination_account_number)
        values["account_id"] = owner.id
    if transfer.destination_invoice_account_number:
        invoice_owner = await writable_account(
            conn, tenant, state, transfer.destination_invoice_account_number
        )
        if invoice_owner.currency != change.sub["currency"]:
            raise business_rule(
                ORDER, "The new invoice owner's currency differs from the subscription's."
            )
        values["invoice_owner_account_id"] = invoice_owner.id
    if not values:
        raise invalid_value(
            ORDER,
            f"{change.where}.ownerTransfer",
            "name a destination account or invoice account.",
        )
    await subs.save(conn, tenant, change.sub, **values)


_ACTIONS: dict[str, Callable[[_Change], Awaitable[None]]] = {
    "AddProduct": add_product,
    "UpdateProduct": update_product,
    "RemoveProduct": remove_product,
    "CancelSubscription": cancel_subscription,
    "Suspend": suspend,
    "Resume": resume,
    "RenewSubscription": renew_subscription,
    "TermsAndConditions": terms_and_conditions,
    "OwnerTransfer": owner_transfer,
}


async def _rate_plan_id(
    conn: AsyncConnection, tenant: Tenant, sub: SubscriptionRow, keys: list[str | None], where: str
) -> str:
    wanted = [k for k in keys if k]
    if not wanted:
        raise invalid_value(ORDER, f"{where}.ratePlanId", "name the rate plan to change.")
    row = await conn.scalar(
        select(rate_plans.c.id).where(
            rate_plans.c.tenant_id == tenant.id,
            rate_plans.c.subscription_id == sub["id"],
            rate_plans.c.last_change_type != "Remove",
            (rate_plans.c.id.in_(wanted))
            | (rate_plans.c.rate_plan_number.in_(wanted))
            | (rate_plans.c.unique_token.in_(wanted))
            | (rate_plans.c.product_rate_plan_id.in_(wanted)),
        )
    )
    if row is None:
        raise invalid_value(
            ORDER,
            f"{where}.ratePlanId",
            f"subscription {sub['subscription_number']} has no active rate plan {wanted[0]}.",
        )
    return str(row)


def _updated_price(
    segment: ChargeSegment, pricing: Pricing | None
) -> tuple[Decimal, tuple[Tier, ...]]:
    tiers = tiers_from_json(segment["tiers"])
    quantity: Decimal = segment["quantity"]
    chosen = pricing.chosen() if pricing is not None else None
    if chosen is None:
        return quantity, tiers
    if chosen.quantity is not None:
        quantity = chosen.quantity
    if chosen.tiers:
        tiers = tuple(
            Tier(
                t.tier or i + 1,
                t.starting_unit,
                t.ending_unit,
                t.price,
                PriceFormat.parse_field(t.price_format, "priceFormat", ORDER),
            )
            for i, t in enumerate(chosen.tiers)
        )
    elif chosen.list_price is not None:
        first = tiers[0]
        tiers = (
            Tier(1, first.starting_unit, first.ending_unit, chosen.list_price, first.price_format),
        )
    return quantity, tiers


async def _mark_plan(
    conn: AsyncConnection, tenant: Tenant, plan_id: str, change: str, **values: Any
) -> None:
    await conn.execute(
        update(rate_plans)
        .where(rate_plans.c.tenant_id == tenant.id, rate_plans.c.id == plan_id)
        .values(last_change_type=change, **values)
    )


def _policy_date(
    policy: str,
    order_date: date,
    specific: date | None,
    periods: int | None,
    kind: str | None,
    base: date,
    where: str,
    field: str,
    periods_field: str,
) -> date:
    match policy:
        case "Today":
            return order_date
        case "SpecificDate":
            if specific is None:
                raise invalid_value(ORDER, f"{where}.{field}", "is required for SpecificDate.")
            return specific
        case "SuspendDate":
            return base
        case _:  # FixedPeriodsFrom...
            if periods is None or kind is None:
                raise invalid_value(ORDER, f"{where}.periods", "give the periods and their type.")
            origin = order_date if policy.endswith("Today") else base
            return checked_end(origin, periods, kind, f"{where}.{periods_field}", "the date")
