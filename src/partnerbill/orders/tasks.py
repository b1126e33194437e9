"""Asynchronous orders: the job behind `POST /v1/async/orders` and `POST /v1/async/orders/preview`
(the job type says which; a preview writes nothing but its job's outcome)."""

from collections.abc import Mapping
from typing import Any

import structlog
from procrastinate import Blueprint
from sqlalchemy import ColumnElement, func, select, update

from partnerbill.core.db import transaction
from partnerbill.core.errors import ZuoraError
from partnerbill.core.locking import for_update
from partnerbill.core.tenants import Tenant, get_settings
from partnerbill.orders.drafts import place_order
from partnerbill.orders.preview import PreviewOrderRequest, preview_order
from partnerbill.orders.schemas import CreateOrderRequest
from partnerbill.tables.orders import JobStatus, async_jobs

log = structlog.get_logger(__name__)
order_tasks = Blueprint()


@order_tasks.task(queue="orders", name="process_async_order")
async def process_async_order(tenant_id: str, tenant_number: int, job_id: str) -> str:
    """Run the order and record its outcome. The order and `Completed` commit together, so a
    worker that dies mid-order leaves the job `Processing`; the stalled-job recovery reruns it."""
    tenant = Tenant(id=tenant_id, number=tenant_number)
    where = (async_jobs.c.tenant_id == tenant.id) & (async_jobs.c.id == job_id)
    try:
        async with transaction() as conn:
            job = (await conn.execute(for_update(select(async_jobs).where(where)))).one_or_none()
            if job is None or job.status != JobStatus.PROCESSING:
                return "skipped"
            limit = (await get_settings(conn, tenant)).order_async_limit
            result: Mapping[str, Any]
            if job.job_type == "AsyncPreviewOrder":
                preview = PreviewOrderRequest.model_validate(job.request)
                result = await preview_order(conn, tenant, preview, limit=limit)
            else:
                request = CreateOrderRequest.model_validate(job.request)
                result = await place_order(conn, tenant, request, limit=limit, return_ids=False)
            await conn.execute(
                update(async_jobs)
                .where(where)
                .values(
                    status=JobStatus.COMPLETED,
                    result={**result, "jobType": job.job_type},
                    updated_at=func.now(),
                )
            )
        return JobStatus.COMPLETED
    except ZuoraError as error:
        await _fail(where, "; ".join(reason.message for reason in error.reasons))
        log.info("async_order_failed", job_id=job_id, reason=error.reasons[0].message)
        return JobStatus.FAILED
    except Exception:
        # Not the order's fault: the job fails (procrastinate records why) and so does the
        # client's view of it, instead of staying Processing for ever.
        await _fail(where, "Internal error while processing the order; submit it again.")
        raise


async def _fail(where: ColumnElement[bool], errors: str) -> None:
    async with transaction() as conn:
        await conn.execute(
            update(async_jobs)
            .where(where)
            .values(status=JobStatus.FAILED, errors=errors, updated_at=func.now())
        )
