"""Subscriptions: creation from catalog rate plans, amendments, contractedMrr, and reads.

Every function here works inside the caller's transaction on a subscription the caller has locked
(`lock_subscription`, `FOR UPDATE`: the subscription is a document; no account row is locked
beyond the `FOR KEY SHARE` every document write takes). Orders, the legacy subscribe and the
legacy amendment endpoints are all built from these. A subscription being created needs no lock:
no other transaction sees it before the creating one commits. Those of one order are inserted
together (`NewSubscriptions`: a few statements whatever their number).

contractedMrr (API doc §4.2): a recurring charge's MRR is its period price normalised to a month,
stored on each segment. A subscription's figure is the sum over the last segments still open at
the subscription's end; the account's is the sum over the subscriptions it owns that are not
cancelled, so a future-dated cancellation already counts 0 there.
"""

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ARRAY, String, bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.accounts.service import WritableAccount
from partnerbill.accounts.tables import accounts
from partnerbill.catalog.enums import (
    BillCycleType,
    BillingPeriod,
    BillingTiming,
    ChargeModel,
    ChargeType,
    EndDateCondition,
    PriceFormat,
    Tier,
    TriggerEvent,
    UpToPeriodsType,
)
from partnerbill.catalog.pricing import monthly_amount, period_amount
from partnerbill.catalog.validation import tier_ladder
from partnerbill.catalog.views import CatalogCharge, CatalogRatePlan
from partnerbill.core.errors import (
    Resource,
    business_rule,
    invalid_value,
    missing_field,
    not_found,
)
from partnerbill.core.ids import new_id
from partnerbill.core.input_policy import derived_date
from partnerbill.core.json import v1_datetime
from partnerbill.core.locks import execute_locking
from partnerbill.core.money import MAX_ABS_AMOUNT, ZERO, amount_problem, trimmed
from partnerbill.core.recordsets import insert_rows, rows_json
from partnerbill.core.tenants import MAX_NUMBERS_PER_CALL, Tenant, next_numbers_of
from partnerbill.orders.schemas import (
    MAX_RATE_PLANS_PER_SUBSCRIPTION,
    ChargeOverride,
    PriceTier,
    RatePlanSubscription,
)
from partnerbill.subscriptions.tables import (
    rate_plan_charges,
    rate_plans,
    subscription_versions,
    subscriptions,
)

SUBSCRIPTION = Resource.SUBSCRIPTION
# Subscriptions one insert writes at most (Zuora's bound on one order): an asynchronous order of
# thousands is inserted in statements of bounded size.
SUBSCRIPTIONS_PER_INSERT = 50
DAYS_PER_WEEK = 7
END = "the charge's end"


@dataclass(frozen=True, slots=True)
class ActionDates:
    """The trigger dates of an order action (Zuora's three, defaulting to contract effective)."""

    contract_effective: date
    service_activation: date
    customer_acceptance: date


def add_term(start: date, period: int, period_type: str) -> date:
    """`start` plus a term of `period` `period_type`s (Day, Week, Month, Year).

    Saturates at the calendar's ends instead of overflowing, so a read of any stored row can
    compute; a write refuses a result outside the input range with `checked_end`.
    """
    match period_type:
        case "Day" | "Week":
            days = period * (DAYS_PER_WEEK if period_type == "Week" else 1)
            if days > (date.max - start).days:
                return date.max
            if -days > (start - date.min).days:
                return date.min
            return start + timedelta(days=days)
        case "Month" | "Year":
            months = period * (12 if period_type == "Year" else 1)
            year, month_index = divmod(start.year * 12 + start.month - 1 + months, 12)
            if year > date.max.year:
                return date.max
            if year < date.min.year:
                return date.min
            last_day = calendar.monthrange(year, month_index + 1)[1]
            return date(year, month_index + 1, min(start.day, last_day))
    raise AssertionError(period_type)


def checked_end(start: date, period: int, period_type: str, field: str, what: str) -> date:
    """A term end (or any date `period`s after `start`) a write stores: in the input range, or
    the request is refused naming `field`."""
    return derived_date(add_term(start, period, period_type), SUBSCRIPTION, field, what)


def _tiers_json(tiers: Sequence[Tier]) -> list[dict[str, Any]]:
    return [
        {
            "tier": t.tier,
            "startingUnit": str(t.starting_unit),
            "endingUnit": None if t.ending_unit is None else str(t.ending_unit),
            "price": str(t.price),
            "priceFormat": t.price_format.value,
        }
        for t in tiers
    ]


def tiers_from_json(raw: Sequence[Mapping[str, Any]]) -> tuple[Tier, ...]:
    return tuple(
        Tier(
            tier=int(t["tier"]),
            starting_unit=Decimal(t["startingUnit"]),
            ending_unit=None if t["endingUnit"] is None else Decimal(t["endingUnit"]),
            price=Decimal(t["price"]),
            price_format=PriceFormat(t["priceFormat"]),
        )
        for t in raw
    )


def _override_tier_field(index: int | None, name: str) -> str:
    return "tiers" if index is None else f"tiers[{index}].{name[0].lower()}{name[1:]}"


