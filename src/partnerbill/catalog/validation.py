"""Catalog input checked against Zuora's rules, before anything is written: charge types,
models, periods, bill cycles, end dates and tier ladders (also the rule charge overrides of orders
are held to, `tier_ladder`). Pure functions: no query, no lock.
"""

from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Protocol, TypeVar

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
    ZuoraEnum,
    same_word,
)
from partnerbill.catalog.pricing import UNIT_PRICE_MAX_DECIMALS
from partnerbill.catalog.schemas import ChargeTierRequest, CreateProductRatePlanChargeRequest
from partnerbill.catalog.tiers import tiers_by_currency_json
from partnerbill.core.errors import Category, Resource, ZuoraError, invalid_value, missing_field
from partnerbill.core.money import CURRENCIES, MAX_ABS_AMOUNT, ZERO, amount_problem, decimal_places

PRODUCT_CATEGORIES = ("Base Products", "Add On Services", "Miscellaneous Products")
LIST_PRICE_BASE = "Per Billing Period"  # the only one supported: prices are per billing period
MAX_NESTED_ROWS = 300  # Zuora caps non-paginated nested arrays at 300 rows
MAX_CHARGES_PER_RATE_PLAN = MAX_NESTED_ROWS
MAX_TIERS_PER_CURRENCY = 100
MAX_SPECIFIC_BILLING_PERIOD_MONTHS = 120
MAX_UP_TO_PERIODS = 10_000
TIERS_FIELD = "ProductRatePlanChargeTierData.ProductRatePlanChargeTier"

E = TypeVar("E", bound=ZuoraEnum)


def _parse(enum: type[E], value: str, field: str) -> E:
    return enum.parse_field(value, field, Resource.CATALOG)


def invalid_id(field: str, kind: str, key: str) -> ZuoraError:
    """An unknown id in a request body: 400 INVALID_ID on the object API (not a 404)."""
    return ZuoraError(
        Resource.CATALOG,
        Category.NOT_FOUND,
        f"'{field}': no {kind} has the id '{key}'.",
        http_status=400,
    )


def check_period(start: date, end: date) -> None:
    if end < start:
        raise invalid_value(
            Resource.CATALOG, "EffectiveEndDate", "must not be before EffectiveStartDate."
        )


def product_category(value: str | None) -> str:
    if value is None:
        return PRODUCT_CATEGORIES[0]
    for category in PRODUCT_CATEGORIES:
        if same_word(category, value):
            return category
    raise invalid_value(
        Resource.CATALOG,
        "Category",
        f"'{value}' is not supported; use one of: {', '.join(PRODUCT_CATEGORIES)}.",
    )


def _price_problem(price: Decimal, currency: str, price_format: PriceFormat) -> str | None:
    """Flat fees are amounts (at most the currency's scale); unit prices take up to 9 decimals."""
    if price < 0:
        return "must not be negative"
    match price_format:
        case PriceFormat.FLAT_FEE:
            return amount_problem(price, currency)
        case PriceFormat.PER_UNIT:
            if price >= MAX_ABS_AMOUNT:
                return f"must be less than {MAX_ABS_AMOUNT:f}"
            if decimal_places(price) > UNIT_PRICE_MAX_DECIMALS:
                return f"has more than {UNIT_PRICE_MAX_DECIMALS} decimal places"
            return None


def _single_price(
    currency: str, entries: list[tuple[int, ChargeTierRequest]], model: ChargeModel
) -> tuple[Tier, ...]:
    if len(entries) > 1:
        raise invalid_value(
            Resource.CATALOG,
            TIERS_FIELD,
            f"a {model.crud} charge takes one price per currency; {currency} has {len(entries)}.",
        )
    index, entry = entries[0]
    price_format = PriceFormat.FLAT_FEE if model is ChargeModel.FLAT_FEE else PriceFormat.PER_UNIT
    problem = _price_problem(entry.price, currency, price_format)
    if problem:
        raise invalid_value(Resource.CATALOG, f"{TIERS_FIELD}[{index}].Price", problem)
    return (Tier(1, ZERO, None, entry.price, price_format),)


class TierEntry(Protocol):
    """A tier as a request gives it: the catalog's (PascalCase) or a charge override's."""

    @property
    def starting_unit(self) -> Decimal | None: ...
    @property
    def ending_unit(self) -> Decimal | None: ...
    @property
    def price(self) -> Decimal: ...
    @property
    def price_format(self) -> str | None: ...


