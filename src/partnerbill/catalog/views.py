"""Catalog reads: the CRUD object API (PascalCase, CRUD vocabulary: "Per Unit Pricing"), the v1
catalog API (camelCase, Orders/GET vocabulary: "PerUnit"), and the rate plans orders and
subscriptions subscribe to (`load_rate_plans`). Reads only: no lock is taken.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, Table, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

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
from partnerbill.catalog.tiers import tiers_by_currency_from_json
from partnerbill.catalog.validation import LIST_PRICE_BASE
from partnerbill.core.errors import Resource, business_rule, not_found
from partnerbill.core.pagination import PageRequest
from partnerbill.core.tenants import Tenant
from partnerbill.tables.catalog import (
    ProductRatePlanChargeRow,
    ProductRatePlanRow,
    ProductRatePlanStatus,
    ProductRow,
    product_rate_plan_charges,
    product_rate_plans,
    products,
)

DEFAULT_PAGE_SIZE = 10
MAX_RATE_PLAN_KEYS = 1000


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


def _charge(row: ProductRatePlanChargeRow) -> CatalogCharge:
    return CatalogCharge(
        id=row.id,
        name=row.name,
        charge_type=ChargeType(row.charge_type),
        charge_model=ChargeModel(row.charge_model),
        billing_period=BillingPeriod(row.billing_period) if row.billing_period else None,
        specific_billing_period=row.specific_billing_period,
        billing_timing=BillingTiming(row.billing_timing),
        bill_cycle_type=BillCycleType(row.bill_cycle_type),
        bill_cycle_day=row.bill_cycle_day,
        trigger_event=TriggerEvent(row.trigger_event),
        end_date_condition=EndDateCondition(row.end_date_condition),
        up_to_periods=row.up_to_periods,
        up_to_periods_type=row.up_to_periods_type,
        default_quantity=row.default_quantity,
        uom=row.uom,
        tiers=tiers_by_currency_from_json(row.tiers),
    )


# --- reads: the CRUD object API (PascalCase, CRUD vocabulary) -----------------------------------


def _object_datetime(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


async def _row_by_id(
    conn: AsyncConnection, tenant: Tenant, table: Table, key: str, kind: str
) -> Row[Any]:
    row = (
        await conn.execute(select(table).where(table.c.tenant_id == tenant.id, table.c.id == key))
    ).one_or_none()
    if row is None:
        raise not_found(Resource.CATALOG, kind, key)
    return row


async def get_product_object(conn: AsyncConnection, tenant: Tenant, key: str) -> dict[str, Any]:
    row: ProductRow = await _row_by_id(conn, tenant, products, key, "product")
    return {
        "Id": row.id,
        "Name": row.name,
        "SKU": row.sku,
        "ProductNumber": row.product_number,
        "Category": row.category,
        "Description": row.description,
        "EffectiveStartDate": row.effective_start_date,
        "EffectiveEndDate": row.effective_end_date,
        "AllowFeatureChanges": False,
        "CreatedDate": _object_datetime(row.created_at),
        "UpdatedDate": _object_datetime(row.updated_at),
        **row.custom_fields,
    }


async def get_product_rate_plan_object(
    conn: AsyncConnection, tenant: Tenant, key: str
) -> dict[str, Any]:
    row: ProductRatePlanRow = await _row_by_id(
        conn, tenant, product_rate_plans, key, "product rate plan"
    )
    return {
        "Id": row.id,
        "Name": row.name,
        "ProductId": row.product_id,
        "ProductRatePlanNumber": row.product_rate_plan_number,
        "Description": row.description,
        "EffectiveStartDate": row.effective_start_date,
        "EffectiveEndDate": row.effective_end_date,
        "CreatedDate": _object_datetime(row.created_at),
        "UpdatedDate": _object_datetime(row.updated_at),
        **row.custom_fields,
    }


async def get_product_rate_plan_charge_object(
    conn: AsyncConnection, tenant: Tenant, key: str
) -> dict[str, Any]:
    row: ProductRatePlanChargeRow = await _row_by_id(
        conn, tenant, product_rate_plan_charges, key, "product rate plan charge"
    )
    charge = _charge(row)
    return {
        "Id": charge.id,
        "ProductRatePlanId": row.product_rate_plan_id,
        "ProductRatePlanChargeNumber": row.product_rate_plan_charge_number,
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
        "Description": row.description,
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
        "CreatedDate": _object_datetime(row.created_at),
        "UpdatedDate": _object_datetime(row.updated_at),
        **row.custom_fields,
    }


# --- reads: the v1 catalog API (camelCase, Orders/GET vocabulary) -------------------------------


def _product_json(row: ProductRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "sku": row.sku,
        "productNumber": row.product_number,
        "name": row.name,
        "category": row.category,
        "description": row.description,
        "effectiveStartDate": row.effective_start_date,
        "effectiveEndDate": row.effective_end_date,
        "productRatePlans": f"/v1/rateplan/{row.id}/productRatePlan",
        "productFeatures": [],
        "tags": None,
        **row.custom_fields,
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


def _charge_json(row: ProductRatePlanChargeRow) -> dict[str, Any]:
    charge = _charge(row)
    tiered = charge.charge_model in (ChargeModel.TIERED, ChargeModel.VOLUME)
    return {
        "id": charge.id,
        "productRatePlanChargeNumber": row.product_rate_plan_charge_number,
        "name": charge.name,
        "type": charge.charge_type.value,
        "model": charge.charge_model.value,
        "description": row.description,
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
        **row.custom_fields,
    }


def _rate_plan_json(
    row: ProductRatePlanRow, charge_rows: Sequence[ProductRatePlanChargeRow]
) -> dict[str, Any]:
    return {
        "id": row.id,
        "productRatePlanNumber": row.product_rate_plan_number,
        "name": row.name,
        "description": row.description,
        "effectiveStartDate": row.effective_start_date,
        "effectiveEndDate": row.effective_end_date,
        "status": ProductRatePlanStatus.ACTIVE,
        "productRatePlanCharges": [_charge_json(charge) for charge in charge_rows],
        **row.custom_fields,
    }


async def _charge_rows_by_plan(
    conn: AsyncConnection, tenant: Tenant, plan_ids: Sequence[str]
) -> dict[str, list[ProductRatePlanChargeRow]]:
    """The charges of the plans, in creation order, in one query."""
    found: dict[str, list[ProductRatePlanChargeRow]] = {plan_id: [] for plan_id in plan_ids}
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
        found[row.product_rate_plan_id].append(row)
    return found


async def _product_row(conn: AsyncConnection, tenant: Tenant, key: str) -> ProductRow:
    """The product whose id or SKU is `key` (an id match wins)."""
    row: ProductRow | None = (
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
    return row


async def list_products(
    conn: AsyncConnection, tenant: Tenant, window: PageRequest
) -> tuple[list[dict[str, Any]], bool]:
    """One page of products, newest first, and whether another page follows."""
    offset, limit = window.offset, window.limit
    rows = (
        await conn.execute(
            select(products)
            .where(products.c.tenant_id == tenant.id)
            .order_by(products.c.id.desc())
            .offset(offset)
            .limit(limit + 1)
        )
    ).all()
    return [_product_json(row) for row in rows[:limit]], len(rows) > limit


async def get_product(conn: AsyncConnection, tenant: Tenant, key: str) -> dict[str, Any]:
    return {"success": True, **_product_json(await _product_row(conn, tenant, key))}


async def list_product_rate_plans(
    conn: AsyncConnection, tenant: Tenant, product_key: str, window: PageRequest
) -> tuple[list[dict[str, Any]], bool]:
    """One page of the product's rate plans, each with its charges, and whether more follow."""
    offset, limit = window.offset, window.limit
    product = await _product_row(conn, tenant, product_key)
    rows = (
        await conn.execute(
            select(product_rate_plans)
            .where(
                product_rate_plans.c.tenant_id == tenant.id,
                product_rate_plans.c.product_id == product.id,
            )
            .order_by(product_rate_plans.c.id)
            .offset(offset)
            .limit(limit + 1)
        )
    ).all()
    plans: list[ProductRatePlanRow] = list(rows[:limit])
    charges = await _charge_rows_by_plan(conn, tenant, [plan.id for plan in plans])
    return [_rate_plan_json(plan, charges[plan.id]) for plan in plans], len(rows) > limit


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
    return {"success": True, **_rate_plan_json(row, charges[row.id])}


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