def _override_tiers(
    charge: CatalogCharge,
    base: tuple[Tier, ...],
    price: Decimal | None,
    tiers: list[PriceTier],
    currency: str,
) -> tuple[Tier, ...]:
    if tiers:
        # Checked as the catalog checks its own tiers: contiguous, priced within the currency.
        return tier_ladder(currency, list(enumerate(tiers)), SUBSCRIPTION, _override_tier_field)
    if price is not None:
        if charge.charge_model in (ChargeModel.TIERED, ChargeModel.VOLUME):
            raise invalid_value(
                SUBSCRIPTION, "listPrice", f"charge '{charge.name}' is priced by tiers; give tiers."
            )
        first = base[0]
        return (Tier(1, first.starting_unit, first.ending_unit, price, first.price_format),)
    return base


@dataclass(frozen=True, slots=True)
class PricedCharge:
    """A charge's price for a subscription: quantity and tiers after overrides."""

    quantity: Decimal
    tiers: tuple[Tier, ...]


def priced_period(model: ChargeModel, quantity: Decimal, tiers: Sequence[Tier]) -> Decimal:
    """One billing period's price. Refused: a tiered or volume quantity above the last tier's
    ending unit (no price covers it), and a price beyond what an amount may be (price and
    quantity are each bounded, their product must be too)."""
    top = tiers[-1].ending_unit
    if model in (ChargeModel.TIERED, ChargeModel.VOLUME) and top is not None and quantity > top:
        raise invalid_value(
            SUBSCRIPTION, "quantity", f"{quantity} is above the last tier's ending unit ({top})."
        )
    amount = period_amount(model, quantity, tiers)
    if abs(amount) >= MAX_ABS_AMOUNT:
        raise invalid_value(
            SUBSCRIPTION,
            "quantity",
            f"the charge would come to {amount:f} per period; an amount is less than "
            f"{MAX_ABS_AMOUNT:f}.",
        )
    return amount


def price_charge(
    charge: CatalogCharge, override: ChargeOverride | None, currency: str
) -> PricedCharge:
    base = charge.tiers_for(currency)
    quantity = charge.default_quantity if charge.default_quantity is not None else Decimal(1)
    price: Decimal | None = None
    tiers: list[PriceTier] = []
    if override is not None:
        chosen = override.pricing.chosen() if override.pricing else None
        if chosen is not None:
            quantity = chosen.quantity if chosen.quantity is not None else quantity
            price, tiers = chosen.list_price, chosen.tiers or []
        quantity = override.quantity if override.quantity is not None else quantity
        price = override.price if override.price is not None else price
        tiers = override.tiers or tiers
    if price is not None and (problem := amount_problem(price, currency)):
        raise invalid_value(SUBSCRIPTION, "listPrice", problem)
    return PricedCharge(quantity, _override_tiers(charge, base, price, tiers, currency))


def _charge_start(
    charge: CatalogCharge, override: ChargeOverride | None, dates: ActionDates
) -> tuple[TriggerEvent, date]:
    """The charge's trigger event (the override's, else the catalog's) and the date it gives."""
    trigger = charge.trigger_event
    specific: date | None = None
    if override is not None:
        start = override.start_date
        event = (start.trigger_event if start else None) or override.trigger_event
        if event is not None:
            trigger = TriggerEvent.parse_field(event, "triggerEvent", SUBSCRIPTION)
        specific = (start.specific_trigger_date if start else None) or override.trigger_date
    match trigger:
        case TriggerEvent.CONTRACT_EFFECTIVE:
            return trigger, dates.contract_effective
        case TriggerEvent.SERVICE_ACTIVATION:
            return trigger, dates.service_activation
        case TriggerEvent.CUSTOMER_ACCEPTANCE:
            return trigger, dates.customer_acceptance
        case TriggerEvent.SPECIFIC_DATE:
            if specific is None:
                raise invalid_value(
                    SUBSCRIPTION, "specificTriggerDate", "is required for a SpecificDate trigger."
                )
            return trigger, specific
    raise AssertionError(trigger)


def _charge_end(
    charge: CatalogCharge,
    override: ChargeOverride | None,
    start: date,
    billing_period: BillingPeriod | None,
    specific_months: int | None,
) -> tuple[EndDateCondition, date | None]:
    condition = charge.end_date_condition
    periods, periods_type = charge.up_to_periods, charge.up_to_periods_type
    specific_end: date | None = None
    if override is not None:
        end = override.end_date
        text = (end.end_date_condition if end else None) or override.end_date_condition
        if text is not None:
            condition = EndDateCondition.parse_field(text, "endDateCondition", SUBSCRIPTION)
        periods = (end.up_to_periods if end else None) or override.up_to_periods or periods
        periods_type = (end.up_to_periods_type if end else None) or periods_type
        specific_end = end.specific_end_date if end else None
    match condition:
        case EndDateCondition.SUBSCRIPTION_END | EndDateCondition.ONE_TIME:
            return condition, None
        case EndDateCondition.SPECIFIC_END_DATE:
            if specific_end is None or specific_end <= start:
                raise invalid_value(
                    SUBSCRIPTION, "specificEndDate", "is required and must be after the start."
                )
            return condition, specific_end
        case EndDateCondition.FIXED_PERIOD:
            if periods is None:
                raise invalid_value(SUBSCRIPTION, "upToPeriods", "is required for Fixed_Period.")
            kind = UpToPeriodsType.parse_field(
                periods_type or "Billing_Periods", "upToPeriodsType", SUBSCRIPTION
            )
            if kind is UpToPeriodsType.BILLING_PERIODS:
                assert billing_period is not None
                months = billing_period.months(specific_months)
                if months is None:
                    return condition, checked_end(start, periods, "Week", "upToPeriods", END)
                return condition, checked_end(start, periods * months, "Month", "upToPeriods", END)
            return condition, checked_end(
                start, periods, kind.value.removesuffix("s"), "upToPeriods", END
            )
    raise AssertionError(condition)


