"""A charge as subscribed to: its price after a charge override (checked as the catalog checks
its own tiers), its start and end from triggers and end conditions, and its first segment's
row. Pure functions over the catalog charge and the request: no query, no lock.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from partnerbill.catalog.enums import (
    BillCycleType,
    BillingPeriod,
    BillingTiming,
    ChargeModel,
    ChargeType,
    EndDateCondition,
    Tier,
    TriggerEvent,
    UpToPeriodsType,
)
from partnerbill.catalog.pricing import monthly_amount, period_amount
from partnerbill.catalog.tiers import tiers_json
from partnerbill.catalog.validation import tier_ladder
from partnerbill.catalog.views import CatalogCharge
from partnerbill.core.errors import Resource, business_rule, invalid_value, missing_field
from partnerbill.core.ids import new_id
from partnerbill.core.money import MAX_ABS_AMOUNT, ZERO, amount_problem
from partnerbill.subscriptions.dates import ActionDates, checked_end
from partnerbill.subscriptions.schemas import ChargeOverride, PriceTier
from partnerbill.tables.subscriptions import NewChargeSegment

SUBSCRIPTION = Resource.SUBSCRIPTION
END = "the charge's end"


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
) -> NewChargeSegment:
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
        "tiers": tiers_json(priced.tiers),
        "uom": charge.uom,
        "description": override.description if override else None,
        "effective_start_date": start,
        "effective_end_date": end,
        "charged_through_date": None,
        "mrr": mrr,
    }
