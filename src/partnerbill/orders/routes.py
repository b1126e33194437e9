"""`/v1/orders` (synchronous), `/v1/async/orders` and `/v1/async-jobs/{jobId}`."""

import uuid
from typing import Annotated, Any

from fastapi import Query
from sqlalchemy import insert, select

from partnerbill.accounts.service import check_partner_flag
from partnerbill.core.auth import CurrentTenant
from partnerbill.core.db import transaction
from partnerbill.core.errors import Category, Resource, ZuoraError, not_found
from partnerbill.core.jobs import defer_in_transaction
from partnerbill.core.json import DecimalJSONRoute, ZuoraJSONResponse
from partnerbill.core.responses import ok
from partnerbill.core.routing import FeatureRouter
from partnerbill.core.tenants import get_settings
from partnerbill.orders import responses as answers
from partnerbill.orders.drafts import place_order
from partnerbill.orders.lookup_routes import router as lookup_router
from partnerbill.orders.preview import PreviewOrderRequest
from partnerbill.orders.schemas import CreateOrderRequest
from partnerbill.orders.service import order_json
from partnerbill.orders.tables import async_jobs

router = FeatureRouter(route_class=DecimalJSONRoute, tags=["Orders"])
router.include_router(lookup_router)


@router.post("/v1/orders", responses=ok(answers.CreatedOrder))
async def create_order_synchronously(
    request: CreateOrderRequest,
    tenant: CurrentTenant,
    return_ids: Annotated[bool, Query(alias="returnIds")] = False,
) -> dict[str, Any]:
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
    job_id = str(uuid.uuid4())
    async with transaction() as conn:
        limit = (await get_settings(conn, tenant)).order_async_limit
        if len(request.subscriptions) > limit or request.action_count > limit:
            raise ZuoraError(
                Resource.ORDER,
                Category.LIMIT_EXCEEDED,
                f"'subscriptions': at most {limit} subscriptions and order actions per "
                "asynchronous order (tenant setting).",
            )
        if request.new_account is not None:
            # Refused now, not by the job: the client learns it without polling.
            await check_partner_flag(conn, tenant, request.new_account.partner_account)
        await conn.execute(
            insert(async_jobs).values(
                tenant_id=tenant.id,
                id=job_id,
                job_type=job_type,
                status="Processing",
                request=request.model_dump(mode="json", by_alias=True, exclude_none=True),
            )
        )
        await defer_in_transaction(
            conn,
            "orders:process_async_order",
            tenant_id=tenant.id,
            tenant_number=tenant.number,
            job_id=job_id,
        )
    return ZuoraJSONResponse({"success": True, "jobId": job_id}, status_code=202)


@router.get("/v1/async-jobs/{job_id}", responses=ok(answers.AsyncJob))
async def get_async_job(job_id: str, tenant: CurrentTenant) -> dict[str, Any]:
    """Status Processing | Failed (with `errors`) | Completed (with `result`, Zuora's shape).
    zuora-sdk 3.21 cannot parse a non-null `result` (its oneOf matches twice); see the README
    for how to read it."""
    async with transaction() as conn:
        job = (
            await conn.execute(
                select(async_jobs).where(
                    async_jobs.c.tenant_id == tenant.id, async_jobs.c.id == job_id
                )
            )
        ).one_or_none()
    if job is None:
        raise not_found(Resource.ORDER, "job", job_id)
    return {"success": True, "status": job.status, "errors": job.errors, "result": job.result}


@router.get("/v1/orders/{order_number}", responses=ok(answers.OrderAnswer))
async def get_order(order_number: str, tenant: CurrentTenant) -> dict[str, Any]:
    async with transaction() as conn:
        return await order_json(conn, tenant, order_number)