def charge_values(
    *,
    subscription_id: str,
    rate_plan_id: str,
    charge: CatalogCharge,
    override: ChargeOverride | None,
    currency: str,
    dates: ActionDates,
    invoice_owner_bill_cycle_day: int,
    subscription_start: date,
) -> dict[str, Any]:
    """The first segment of a charge subscribed to (numbered by its insert)."""
    if charge.charge_type is ChargeType.USAGE:
        raise business_rule(
            SUBSCRIPTION,
            f"Charge '{charge.name}' is a Usage charge; subscribing to usage is not supported yet.",
        )
    billing = override.billing if override else None
    billing_period = charge.billing_period
    specific_months = charge.specific_billing_period
    timing = charge.billing_timing
    period_text = (billing.billing_period if billing else None) or (
        override.billing_period if override else None
    )
    if period_text is not None:
        billing_period = BillingPeriod.parse_field(period_text, "billingPeriod", SUBSCRIPTION)
    if billing and billing.specific_billing_period:
        specific_months = billing.specific_billing_period
    timing_text = (billing.billing_timing if billing else None) or (
        override.billing_timing if override else None
    )
    if billing_period is BillingPeriod.SPECIFIC_MONTHS and not specific_months:
        raise missing_field(SUBSCRIPTION, "specificBillingPeriod")
    if timing_text is not None:
        timing = BillingTiming.parse_field(timing_text, "billingTiming", SUBSCRIPTION)
    priced = price_charge(charge, override, currency)
    trigger, start = _charge_start(charge, override, dates)
    condition, end = _charge_end(charge, override, start, billing_period, specific_months)
    bill_cycle_day = (billing.bill_cycle_day if billing else None) or (
        override.bill_cycle_day if override else None
    )
    if bill_cycle_day is None:
        match charge.bill_cycle_type:
            case BillCycleType.SPECIFIC_DAY_OF_MONTH:
                bill_cycle_day = charge.bill_cycle_day or start.day
            case BillCycleType.SUBSCRIPTION_START_DAY:
                bill_cycle_day = subscription_start.day
            case BillCycleType.CHARGE_TRIGGER_DAY:
                bill_cycle_day = start.day
            case BillCycleType.DEFAULT_FROM_CUSTOMER:
                # An AutoSet account (BCD 0) bills on the charge's own day: setting the account's
                # BCD here would write the account row from a document write.
                bill_cycle_day = invoice_owner_bill_cycle_day or start.day
    recurring = charge.charge_type is ChargeType.RECURRING
    if recurring and billing_period is None:
        raise invalid_value(SUBSCRIPTION, "billingPeriod", f"charge '{charge.name}' needs one.")
    mrr = ZERO
    if recurring:
        assert billing_period is not None
        amount = priced_period(charge.charge_model, priced.quantity, priced.tiers)
        mrr = monthly_amount(billing_period, specific_months, amount)
    return {
        "id": new_id(),
        "subscription_id": subscription_id,
        "rate_plan_id": rate_plan_id,
        "segment": 1,
        "is_last_segment": True,
        "product_rate_plan_charge_id": charge.id,
        "name": charge.name,
        "charge_type": charge.charge_type.value,
        "charge_model": charge.charge_model.value,
        "billing_period": billing_period.value if billing_period else None,
        "specific_billing_period": specific_months,
        "billing_timing": timing.value,
        "bill_cycle_day": bill_cycle_day,
        "trigger_event": trigger.value,
        "end_date_condition": condition.value,
        "quantity": priced.quantity,
        "tiers": _tiers_json(priced.tiers),
        "uom": charge.uom,
        "description": override.description if override else None,
        "effective_start_date": start,
        "effective_end_date": end,
        "charged_through_date": None,
        "mrr": mrr,
    }


@dataclass(frozen=True, slots=True)
class NewSubscription:
    number: str | None
    owner: WritableAccount
    invoice_owner: WritableAccount
    term_type: str
    initial_term: int | None
    initial_term_period_type: str | None
    renewal_term: int | None
    renewal_term_period_type: str | None
    renewal_setting: str
    auto_renew: bool
    dates: ActionDates
    term_start: date
    rate_plans: Sequence[tuple[CatalogRatePlan, RatePlanSubscription]]
    invoice_separately: bool
    notes: str | None
    order_id: str | None
    term_field: str = "initialTerm"  # where the request gave the term, to name in an error