def tier_ladder(
    currency: str,
    entries: Sequence[tuple[int, TierEntry]],
    resource: Resource,
    field: Callable[[int | None, str], str],
) -> tuple[Tier, ...]:
    """Contiguous tiers from StartingUnit ≥ 0; each starts at the previous end or one past it;
    only the last is open-ended. `field(index, "StartingUnit")` names a tier's field in errors
    (`field(None, "")`: the list)."""
    if len(entries) > MAX_TIERS_PER_CURRENCY:
        raise invalid_value(
            resource,
            field(None, ""),
            f"at most {MAX_TIERS_PER_CURRENCY} tiers per currency; {currency} has {len(entries)}.",
        )
    for index, entry in entries:
        if entry.starting_unit is None:
            raise missing_field(resource, field(index, "StartingUnit"))
    ordered = sorted(entries, key=lambda pair: pair[1].starting_unit or ZERO)
    tiers: list[Tier] = []
    previous_end: Decimal | None = None
    for position, (index, entry) in enumerate(ordered):
        start = entry.starting_unit
        assert start is not None
        if position == 0 and start < 0:
            raise invalid_value(resource, field(index, "StartingUnit"), "must not be negative.")
        if position > 0:
            if previous_end is None:
                raise missing_field(resource, field(ordered[position - 1][0], "EndingUnit"))
            if start not in (previous_end, previous_end + 1):
                raise invalid_value(
                    resource,
                    field(index, "StartingUnit"),
                    f"tiers must be contiguous: expected {previous_end:f} or "
                    f"{previous_end + 1:f} after the previous tier, got {start:f}.",
                )
        if entry.ending_unit is not None and entry.ending_unit < start:
            raise invalid_value(
                resource, field(index, "EndingUnit"), "must not be below StartingUnit."
            )
        price_format = (
            PriceFormat.parse_field(entry.price_format, field(index, "PriceFormat"), resource)
            if entry.price_format
            else PriceFormat.PER_UNIT
        )
        problem = _price_problem(entry.price, currency, price_format)
        if problem:
            raise invalid_value(resource, field(index, "Price"), problem)
        tiers.append(Tier(position + 1, start, entry.ending_unit, entry.price, price_format))
        previous_end = entry.ending_unit
    return tuple(tiers)


def _catalog_tier_field(index: int | None, name: str) -> str:
    return TIERS_FIELD if index is None else f"{TIERS_FIELD}[{index}].{name}"


def _tiers(entries: Sequence[ChargeTierRequest], model: ChargeModel) -> dict[str, tuple[Tier, ...]]:
    by_currency: dict[str, list[tuple[int, ChargeTierRequest]]] = {}
    for index, entry in enumerate(entries):
        currency = entry.currency.upper()
        if currency not in CURRENCIES:
            raise invalid_value(
                Resource.CATALOG,
                f"{TIERS_FIELD}[{index}].Currency",
                f"'{entry.currency}' is not an ISO 4217 currency code.",
            )
        by_currency.setdefault(currency, []).append((index, entry))
    match model:
        case ChargeModel.FLAT_FEE | ChargeModel.PER_UNIT:
            return {cur: _single_price(cur, found, model) for cur, found in by_currency.items()}
        case ChargeModel.TIERED | ChargeModel.VOLUME:
            return {
                cur: tier_ladder(cur, found, Resource.CATALOG, _catalog_tier_field)
                for cur, found in by_currency.items()
            }


def _billing_period(
    request: CreateProductRatePlanChargeRequest, charge_type: ChargeType
) -> tuple[BillingPeriod | None, int | None]:
    if charge_type is ChargeType.ONE_TIME:
        return None, None
    if request.billing_period is None:
        if charge_type is ChargeType.RECURRING:
            raise missing_field(Resource.CATALOG, "BillingPeriod")
        return BillingPeriod.MONTH, None
    period = _parse(BillingPeriod, request.billing_period, "BillingPeriod")
    if period is not BillingPeriod.SPECIFIC_MONTHS:
        return period, None
    months = request.specific_billing_period
    if months is None:
        raise missing_field(Resource.CATALOG, "SpecificBillingPeriod")
    if not 1 <= months <= MAX_SPECIFIC_BILLING_PERIOD_MONTHS:
        raise invalid_value(
            Resource.CATALOG,
            "SpecificBillingPeriod",
            f"must be between 1 and {MAX_SPECIFIC_BILLING_PERIOD_MONTHS} months.",
        )
    return period, months


