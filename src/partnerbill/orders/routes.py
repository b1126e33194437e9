"""`/v1/orders` (synchronous), `/v1/async/orders` and `/v1/async-jobs/{jobId}`."""

from typing import Annotated

from fastapi import Query

from partnerbill.core.auth import CurrentTenant
from partnerbill.core.db import transaction
from partnerbill.core.json import DecimalJSONRoute, ZuoraJSONResponse
from partnerbill.core.responses import ok
from partnerbill.core.routing import FeatureRouter
from partnerbill.core.tenants import get_settings
from partnerbill.orders import jobs
from partnerbill.orders import responses as answers
from partnerbill.orders.drafts import place_order
from partnerbill.orders.lookup_routes import router as lookup_router
from partnerbill.orders.preview import PreviewOrderRequest
from partnerbill.orders.schemas import CreateOrderRequest
from partnerbill.orders.service import CreateOrderResponse, GetOrderResponse, order_json

router = FeatureRouter(route_class=DecimalJSONRoute, tags=["Orders"])
router.include_router(lookup_router)


@router.post("/v1/orders", responses=ok(answers.CreatedOrder))
async def create_order_synchronously(
    request: CreateOrderRequest,
    tenant: CurrentTenant,
    return_ids: Annotated[bool, Query(alias="returnIds")] = False,
) -> CreateOrderResponse:
    async with transaction() as conn:
        limit = (await get_settings(conn, tenant)).order_sync_limit
        return await place_order(conn, tenant, request, limit=limit, return_ids=return_ids)


@router.post("/v1/async/orders", status_code=202, responses=ok(answers.AcceptedJob, 202))
async def create_order_asynchronously(
    request: CreateOrderRequest, tenant: CurrentTenant
) -> ZuoraJSONResponse:
    """Answers 202 with a job id (the SDK reads only 202 here); the order runs in the worker."""
    return await _accept_job(request, tenant, "AsyncCreateOrder")


@router.post("/v1/async/orders/preview", status_code=202, responses=ok(answers.AcceptedJob, 202))
async def preview_order_asynchronously(
    request: PreviewOrderRequest, tenant: CurrentTenant
) -> ZuoraJSONResponse:
    """Answers 202 with a job id; the worker previews the order (writing nothing) and the job's
    result holds the `previewResult`."""
    return await _accept_job(request, tenant, "AsyncPreviewOrder")


async def _accept_job(
    request: CreateOrderRequest, tenant: CurrentTenant, job_type: str
) -> ZuoraJSONResponse:
    async with transaction() as conn:
        job_id = await jobs.accept_job(conn, tenant, request, job_type)
    return ZuoraJSONResponse({"success": True, "jobId": job_id}, status_code=202)


@router.get("/v1/async-jobs/{job_id}", responses=ok(answers.AsyncJob))
async def get_async_job(job_id: str, tenant: CurrentTenant) -> jobs.AsyncJobAnswer:
    """Status Processing | Failed (with `errors`) | Completed (with `result`, Zuora's shape).
    zuora-sdk 3.21 cannot parse a non-null `result` (its oneOf matches twice); see the README
    for how to read it."""
    async with transaction() as conn:
        return await jobs.async_job_json(conn, tenant, job_id)


@router.get("/v1/orders/{order_number}", responses=ok(answers.OrderAnswer))
async def get_order(order_number: str, tenant: CurrentTenant) -> GetOrderResponse:
    async with transaction() as conn:
        return await order_json(conn, tenant, order_number)