def _subscription_row(new: NewSubscription) -> dict[str, Any]:
    """The subscriptions row of `new`, checked; numbered at insert when `new` has no number."""
    currency = new.invoice_owner.currency
    if new.owner.currency != currency:
        raise business_rule(
            SUBSCRIPTION,
            f"The subscription owner's currency {new.owner.currency} differs from the invoice "
            f"owner's {currency}.",
        )
    if not new.rate_plans:
        raise business_rule(SUBSCRIPTION, "A subscription needs at least one rate plan.")
    if len(new.rate_plans) > MAX_RATE_PLANS_PER_SUBSCRIPTION:
        raise business_rule(
            SUBSCRIPTION, f"At most {MAX_RATE_PLANS_PER_SUBSCRIPTION} rate plans per subscription."
        )
    end: date | None = None
    if new.term_type == "TERMED":
        if new.initial_term is None:
            raise invalid_value(SUBSCRIPTION, "initialTerm", "is required for a TERMED term.")
        end = checked_end(
            new.term_start,
            new.initial_term,
            new.initial_term_period_type or "",
            new.term_field,
            "the term's end",
        )
    subscription_id = new_id()
    return {
        "id": subscription_id,
        "version_id": subscription_id,
        "subscription_number": new.number,
        "account_id": new.owner.id,
        "invoice_owner_account_id": new.invoice_owner.id,
        "status": "Active",
        "currency": currency,
        "term_type": new.term_type,
        "initial_term": new.initial_term,
        "initial_term_period_type": new.initial_term_period_type,
        "renewal_term": new.renewal_term,
        "renewal_term_period_type": new.renewal_term_period_type,
        "renewal_setting": new.renewal_setting,
        "auto_renew": new.auto_renew,
        "contract_effective_date": new.dates.contract_effective,
        "service_activation_date": new.dates.service_activation,
        "customer_acceptance_date": new.dates.customer_acceptance,
        "term_start_date": new.term_start,
        "term_end_date": end,
        "invoice_separately": new.invoice_separately,
        "notes": new.notes,
        "order_id": new.order_id,
    }


@dataclass(slots=True)
class _PlannedRows:
    """Rate plan rows and their charges' first segments, numbered at insert."""

    plans: list[dict[str, Any]] = field(default_factory=list)
    charges: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        subscription_id: str,
        plans: Sequence[tuple[CatalogRatePlan, RatePlanSubscription]],
        *,
        currency: str,
        dates: ActionDates,
        invoice_owner_bill_cycle_day: int,
        subscription_start: date,
        change_type: str,
    ) -> None:
        """The rows of `plans` subscribed to, checked (all or none of them is added)."""
        plan_rows, charge_rows = [], []
        for plan, request in plans:
            rate_plan_id = new_id()
            plan_rows.append(
                {
                    "id": rate_plan_id,
                    "subscription_id": subscription_id,
                    "product_rate_plan_id": plan.id,
                    "product_id": plan.product_id,
                    "product_name": plan.product_name,
                    "name": plan.name,
                    "last_change_type": change_type,
                    "unique_token": request.unique_token,
                }
            )
            overrides = _overrides_by_charge(plan, request)
            for charge in plan.charges:
                charge_rows.append(
                    charge_values(
                        subscription_id=subscription_id,
                        rate_plan_id=rate_plan_id,
                        charge=charge,
                        override=overrides.get(charge.id),
                        currency=currency,
                        dates=dates,
                        invoice_owner_bill_cycle_day=invoice_owner_bill_cycle_day,
                        subscription_start=subscription_start,
                    )
                )
        self.plans += plan_rows
        self.charges += charge_rows

    def number(self, plan_numbers: Sequence[int], charge_numbers: Sequence[int]) -> None:
        for row, number in zip(self.plans, plan_numbers, strict=True):
            row["rate_plan_number"] = f"SRP-{number:08d}"
        for row, number in zip(self.charges, charge_numbers, strict=True):
            row["charge_number"] = f"C-{number:08d}"


_SUBSCRIPTION_COLUMNS = (
    "id",
    "version_id",
    "subscription_number",
    "account_id",
    "invoice_owner_account_id",
    "status",
    "currency",
    "term_type",
    "initial_term",
    "initial_term_period_type",
    "renewal_term",
    "renewal_term_period_type",
    "renewal_setting",
    "auto_renew",
    "contract_effective_date",
    "service_activation_date",
    "customer_acceptance_date",
    "term_start_date",
    "term_end_date",
    "invoice_separately",
    "notes",
    "order_id",
)
_PLAN_COLUMNS = (
    "id",
    "subscription_id",
    "rate_plan_number",
    "product_rate_plan_id",
    "product_id",
    "product_name",
    "name",
    "last_change_type",
    "unique_token",
)
_CHARGE_COLUMNS = tuple(
    c.name for c in rate_plan_charges.c if c.name not in ("tenant_id", "created_at")
)
# Rate plans and their charges in one statement (one round trip, one prepared text).
_INSERT_PLANS = (
    f"new_plans AS ({insert_rows(rate_plans, 'plans', _PLAN_COLUMNS)}), "
    f"new_charges AS ({insert_rows(rate_plan_charges, 'charges', _CHARGE_COLUMNS)})"
)
_ADD_RATE_PLANS = text(f"WITH {_INSERT_PLANS} SELECT 1")
# Subscriptions with their rate plans and charges. A number already taken inserts nothing for
# that subscription (its row is missing from the answer): the caller refuses the write.
_INSERT_SUBSCRIPTIONS = text(
    "WITH new_subscriptions AS ("
    + insert_rows(subscriptions, "subscriptions", _SUBSCRIPTION_COLUMNS)
    + " ON CONFLICT (tenant_id, subscription_number) DO NOTHING RETURNING *), "
    + f"{_INSERT_PLANS} SELECT * FROM new_subscriptions"
)


