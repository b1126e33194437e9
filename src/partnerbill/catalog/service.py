"""Catalog writes: create products, rate plans and charges through the CRUD object API.

Every value is validated (`catalog.validation`) before anything is written, so a refused
request leaves nothing behind. No row is locked: a chosen number or SKU is checked free first,
and a race for it lost at insert (the unique key) is refused as a business rule.
"""

from typing import Any

from sqlalchemy import Column, Table, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.catalog.schemas import (
    CreateProductRatePlanChargeRequest,
    CreateProductRatePlanRequest,
    CreateProductRequest,
)
from partnerbill.catalog.validation import charge_values, check_period, invalid_id, product_category
from partnerbill.core.errors import Category, Resource, ZuoraError, business_rule, invalid_value
from partnerbill.core.ids import new_id
from partnerbill.core.tenants import Tenant, document_number, next_numbers
from partnerbill.tables.catalog import product_rate_plan_charges, product_rate_plans, products

MAX_NESTED_ROWS = 300  # Zuora caps non-paginated nested arrays at 300 rows
MAX_CHARGES_PER_RATE_PLAN = MAX_NESTED_ROWS


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
    return document_number(prefix, sequence)


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
    check_period(request.effective_start_date, request.effective_end_date)
    category = product_category(request.category)
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
            "sku": request.sku or document_number("SKU-", number),
            "product_number": request.product_number or document_number("PC-", number),
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
        raise invalid_id("ProductId", "product", request.product_id)
    start = request.effective_start_date or product.effective_start_date
    end = request.effective_end_date or product.effective_end_date
    check_period(start, end)
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
    values = charge_values(request)
    plan_found = await conn.scalar(
        select(product_rate_plans.c.id).where(
            product_rate_plans.c.tenant_id == tenant.id,
            product_rate_plans.c.id == request.product_rate_plan_id,
        )
    )
    if plan_found is None:
        raise invalid_id("ProductRatePlanId", "product rate plan", request.product_rate_plan_id)
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
