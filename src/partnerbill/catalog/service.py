"""The product catalog: create products, rate plans and charges; read them in both APIs; hand
rate plans to orders and subscriptions (`load_rate_plans`).

Writes come through the CRUD object API (PascalCase, CRUD vocabulary: "Per Unit Pricing");
reads through the v1 catalog API (camelCase, Orders/GET vocabulary: "PerUnit"). Both vocabularies
are accepted on input. Every value is validated before anything is written, so a refused request
leaves nothing behind.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from sqlalchemy import Column, Table, and_, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.billing.service import UNIT_PRICE_MAX_DECIMALS
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
from partnerbill.catalog.schemas import (
    ChargeTierRequest,
    CreateProductRatePlanChargeRequest,
    CreateProductRatePlanRequest,
    CreateProductRequest,
)
from partnerbill.catalog.tables import product_rate_plan_charges, product_rate_plans, products
from partnerbill.core.errors import (
    Category,
    Resource,
    ZuoraError,
    business_rule,
    invalid_value,
    missing_field,
    not_found,
)
from partnerbill.core.ids import new_id
from partnerbill.core.money import CURRENCIES, MAX_ABS_AMOUNT, ZERO, amount_problem, decimal_places
from partnerbill.core.pagination import MAX_PAGE_SIZE
from partnerbill.core.tenants import Tenant, next_numbers

PRODUCT_CATEGORIES = ("Base Products", "Add On Services", "Miscellaneous Products")
LIST_PRICE_BASE = "Per Billing Period"  # the only one supported: prices are per billing period
DEFAULT_PAGE_SIZE = 10
MAX_NESTED_ROWS = 300  # Zuora caps non-paginated nested arrays at 300 rows
MAX_CHARGES_PER_RATE_PLAN = MAX_NESTED_ROWS
MAX_TIERS_PER_CURRENCY = 100
MAX_SPECIFIC_BILLING_PERIOD_MONTHS = 120
MAX_UP_TO_PERIODS = 10_000
MAX_RATE_PLAN_KEYS = 1000
TIERS_FIELD = "ProductRatePlanChargeTierData.ProductRatePlanChargeTier"

E = TypeVar("E", bound=ZuoraEnum)


@dataclass(frozen=True, slots=True)
class CatalogCharge:
    """A product rate plan charge as orders and subscriptions use it."""

    id: str
    name: str
    charge_type: ChargeType
    charge_model: ChargeModel
    billing_period: BillingPeriod | None
    specific_billing_period: int | None
    billing_timing: BillingTiming
    bill_cycle_type: BillCycleType
    bill_cycle_day: int | None
    trigger_event: TriggerEvent
    end_date_condition: EndDateCondition
    up_to_periods: int | None
    up_to_periods_type: str | None
    default_quantity: Decimal | None
    uom: str | None
    tiers: Mapping[str, tuple[Tier, ...]]

    def tiers_for(self, currency: str) -> tuple[Tier, ...]:
        """The charge's tiers in `currency`; a business-rule error when it has no price there."""
        tiers = self.tiers.get(currency)
        if not tiers:
            raise business_rule(
                Resource.CATALOG,
                f"Charge '{self.name}' ({self.id}) has no price in {currency}; it is priced in "
                f"{', '.join(sorted(self.tiers))}.",
            )
        return tiers


@dataclass(frozen=True, slots=True)
class CatalogRatePlan:
    id: str
    number: str
    name: str
    product_id: str
    product_name: str
    charges: tuple[CatalogCharge, ...]


# --- validation --------------------------------------------------------------------------------


def _parse(enum: type[E], value: str, field: str) -> E:
    return enum.parse_field(value, field, Resource.CATALOG)


def _invalid_id(field: str, kind: str, key: str) -> ZuoraError:
    """An unknown id in a request body: 400 INVALID_ID on the object API (not a 404)."""
    return ZuoraError(
        Resource.CATALOG,
        Category.NOT_FOUND,
        f"'{field}': no {kind} has the id '{key}'.",
        http_status=400,
    )


def _check_period(start: date, end: date) -> None:
    if end < start:
        raise invalid_value(
            Resource.CATALOG, "EffectiveEndDate", "must not be before EffectiveStartDate."
        )


def _category(value: str | None) -> str:
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