def _plan_parameters(tenant: Tenant, rows: _PlannedRows) -> dict[str, str]:
    return {
        "tenant_id": tenant.id,
        "plans": rows_json(rows.plans, _PLAN_COLUMNS),
        "charges": rows_json(rows.charges, _CHARGE_COLUMNS),
    }


class NewSubscriptions:
    """Subscriptions being created, inserted together: numbered in one round trip, then inserted
    with their rate plans and charges in one statement, whatever their number.

    `add` checks a subscription and keeps its rows; `insert` writes what was added. A caller that
    adds several keeps the effects in the order one-by-one creation had: it inserts before any
    other statement of its own, and before raising an error found after an `add`, so that a
    refusal an insert gives (a number already taken) comes first, as it would have.
    """

    def __init__(self) -> None:
        self._rows: list[dict[str, Any]] = []  # as inserted
        self._subscriptions: list[dict[str, Any]] = []  # as `add` returned them
        self._planned = _PlannedRows()

    def has_room_for(self, new: NewSubscription) -> bool:
        """Whether `new` may join what was added in one insert (always, when nothing was)."""
        charges = sum(len(plan.charges) for plan, _ in new.rate_plans)
        return not self._rows or (
            len(self._rows) < SUBSCRIPTIONS_PER_INSERT
            and len(self._planned.plans) + len(new.rate_plans) <= MAX_NUMBERS_PER_CALL
            and len(self._planned.charges) + charges <= MAX_NUMBERS_PER_CALL
        )

    def add(self, new: NewSubscription) -> dict[str, Any]:
        """Check `new` and keep its rows; returns its subscription row, complete once inserted
        (number, version, timestamps). A refusal of its rate plans comes after its row was kept:
        one-by-one creation inserted the subscription before it checked the rate plans."""
        row = _subscription_row(new)
        subscription: dict[str, Any] = dict(row)
        self._rows.append(row)
        self._subscriptions.append(subscription)
        self._planned.add(
            row["id"],
            new.rate_plans,
            currency=row["currency"],
            dates=new.dates,
            invoice_owner_bill_cycle_day=new.invoice_owner.bill_cycle_day,
            subscription_start=new.dates.contract_effective,
            change_type="Add",
        )
        return subscription

    def set_notes(self, subscription_id: str, notes: str) -> bool:
        """Give a kept subscription its notes; False when it is not kept here."""
        for row, subscription in zip(self._rows, self._subscriptions, strict=True):
            if row["id"] == subscription_id:
                row["notes"] = subscription["notes"] = notes
                return True
        return False

    async def insert(self, conn: AsyncConnection, tenant: Tenant) -> None:
        """Insert what was added (nothing kept afterwards)."""
        rows, subscriptions_, planned = self._rows, self._subscriptions, self._planned
        self._rows, self._subscriptions, self._planned = [], [], _PlannedRows()
        if not rows:
            return
        unnumbered = [row for row in rows if row["subscription_number"] is None]
        numbers = await next_numbers_of(
            conn,
            tenant,
            {
                "subscription_number": len(unnumbered),
                "rate_plan_number": len(planned.plans),
                "charge_number": len(planned.charges),
            },
        )
        for row, number in zip(unnumbered, numbers["subscription_number"], strict=True):
            row["subscription_number"] = f"A-S{number:08d}"
        planned.number(numbers["rate_plan_number"], numbers["charge_number"])
        inserted = {
            found.id: found._asdict()
            for found in await conn.execute(
                _INSERT_SUBSCRIPTIONS,
                {
                    **_plan_parameters(tenant, planned),
                    "subscriptions": rows_json(rows, _SUBSCRIPTION_COLUMNS),
                },
            )
        }
        for row, subscription in zip(rows, subscriptions_, strict=True):
            if row["id"] not in inserted:
                raise business_rule(
                    SUBSCRIPTION,
                    f"A subscription numbered '{row['subscription_number']}' already exists.",
                )
            subscription.update(inserted[row["id"]])


async def add_rate_plans(
    conn: AsyncConnection,
    tenant: Tenant,
    subscription_id: str,
    plans: Sequence[tuple[CatalogRatePlan, RatePlanSubscription]],
    *,
    currency: str,
    dates: ActionDates,
    invoice_owner_bill_cycle_day: int,
    subscription_start: date,
    change_type: str,
) -> None:
    planned = _PlannedRows()
    planned.add(
        subscription_id,
        plans,
        currency=currency,
        dates=dates,
        invoice_owner_bill_cycle_day=invoice_owner_bill_cycle_day,
        subscription_start=subscription_start,
        change_type=change_type,
    )
    numbers = await next_numbers_of(
        conn,
        tenant,
        {"rate_plan_number": len(planned.plans), "charge_number": len(planned.charges)},
    )
    planned.number(numbers["rate_plan_number"], numbers["charge_number"])
    await conn.execute(_ADD_RATE_PLANS, _plan_parameters(tenant, planned))


