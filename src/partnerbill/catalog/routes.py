"""The product catalog: writes through the CRUD object API (`/v1/object/...`, PascalCase), reads
through it and through the v1 catalog API (`/v1/catalog/...`, `/v1/rateplan/...`,
`/v1/product-rate-plans/...`, camelCase)."""

from typing import Any

from fastapi import Request

from partnerbill.catalog import responses as answers
from partnerbill.catalog import service, views
from partnerbill.catalog.schemas import (
    CreateProductRatePlanChargeRequest,
    CreateProductRatePlanRequest,
    CreateProductRequest,
)
from partnerbill.core.auth import CurrentTenant
from partnerbill.core.db import transaction
from partnerbill.core.json import DecimalJSONRoute
from partnerbill.core.pagination import PageRequest, page_request, paged
from partnerbill.core.responses import ok
from partnerbill.core.routing import FeatureRouter

router = FeatureRouter(route_class=DecimalJSONRoute, tags=["Catalog"])


def _created(object_id: str) -> dict[str, Any]:
    return {"Id": object_id, "Success": True}


@router.post("/v1/object/product", responses=ok(answers.CreatedObject))
async def create_product(request: CreateProductRequest, tenant: CurrentTenant) -> dict[str, Any]:
    async with transaction() as conn:
        return _created(await service.create_product(conn, tenant, request))


@router.post("/v1/object/product-rate-plan", responses=ok(answers.CreatedObject))
async def create_product_rate_plan(
    request: CreateProductRatePlanRequest, tenant: CurrentTenant
) -> dict[str, Any]:
    async with transaction() as conn:
        return _created(await service.create_product_rate_plan(conn, tenant, request))


@router.post("/v1/object/product-rate-plan-charge", responses=ok(answers.CreatedObject))
async def create_product_rate_plan_charge(
    request: CreateProductRatePlanChargeRequest, tenant: CurrentTenant
) -> dict[str, Any]:
    async with transaction() as conn:
        return _created(await service.create_product_rate_plan_charge(conn, tenant, request))


@router.get("/v1/object/product/{id}", responses=ok(answers.ObjectProduct))
async def get_product_object(id: str, tenant: CurrentTenant) -> dict[str, Any]:
    async with transaction() as conn:
        return await views.get_product_object(conn, tenant, id)


@router.get("/v1/object/product-rate-plan/{id}", responses=ok(answers.ObjectProductRatePlan))
async def get_product_rate_plan_object(id: str, tenant: CurrentTenant) -> dict[str, Any]:
    async with transaction() as conn:
        return await views.get_product_rate_plan_object(conn, tenant, id)


@router.get(
    "/v1/object/product-rate-plan-charge/{id}", responses=ok(answers.ObjectProductRatePlanCharge)
)
async def get_product_rate_plan_charge_object(id: str, tenant: CurrentTenant) -> dict[str, Any]:
    async with transaction() as conn:
        return await views.get_product_rate_plan_charge_object(conn, tenant, id)


@router.get("/v1/catalog/products", responses=ok(answers.Products))
async def get_products(
    tenant: CurrentTenant,
    http_request: Request,
    window: PageRequest = page_request(views.DEFAULT_PAGE_SIZE),
) -> dict[str, Any]:
    async with transaction() as conn:
        rows, more = await views.list_products(conn, tenant, window)
    return paged("products", rows, more, http_request, window, asked_size=True)


@router.get("/v1/catalog/product/{product_key}", responses=ok(answers.ProductAnswer))
async def get_product(product_key: str, tenant: CurrentTenant) -> dict[str, Any]:
    async with transaction() as conn:
        return await views.get_product(conn, tenant, product_key)


@router.get("/v1/rateplan/{product_key}/productRatePlan", responses=ok(answers.ProductRatePlans))
async def get_rate_plans_by_product(
    product_key: str,
    tenant: CurrentTenant,
    http_request: Request,
    window: PageRequest = page_request(views.DEFAULT_PAGE_SIZE),
) -> dict[str, Any]:
    async with transaction() as conn:
        rows, more = await views.list_product_rate_plans(conn, tenant, product_key, window)
    return paged("productRatePlans", rows, more, http_request, window, asked_size=True)


@router.get(
    "/v1/product-rate-plans/{product_rate_plan_key}", responses=ok(answers.ProductRatePlanAnswer)
)
async def get_product_rate_plan(
    product_rate_plan_key: str, tenant: CurrentTenant
) -> dict[str, Any]:
    async with transaction() as conn:
        return await views.get_product_rate_plan(conn, tenant, product_rate_plan_key)