def _bill_cycle(
    request: CreateProductRatePlanChargeRequest, period: BillingPeriod | None
) -> tuple[BillCycleType, int | None]:
    cycle_type = (
        _parse(BillCycleType, request.bill_cycle_type, "BillCycleType")
        if request.bill_cycle_type
        else BillCycleType.DEFAULT_FROM_CUSTOMER
    )
    day = request.bill_cycle_day
    if day is not None and not 1 <= day <= 31:
        raise invalid_value(Resource.CATALOG, "BillCycleDay", "must be between 1 and 31.")
    if cycle_type is not BillCycleType.SPECIFIC_DAY_OF_MONTH:
        return cycle_type, None
    if day is None:
        raise missing_field(Resource.CATALOG, "BillCycleDay")
    if period is BillingPeriod.WEEK:
        raise invalid_value(
            Resource.CATALOG, "BillCycleType", "a weekly charge cannot bill on a day of the month."
        )
    return cycle_type, day


def _end_date(
    request: CreateProductRatePlanChargeRequest, charge_type: ChargeType
) -> tuple[EndDateCondition, int | None, str | None]:
    if charge_type is ChargeType.ONE_TIME:
        return EndDateCondition.ONE_TIME, None, None
    condition = (
        _parse(EndDateCondition, request.end_date_condition, "EndDateCondition")
        if request.end_date_condition
        else EndDateCondition.SUBSCRIPTION_END
    )
    match condition:
        case EndDateCondition.SUBSCRIPTION_END:
            return condition, None, None
        case EndDateCondition.FIXED_PERIOD:
            periods = request.up_to_periods
            if periods is None:
                raise missing_field(Resource.CATALOG, "UpToPeriods")
            if not 1 <= periods <= MAX_UP_TO_PERIODS:
                raise invalid_value(
                    Resource.CATALOG, "UpToPeriods", f"must be between 1 and {MAX_UP_TO_PERIODS}."
                )
            unit = (
                _parse(UpToPeriodsType, request.up_to_periods_type, "UpToPeriodsType")
                if request.up_to_periods_type
                else UpToPeriodsType.BILLING_PERIODS
            )
            return condition, periods, unit.value
        case EndDateCondition.ONE_TIME | EndDateCondition.SPECIFIC_END_DATE:
            raise invalid_value(
                Resource.CATALOG,
                "EndDateCondition",
                f"'{request.end_date_condition}' is not supported on a {charge_type.value} "
                "charge; use SubscriptionEnd or FixedPeriod.",
            )


def charge_values(request: CreateProductRatePlanChargeRequest) -> dict[str, Any]:
    """The charge's columns (but ids and number), every value checked."""
    charge_type = _parse(ChargeType, request.charge_type, "ChargeType")
    model = _parse(ChargeModel, request.charge_model, "ChargeModel")
    if request.list_price_base is not None and not same_word(
        request.list_price_base, LIST_PRICE_BASE
    ):
        raise invalid_value(
            Resource.CATALOG,
            "ListPriceBase",
            f"'{request.list_price_base}' is not supported; use {LIST_PRICE_BASE}.",
        )
    period, specific_months = _billing_period(request, charge_type)
    cycle_type, cycle_day = _bill_cycle(request, period)
    condition, up_to_periods, up_to_periods_type = _end_date(request, charge_type)
    timing = (
        _parse(BillingTiming, request.billing_timing, "BillingTiming")
        if request.billing_timing
        else BillingTiming.IN_ADVANCE
    )
    trigger = (
        _parse(TriggerEvent, request.trigger_event, "TriggerEvent")
        if request.trigger_event
        else TriggerEvent.CONTRACT_EFFECTIVE
    )
    quantity = request.default_quantity
    if quantity is not None and not ZERO <= quantity < MAX_ABS_AMOUNT:
        raise invalid_value(
            Resource.CATALOG, "DefaultQuantity", f"must be between 0 and {MAX_ABS_AMOUNT:f}."
        )
    tiers = _tiers(request.product_rate_plan_charge_tier_data.product_rate_plan_charge_tier, model)
    return {
        "name": request.name,
        "charge_type": charge_type.value,
        "charge_model": model.value,
        "billing_period": period.value if period else None,
        "specific_billing_period": specific_months,
        "billing_timing": timing.value,
        "bill_cycle_type": cycle_type.value,
        "bill_cycle_day": cycle_day,
        "trigger_event": trigger.value,
        "end_date_condition": condition.value,
        "up_to_periods": up_to_periods,
        "up_to_periods_type": up_to_periods_type,
        "default_quantity": None if model is ChargeModel.FLAT_FEE else quantity,
        "uom": request.uom,
        "tiers": tiers_by_currency_json(tiers),
        "description": request.description,
        "custom_fields": request.custom_fields(),
    }