def _overrides_by_charge(
    plan: CatalogRatePlan, request: RatePlanSubscription
) -> dict[str, ChargeOverride]:
    by_id = {charge.id: charge for charge in plan.charges}
    overrides: dict[str, ChargeOverride] = {}
    for i, override in enumerate(request.charge_overrides):
        charge_id = override.product_rate_plan_charge_id
        if charge_id is None or charge_id not in by_id:
            raise invalid_value(
                SUBSCRIPTION,
                f"chargeOverrides[{i}].productRatePlanChargeId",
                f"'{charge_id}' is not a charge of rate plan '{plan.name}'.",
            )
        overrides[charge_id] = override
    return overrides


def _key_clause(key: str) -> Any:
    """A subscription by its number or its current version's id (older version ids are served
    from `subscription_versions`)."""
    return (subscriptions.c.version_id == key) | (subscriptions.c.subscription_number == key)


async def lock_subscription(conn: AsyncConnection, tenant: Tenant, key: str) -> dict[str, Any]:
    """The subscription (by its current version's id or its number) `FOR UPDATE`: it is about to
    change."""
    row = (
        await execute_locking(
            conn,
            tenant,
            select(subscriptions)
            .where(subscriptions.c.tenant_id == tenant.id, _key_clause(key))
            .with_for_update(),
            resource=SUBSCRIPTION,
        )
    ).one_or_none()
    if row is None:
        raise not_found(SUBSCRIPTION, "subscription", key)
    return dict(row._mapping)