def _charge_values(request: CreateProductRatePlanChargeRequest) -> dict[str, Any]:
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
        "tiers": _tiers_json(tiers),
        "description": request.description,
        "custom_fields": request.custom_fields(),
    }


# --- tiers in storage ---------------------------------------------------------------------------


def _units(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _tiers_json(tiers: Mapping[str, tuple[Tier, ...]]) -> dict[str, list[dict[str, Any]]]:
    """Tiers as stored: decimals as exact strings, so no JSON number round trip can touch them."""
    return {
        currency: [
            {
                "tier": tier.tier,
                "startingUnit": _units(tier.starting_unit),
                "endingUnit": _units(tier.ending_unit),
                "price": _units(tier.price),
                "priceFormat": tier.price_format.value,
            }
            for tier in found
        ]
        for currency, found in tiers.items()
    }


def _tiers_from_json(stored: Mapping[Any, Any]) -> dict[str, tuple[Tier, ...]]:
    return {
        currency: tuple(
            Tier(
                tier=entry["tier"],
                starting_unit=Decimal(entry["startingUnit"]),
                ending_unit=None if entry["endingUnit"] is None else Decimal(entry["endingUnit"]),
                price=Decimal(entry["price"]),
                price_format=PriceFormat(entry["priceFormat"]),
            )
            for entry in found
        )
        for currency, found in stored.items()
    }


def _charge(row: Mapping[Any, Any]) -> CatalogCharge:
    return CatalogCharge(
        id=row["id"],
        name=row["name"],
        charge_type=ChargeType(row["charge_type"]),
        charge_model=ChargeModel(row["charge_model"]),
        billing_period=BillingPeriod(row["billing_period"]) if row["billing_period"] else None,
        specific_billing_period=row["specific_billing_period"],
        billing_timing=BillingTiming(row["billing_timing"]),
        bill_cycle_type=BillCycleType(row["bill_cycle_type"]),
        bill_cycle_day=row["bill_cycle_day"],
        trigger_event=TriggerEvent(row["trigger_event"]),
        end_date_condition=EndDateCondition(row["end_date_condition"]),
        up_to_periods=row["up_to_periods"],
        up_to_periods_type=row["up_to_periods_type"],
        default_quantity=row["default_quantity"],
        uom=row["uom"],
        tiers=_tiers_from_json(row["tiers"]),
    )


# --- writes -------------------------------------------------------------------------------------


async def _reject_taken(
    conn: AsyncConnection, tenant: Tenant, column: Column[Any], value: str | None, field: str
) -> None:
    if value is None:
        return
    table = column.table
    taken = await conn.scalar(
        select(column).where(table.c.tenant_id == tenant.id, column == value).limit(1)
    )
    if taken is not None:
        raise invalid_value(Resource.CATALOG, field, f"'{value}' is already in use.")


async def _chosen_or_next_number(
    conn: AsyncConnection,
    tenant: Tenant,
    column: Column[Any],
    chosen: str | None,
    field: str,
    prefix: str,
) -> str:
    """The number the request chose (refused when taken), else the next of the tenant's sequence
    of the same name as the column."""
    if chosen is not None:
        await _reject_taken(conn, tenant, column, chosen, field)
        return chosen
    (sequence,) = await next_numbers(conn, tenant, column.name, 1)
    return f"{prefix}{sequence:08d}"


async def _insert(conn: AsyncConnection, table: Table, values: dict[str, Any]) -> None:
    try:
        await conn.execute(insert(table).values(**values))
    except IntegrityError as exc:
        # Lost a race for a chosen number or SKU (the pre-check saw it free).
        raise business_rule(
            Resource.CATALOG, "A number or SKU of the request was taken meanwhile; retry."
        ) from exc


async def create_product(
    conn: AsyncConnection, tenant: Tenant, request: CreateProductRequest
) -> str:
    _check_period(request.effective_start_date, request.effective_end_date)
    category = _category(request.category)
    custom_fields = request.custom_fields()
    await _reject_taken(conn, tenant, products.c.sku, request.sku, "SKU")
    await _reject_taken(
        conn, tenant, products.c.product_number, request.product_number, "ProductNumber"
    )
    (number,) = await next_numbers(conn, tenant, "product_number", 1)
    product_id = new_id()
    await _insert(
        conn,
        products,
        {
            "tenant_id": tenant.id,
            "id": product_id,
            "name": request.name,
            "sku": request.sku or f"SKU-{number:08d}",
            "product_number": request.product_number or f"PC-{number:08d}",
            "category": category,
            "description": request.description,
            "effective_start_date": request.effective_start_date,
            "effective_end_date": request.effective_end_date,
            "custom_fields": custom_fields,
        },
    )
    return product_id


async def create_product_rate_plan(
    conn: AsyncConnection, tenant: Tenant, request: CreateProductRatePlanRequest
) -> str:
    custom_fields = request.custom_fields()
    product = (
        await conn.execute(
            select(products.c.effective_start_date, products.c.effective_end_date).where(
                products.c.tenant_id == tenant.id, products.c.id == request.product_id
            )
        )
    ).one_or_none()
    if product is None:
        raise _invalid_id("ProductId", "product", request.product_id)
    start = request.effective_start_date or product.effective_start_date
    end = request.effective_end_date or product.effective_end_date
    _check_period(start, end)
    number = await _chosen_or_next_number(
        conn,
        tenant,
        product_rate_plans.c.product_rate_plan_number,
        request.product_rate_plan_number,
        "ProductRatePlanNumber",
        "PRP-",
    )
    plan_id = new_id()
    await _insert(
        conn,
        product_rate_plans,
        {
            "tenant_id": tenant.id,
            "id": plan_id,
            "product_id": request.product_id,
            "product_rate_plan_number": number,
            "name": request.name,
            "description": request.description,
            "effective_start_date": start,
            "effective_end_date": end,
            "custom_fields": custom_fields,
        },
    )
    return plan_id


async def create_product_rate_plan_charge(
    conn: AsyncConnection, tenant: Tenant, request: CreateProductRatePlanChargeRequest
) -> str:
    values = _charge_values(request)
    plan_found = await conn.scalar(
        select(product_rate_plans.c.id).where(
            product_rate_plans.c.tenant_id == tenant.id,
            product_rate_plans.c.id == request.product_rate_plan_id,
        )
    )
    if plan_found is None:
        raise _invalid_id("ProductRatePlanId", "product rate plan", request.product_rate_plan_id)
    charge_count = await conn.scalar(
        select(func.count())
        .select_from(product_rate_plan_charges)
        .where(
            product_rate_plan_charges.c.tenant_id == tenant.id,
            product_rate_plan_charges.c.product_rate_plan_id == request.product_rate_plan_id,
        )
    )
    if (charge_count or 0) >= MAX_CHARGES_PER_RATE_PLAN:
        raise ZuoraError(
            Resource.CATALOG,
            Category.LIMIT_EXCEEDED,
            f"A product rate plan holds at most {MAX_CHARGES_PER_RATE_PLAN} charges.",
        )
    number = await _chosen_or_next_number(
        conn,
        tenant,
        product_rate_plan_charges.c.product_rate_plan_charge_number,
        request.product_rate_plan_charge_number,
        "ProductRatePlanChargeNumber",
        "PRPC-",
    )
    charge_id = new_id()
    await _insert(
        conn,
        product_rate_plan_charges,
        {
            "tenant_id": tenant.id,
            "id": charge_id,
            "product_rate_plan_id": request.product_rate_plan_id,
            "product_rate_plan_charge_number": number,
            **values,
        },
    )
    return charge_id


# --- reads: the CRUD object API (PascalCase, CRUD vocabulary) -----------------------------------


def _object_datetime(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


async def _row_by_id(
    conn: AsyncConnection, tenant: Tenant, table: Table, key: str, kind: str
) -> Mapping[Any, Any]:
    row = (
        await conn.execute(select(table).where(table.c.tenant_id == tenant.id, table.c.id == key))
    ).one_or_none()
    if row is None:
        raise not_found(Resource.CATALOG, kind, key)
    return row._mapping


async def get_product_object(conn: AsyncConnection, tenant: Tenant, key: str) -> dict[str, Any]:
    row = await _row_by_id(conn, tenant, products, key, "product")
    return {
        "Id": row["id"],
        "Name": row["name"],
        "SKU": row["sku"],
        "ProductNumber": row["product_number"],
        "Category": row["category"],
        "Description": row["description"],
        "EffectiveStartDate": row["effective_start_date"],
        "EffectiveEndDate": row["effective_end_date"],
        "AllowFeatureChanges": False,
        "CreatedDate": _object_datetime(row["created_at"]),
        "UpdatedDate": _object_datetime(row["updated_at"]),
        **row["custom_fields"],
    }


async def get_product_rate_plan_object(
    conn: AsyncConnection, tenant: Tenant, key: str
) -> dict[str, Any]:
    row = await _row_by_id(conn, tenant, product_rate_plans, key, "product rate plan")
    return {
        "Id": row["id"],
        "Name": row["name"],
        "ProductId": row["product_id"],
        "ProductRatePlanNumber": row["product_rate_plan_number"],
        "Description": row["description"],
        "EffectiveStartDate": row["effective_start_date"],
        "EffectiveEndDate": row["effective_end_date"],
        "CreatedDate": _object_datetime(row["created_at"]),
        "UpdatedDate": _object_datetime(row["updated_at"]),
        **row["custom_fields"],
    }


async def get_product_rate_plan_charge_object(
    conn: AsyncConnection, tenant: Tenant, key: str
) -> dict[str, Any]:
    row = await _row_by_id(conn, tenant, product_rate_plan_charges, key, "product rate plan charge")
    charge = _charge(row)
    return {
        "Id": charge.id,
        "ProductRatePlanId": row["product_rate_plan_id"],
        "ProductRatePlanChargeNumber": row["product_rate_plan_charge_number"],
        "Name": charge.name,
        "ChargeType": charge.charge_type.crud,
        "ChargeModel": charge.charge_model.crud,
        "BillingPeriod": charge.billing_period.crud if charge.billing_period else None,
        "SpecificBillingPeriod": charge.specific_billing_period,
        "BillingTiming": charge.billing_timing.crud,
        "BillCycleType": charge.bill_cycle_type.crud,
        "BillCycleDay": charge.bill_cycle_day,
        "TriggerEvent": charge.trigger_event.crud,
        "EndDateCondition": charge.end_date_condition.crud,
        "UpToPeriods": charge.up_to_periods,
        "UpToPeriodsType": (
            UpToPeriodsType(charge.up_to_periods_type).crud if charge.up_to_periods_type else None
        ),
        "ListPriceBase": LIST_PRICE_BASE,
        "DefaultQuantity": charge.default_quantity,
        "UOM": charge.uom,
        "Description": row["description"],
        "ProductRatePlanChargeTierData": {
            "ProductRatePlanChargeTier": [
                {
                    "Currency": currency,
                    "Tier": tier.tier,
                    "StartingUnit": tier.starting_unit,
                    "EndingUnit": tier.ending_unit,
                    "Price": tier.price,
                    "PriceFormat": tier.price_format.crud,
                }
                for currency, tiers in charge.tiers.items()
                for tier in tiers
            ]
        },
        "CreatedDate": _object_datetime(row["created_at"]),
        "UpdatedDate": _object_datetime(row["updated_at"]),
        **row["custom_fields"],
    }


# --- reads: the v1 catalog API (camelCase, Orders/GET vocabulary) -------------------------------


def _page_window(page: int, page_size: int) -> tuple[int, int]:
    """(offset, rows per page) of a v1 page; sizes above 40 are served as 40, as Zuora does."""
    if page < 1:
        raise invalid_value(Resource.CATALOG, "page", "must be 1 or more.")
    if page_size < 1:
        raise invalid_value(Resource.CATALOG, "pageSize", "must be 1 or more.")
    page_size = min(page_size, MAX_PAGE_SIZE)
    return (page - 1) * page_size, page_size


def _product_json(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "sku": row["sku"],
        "productNumber": row["product_number"],
        "name": row["name"],
        "category": row["category"],
        "description": row["description"],
        "effectiveStartDate": row["effective_start_date"],
        "effectiveEndDate": row["effective_end_date"],
        "productRatePlans": f"/v1/rateplan/{row['id']}/productRatePlan",
        "productFeatures": [],
        "tags": None,
        **row["custom_fields"],
    }


def _pricing_summary(charge: CatalogCharge) -> list[str]:
    unit = charge.uom or "unit"

    def price_text(currency: str, tier: Tier) -> str:
        match tier.price_format:
            case PriceFormat.FLAT_FEE:
                return f"{currency}{tier.price:f}"
            case PriceFormat.PER_UNIT:
                return f"{currency}{tier.price:f}/{unit}"

    summary = []
    for currency, tiers in charge.tiers.items():
        match charge.charge_model:
            case ChargeModel.FLAT_FEE | ChargeModel.PER_UNIT:
                summary.append(price_text(currency, tiers[0]))
            case ChargeModel.TIERED | ChargeModel.VOLUME:
                summary.append(
                    "; ".join(
                        (
                            f"{tier.starting_unit:f} to {tier.ending_unit:f} {unit}"
                            if tier.ending_unit is not None
                            else f"{tier.starting_unit:f} or more {unit}"
                        )
                        + f": {price_text(currency, tier)}"
                        + (" flat fee" if tier.price_format is PriceFormat.FLAT_FEE else "")
                        for tier in tiers
                    )
                )
    return summary


def _charge_json(row: Mapping[Any, Any]) -> dict[str, Any]:
    charge = _charge(row)
    tiered = charge.charge_model in (ChargeModel.TIERED, ChargeModel.VOLUME)
    return {
        "id": charge.id,
        "productRatePlanChargeNumber": row["product_rate_plan_charge_number"],
        "name": charge.name,
        "type": charge.charge_type.value,
        "model": charge.charge_model.value,
        "description": row["description"],
        "billingPeriod": charge.billing_period.value if charge.billing_period else None,
        "specificBillingPeriod": charge.specific_billing_period,
        "billingTiming": charge.billing_timing.value,
        "billCycleType": charge.bill_cycle_type.value,
        "billingDay": (
            str(charge.bill_cycle_day)
            if charge.bill_cycle_day is not None
            else charge.bill_cycle_type.value
        ),
        "triggerEvent": charge.trigger_event.value,
        "endDateCondition": charge.end_date_condition.value,
        "upToPeriods": charge.up_to_periods,
        "upToPeriodsType": charge.up_to_periods_type,
        "listPriceBase": "Per_Billing_Period",
        "defaultQuantity": charge.default_quantity,
        "uom": charge.uom,
        "pricing": [
            {
                "currency": currency,
                "price": None if tiered else tiers[0].price,
                "tiers": [tier.as_json() for tier in tiers] if tiered else None,
            }
            for currency, tiers in charge.tiers.items()
        ],
        "pricingSummary": _pricing_summary(charge),
        **row["custom_fields"],
    }


def _rate_plan_json(
    row: Mapping[Any, Any], charge_rows: Sequence[Mapping[Any, Any]]
) -> dict[str, Any]:
    return {
        "id": row["id"],
        "productRatePlanNumber": row["product_rate_plan_number"],
        "name": row["name"],
        "description": row["description"],
        "effectiveStartDate": row["effective_start_date"],
        "effectiveEndDate": row["effective_end_date"],
        "status": "Active",
        "productRatePlanCharges": [_charge_json(charge) for charge in charge_rows],
        **row["custom_fields"],
    }


async def _charge_rows_by_plan(
    conn: AsyncConnection, tenant: Tenant, plan_ids: Sequence[str]
) -> dict[str, list[Mapping[Any, Any]]]:
    """The charges of the plans, in creation order, in one query."""
    found: dict[str, list[Mapping[Any, Any]]] = {plan_id: [] for plan_id in plan_ids}
    if not plan_ids:
        return found
    rows = await conn.execute(
        select(product_rate_plan_charges)
        .where(
            product_rate_plan_charges.c.tenant_id == tenant.id,
            product_rate_plan_charges.c.product_rate_plan_id.in_(list(plan_ids)),
        )
        .order_by(product_rate_plan_charges.c.product_rate_plan_id, product_rate_plan_charges.c.id)
    )
    for row in rows:
        found[row.product_rate_plan_id].append(row._mapping)
    return found


async def _product_row(conn: AsyncConnection, tenant: Tenant, key: str) -> Mapping[Any, Any]:
    """The product whose id or SKU is `key` (an id match wins)."""
    row = (
        await conn.execute(
            select(products)
            .where(
                products.c.tenant_id == tenant.id, or_(products.c.id == key, products.c.sku == key)
            )
            .order_by((products.c.id == key).desc())
            .limit(1)
        )
    ).one_or_none()
    if row is None:
        raise not_found(Resource.CATALOG, "product", key)
    return row._mapping


async def list_products(
    conn: AsyncConnection, tenant: Tenant, page: int, page_size: int
) -> tuple[list[dict[str, Any]], bool]:
    """One page of products, newest first, and whether another page follows."""
    offset, limit = _page_window(page, page_size)
    rows = (
        await conn.execute(
            select(products)
            .where(products.c.tenant_id == tenant.id)
            .order_by(products.c.id.desc())
            .offset(offset)
            .limit(limit + 1)
        )
    ).all()
    return [_product_json(row._mapping) for row in rows[:limit]], len(rows) > limit


async def get_product(conn: AsyncConnection, tenant: Tenant, key: str) -> dict[str, Any]:
    return {"success": True, **_product_json(await _product_row(conn, tenant, key))}


async def list_product_rate_plans(
    conn: AsyncConnection, tenant: Tenant, product_key: str, page: int, page_size: int
) -> tuple[list[dict[str, Any]], bool]:
    """One page of the product's rate plans, each with its charges, and whether more follow."""
    offset, limit = _page_window(page, page_size)
    product = await _product_row(conn, tenant, product_key)
    rows = (
        await conn.execute(
            select(product_rate_plans)
            .where(
                product_rate_plans.c.tenant_id == tenant.id,
                product_rate_plans.c.product_id == product["id"],
            )
            .order_by(product_rate_plans.c.id)
            .offset(offset)
            .limit(limit + 1)
        )
    ).all()
    plans = [row._mapping for row in rows[:limit]]
    charges = await _charge_rows_by_plan(conn, tenant, [plan["id"] for plan in plans])
    return [_rate_plan_json(plan, charges[plan["id"]]) for plan in plans], len(rows) > limit


async def get_product_rate_plan(conn: AsyncConnection, tenant: Tenant, key: str) -> dict[str, Any]:
    """The rate plan whose id or number is `key`."""
    row = (
        await conn.execute(
            select(product_rate_plans)
            .where(
                product_rate_plans.c.tenant_id == tenant.id,
                or_(
                    product_rate_plans.c.id == key,
                    product_rate_plans.c.product_rate_plan_number == key,
                ),
            )
            .order_by((product_rate_plans.c.id == key).desc())
            .limit(1)
        )
    ).one_or_none()
    if row is None:
        raise not_found(Resource.CATALOG, "product rate plan", key)
    charges = await _charge_rows_by_plan(conn, tenant, [row.id])
    return {"success": True, **_rate_plan_json(row._mapping, charges[row.id])}


# --- for orders and subscriptions ---------------------------------------------------------------


async def load_rate_plans(
    conn: AsyncConnection, tenant: Tenant, keys: Iterable[str]
) -> dict[str, CatalogRatePlan]:
    """The rate plans named by `keys` (product rate plan ids or numbers), keyed by the given key;
    unknown keys are absent. Two queries whatever the number of keys."""
    wanted = list(dict.fromkeys(keys))
    assert len(wanted) <= MAX_RATE_PLAN_KEYS, len(wanted)
    if not wanted:
        return {}
    plans = (
        await conn.execute(
            select(
                product_rate_plans.c.id,
                product_rate_plans.c.product_rate_plan_number,
                product_rate_plans.c.name,
                product_rate_plans.c.product_id,
                products.c.name.label("product_name"),
            )
            .join(
                products,
                and_(
                    products.c.tenant_id == product_rate_plans.c.tenant_id,
                    products.c.id == product_rate_plans.c.product_id,
                ),
            )
            .where(
                product_rate_plans.c.tenant_id == tenant.id,
                or_(
                    product_rate_plans.c.id.in_(wanted),
                    product_rate_plans.c.product_rate_plan_number.in_(wanted),
                ),
            )
        )
    ).all()
    charges = await _charge_rows_by_plan(conn, tenant, [plan.id for plan in plans])
    by_number: dict[str, CatalogRatePlan] = {}
    by_id: dict[str, CatalogRatePlan] = {}
    for plan in plans:
        loaded = CatalogRatePlan(
            id=plan.id,
            number=plan.product_rate_plan_number,
            name=plan.name,
            product_id=plan.product_id,
            product_name=plan.product_name,
            charges=tuple(_charge(row) for row in charges[plan.id]),
        )
        by_id[plan.id] = loaded
        by_number[plan.product_rate_plan_number] = loaded
    found = {key: by_id.get(key) or by_number.get(key) for key in wanted}
    return {key: plan for key, plan in found.items() if plan is not None}