async def lock_subscriptions(
    conn: AsyncConnection, tenant: Tenant, keys: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The subscriptions named by `keys` (numbers or current version ids), locked `FOR UPDATE`
    in one statement in id order (as a bill run locks them: two writers never wait on each
    other in a cycle); keyed by the given key."""
    if not keys:
        return {}
    rows = await execute_locking(
        conn,
        tenant,
        select(subscriptions)
        .where(
            subscriptions.c.tenant_id == tenant.id,
            subscriptions.c.version_id.in_(keys) | subscriptions.c.subscription_number.in_(keys),
        )
        .order_by(subscriptions.c.id)
        .with_for_update(),
        resource=SUBSCRIPTION,
    )
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        sub = dict(row._mapping)
        found[sub["version_id"]] = found[sub["subscription_number"]] = sub
    for key in keys:
        if key not in found:
            raise not_found(SUBSCRIPTION, "subscription", key)
    return {key: found[key] for key in keys}


async def new_version(conn: AsyncConnection, tenant: Tenant, subscription: dict[str, Any]) -> None:
    """Keep the current version as a snapshot before an amendment changes it."""
    snapshot = await subscription_json(conn, tenant, subscription["version_id"])
    await conn.execute(
        insert(subscription_versions).values(
            tenant_id=tenant.id,
            id=subscription["version_id"],
            subscription_id=subscription["id"],
            version=subscription["version"],
            snapshot={**snapshot, "isLatestVersion": False},
        )
    )
    await save(conn, tenant, subscription, version=subscription["version"] + 1, version_id=new_id())


async def save(
    conn: AsyncConnection, tenant: Tenant, subscription: dict[str, Any], **values: Any
) -> None:
    subscription.update(values)
    await conn.execute(
        update(subscriptions)
        .where(subscriptions.c.tenant_id == tenant.id, subscriptions.c.id == subscription["id"])
        .values(**values, updated_at=func.now())
    )


async def last_segments(
    conn: AsyncConnection, tenant: Tenant, subscription_id: str, rate_plan_id: str | None = None
) -> list[dict[str, Any]]:
    query = select(rate_plan_charges).where(
        rate_plan_charges.c.tenant_id == tenant.id,
        rate_plan_charges.c.subscription_id == subscription_id,
        rate_plan_charges.c.is_last_segment,
    )
    if rate_plan_id is not None:
        query = query.where(rate_plan_charges.c.rate_plan_id == rate_plan_id)
    return [dict(r._mapping) for r in await conn.execute(query.order_by(rate_plan_charges.c.id))]


async def end_segments(
    conn: AsyncConnection, tenant: Tenant, segments: Sequence[Mapping[str, Any]], end: date
) -> None:
    """End open (or later-ending) segments at `end` (exclusive)."""
    ids = [
        s["id"]
        for s in segments
        if s["effective_end_date"] is None or s["effective_end_date"] > end
    ]
    if ids:
        await conn.execute(
            update(rate_plan_charges)
            .where(rate_plan_charges.c.tenant_id == tenant.id, rate_plan_charges.c.id.in_(ids))
            .values(effective_end_date=func.greatest(rate_plan_charges.c.effective_start_date, end))
        )


async def split_segment(
    conn: AsyncConnection,
    tenant: Tenant,
    segment: Mapping[str, Any],
    on: date,
    *,
    quantity: Decimal,
    tiers: tuple[Tier, ...],
    start: date | None = None,
    description: str | None = None,
) -> None:
    """A new segment from `on` (or `start`) with a new price, quantity or description (None:
    the segment's); the current one ends at `on`. A change dated on the segment's own start
    replaces it instead."""
    if description is None:
        description = segment["description"]
    model = ChargeModel(segment["charge_model"])
    mrr = ZERO
    if segment["charge_type"] == ChargeType.RECURRING.value:
        amount = priced_period(model, quantity, tiers)
        period = BillingPeriod(segment["billing_period"])
        mrr = monthly_amount(period, segment["specific_billing_period"], amount)
    if on <= segment["effective_start_date"] and start is None:
        await conn.execute(
            update(rate_plan_charges)
            .where(
                rate_plan_charges.c.tenant_id == tenant.id,
                rate_plan_charges.c.id == segment["id"],
            )
            .values(quantity=quantity, tiers=_tiers_json(tiers), mrr=mrr, description=description)
        )
        return
    await conn.execute(
        update(rate_plan_charges)
        .where(rate_plan_charges.c.tenant_id == tenant.id, rate_plan_charges.c.id == segment["id"])
        .values(is_last_segment=False, effective_end_date=on)
    )
    await conn.execute(
        insert(rate_plan_charges).values(
            {
                **segment,
                "id": new_id(),
                "segment": segment["segment"] + 1,
                "is_last_segment": True,
                "quantity": quantity,
                "tiers": _tiers_json(tiers),
                "mrr": mrr,
                "description": description,
                "effective_start_date": start or on,
                "effective_end_date": segment["effective_end_date"],
                "charged_through_date": None,
                "created_at": func.now(),
            }
        )
    )


# Built once, the ids as one array parameter: an order's 50 subscriptions cost no statement
# building and no parameter per id.
_CMRR_CONTRIBUTION = (
    select(subscriptions.c.id, func.coalesce(func.sum(rate_plan_charges.c.mrr), ZERO))
    .select_from(subscriptions)
    .outerjoin(
        rate_plan_charges,
        (rate_plan_charges.c.tenant_id == subscriptions.c.tenant_id)
        & (rate_plan_charges.c.subscription_id == subscriptions.c.id)
        & rate_plan_charges.c.is_last_segment
        & rate_plan_charges.c.effective_end_date.is_(None)
        & (rate_plan_charges.c.charge_type == ChargeType.RECURRING.value),
    )
    .where(
        subscriptions.c.tenant_id == bindparam("tenant_id"),
        subscriptions.c.id == func.any(bindparam("ids", type_=ARRAY(String))),
        subscriptions.c.cancelled_date.is_(None),
    )
    .group_by(subscriptions.c.id)
)


async def account_cmrr_contribution(
    conn: AsyncConnection, tenant: Tenant, subscription_ids: Sequence[str]
) -> dict[str, Decimal]:
    """What each subscription adds to its owner's contractedMrr right now (0 once cancelled)."""
    if not subscription_ids:
        return {}
    rows = await conn.execute(
        _CMRR_CONTRIBUTION, {"tenant_id": tenant.id, "ids": list(subscription_ids)}
    )
    found = {row[0]: row[1] for row in rows}
    return {sid: found.get(sid, ZERO) for sid in subscription_ids}


def _charge_json(sub: Mapping[Any, Any], segment: Mapping[str, Any]) -> dict[str, Any]:
    tiers = tiers_from_json(segment["tiers"])
    model = ChargeModel(segment["charge_model"])
    return {
        "id": segment["id"],
        "number": segment["charge_number"],
        "name": segment["name"],
        "type": segment["charge_type"],
        "model": segment["charge_model"],
        "productRatePlanChargeId": segment["product_rate_plan_charge_id"],
        "price": tiers[0].price if model in (ChargeModel.FLAT_FEE, ChargeModel.PER_UNIT) else None,
        "quantity": segment["quantity"],
        "tiers": (
            [t.as_json() for t in tiers]
            if model in (ChargeModel.TIERED, ChargeModel.VOLUME)
            else []
        ),
        "uom": segment["uom"],
        "description": segment["description"],
        "mrr": trimmed(segment["mrr"]),
        "tcv": segment_tcv(sub, segment),
        "billingPeriod": segment["billing_period"],
        "specificBillingPeriod": segment["specific_billing_period"],
        "billingTiming": segment["billing_timing"],
        "billingDay": segment["bill_cycle_day"],
        "triggerEvent": segment["trigger_event"],
        "endDateCondition": segment["end_date_condition"],
        "effectiveStartDate": segment["effective_start_date"],
        "effectiveEndDate": segment["effective_end_date"],
        "chargedThroughDate": segment["charged_through_date"],
        "processedThroughDate": segment["charged_through_date"],
        "segment": segment["segment"],
        "version": 1,
    }


def _months_between(start: date, end: date) -> Decimal:
    months = (end.year - start.year) * 12 + end.month - start.month
    days = Decimal((end - add_term(start, months, "Month")).days)
    return Decimal(months) + days / Decimal(30)


def segment_tcv(sub: Mapping[Any, Any], segment: Mapping[Any, Any]) -> Decimal:
    """Contract value of one segment: a one-time price, or the recurring MRR over the months the
    segment runs within the current term (an evergreen subscription counts its first 12 months),
    up to a cancellation."""
    if segment["charge_type"] == ChargeType.ONE_TIME.value:
        return period_amount(
            ChargeModel(segment["charge_model"]),
            segment["quantity"],
            tiers_from_json(segment["tiers"]),
        )
    term_end = sub["term_end_date"] or add_term(sub["term_start_date"], 12, "Month")
    if sub["cancelled_date"] is not None:
        term_end = min(term_end, sub["cancelled_date"])
    start = max(segment["effective_start_date"], sub["term_start_date"])
    end = min(segment["effective_end_date"] or term_end, term_end)
    value = segment["mrr"] * _months_between(start, end) if end > start else ZERO
    return value.quantize(Decimal("0.01"))


def subscription_tcv(sub: Mapping[Any, Any], segments: Sequence[Mapping[Any, Any]]) -> Decimal:
    """totalContractedValue: the sum of its segments' contract values."""
    return sum((segment_tcv(sub, segment) for segment in segments), ZERO)


async def subscription_json(conn: AsyncConnection, tenant: Tenant, key: str) -> dict[str, Any]:
    """GET /v1/subscriptions/{key}: the latest version, or a stored older version by its id."""
    row = (
        await conn.execute(
            select(subscriptions).where(subscriptions.c.tenant_id == tenant.id, _key_clause(key))
        )
    ).one_or_none()
    if row is None:
        snapshot = await conn.scalar(
            select(subscription_versions.c.snapshot).where(
                subscription_versions.c.tenant_id == tenant.id, subscription_versions.c.id == key
            )
        )
        if snapshot is None:
            raise not_found(SUBSCRIPTION, "subscription", key)
        return dict(snapshot)
    sub = row._mapping
    owners = {
        r.id: r
        for r in await conn.execute(
            select(accounts.c.id, accounts.c.account_number, accounts.c.name).where(
                accounts.c.tenant_id == tenant.id,
                accounts.c.id.in_([sub["account_id"], sub["invoice_owner_account_id"]]),
            )
        )
    }
    plan_rows = (
        await conn.execute(
            select(rate_plans)
            .where(rate_plans.c.tenant_id == tenant.id, rate_plans.c.subscription_id == sub["id"])
            .order_by(rate_plans.c.created_at, rate_plans.c.id)
        )
    ).all()
    segment_rows = [
        dict(r._mapping)
        for r in await conn.execute(
            select(rate_plan_charges)
            .where(
                rate_plan_charges.c.tenant_id == tenant.id,
                rate_plan_charges.c.subscription_id == sub["id"],
            )
            .order_by(rate_plan_charges.c.charge_number, rate_plan_charges.c.segment)
        )
    ]
    cmrr = sum(
        (
            s["mrr"]
            for s in segment_rows
            if s["is_last_segment"]
            and s["effective_end_date"] is None
            and s["charge_type"] == ChargeType.RECURRING.value
        ),
        ZERO,
    )
    owner, invoice_owner = owners[sub["account_id"]], owners[sub["invoice_owner_account_id"]]
    return {
        "success": True,
        "id": sub["version_id"],
        "subscriptionNumber": sub["subscription_number"],
        "version": sub["version"],
        "isLatestVersion": True,
        "status": sub["status"],
        "accountId": owner.id,
        "accountNumber": owner.account_number,
        "accountName": owner.name,
        "invoiceOwnerAccountId": invoice_owner.id,
        "invoiceOwnerAccountNumber": invoice_owner.account_number,
        "invoiceOwnerAccountName": invoice_owner.name,
        "termType": sub["term_type"],
        "initialTerm": sub["initial_term"],
        "initialTermPeriodType": sub["initial_term_period_type"],
        "currentTerm": sub["initial_term"],
        "currentTermPeriodType": sub["initial_term_period_type"],
        "renewalTerm": sub["renewal_term"],
        "renewalTermPeriodType": sub["renewal_term_period_type"],
        "renewalSetting": sub["renewal_setting"],
        "autoRenew": sub["auto_renew"],
        "contractEffectiveDate": sub["contract_effective_date"],
        "serviceActivationDate": sub["service_activation_date"],
        "customerAcceptanceDate": sub["customer_acceptance_date"],
        "subscriptionStartDate": sub["contract_effective_date"],
        "subscriptionEndDate": sub["cancelled_date"] or sub["term_end_date"],
        "termStartDate": sub["term_start_date"],
        "termEndDate": sub["term_end_date"],
        "cancelledDate": sub["cancelled_date"],
        "scheduledSuspendDate": sub["suspended_date"],
        "scheduledResumeDate": sub["resume_date"],
        "invoiceSeparately": sub["invoice_separately"],
        "currency": sub["currency"],
        "notes": sub["notes"],
        "contractedMrr": trimmed(cmrr),
        "totalContractedValue": subscription_tcv(sub, segment_rows),
        "createTime": v1_datetime(sub["created_at"]),
        "updateTime": v1_datetime(sub["updated_at"]),
        "ratePlans": [
            {
                "id": plan.id,
                "productId": plan.product_id,
                "productName": plan.product_name,
                "productRatePlanId": plan.product_rate_plan_id,
                "ratePlanName": plan.name,
                "subscriptionRatePlanNumber": plan.rate_plan_number,
                "lastChangeType": plan.last_change_type,
                "ratePlanCharges": [
                    _charge_json(sub, s) for s in segment_rows if s["rate_plan_id"] == plan.id
                ],
            }
            for plan in plan_rows
        ],
    }
