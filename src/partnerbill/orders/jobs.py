"""Asynchronous order jobs: accepting one (`POST /v1/async/orders` and its preview) and reading
its status; the job itself runs in `tasks`.

Accepting inserts the job's row and defers its task in the caller's transaction, so a request
that rolls back leaves no job and a committed one never loses its task. Nothing is locked.
"""

import uuid
from typing import Any, TypedDict

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.accounts.service import check_partner_flag
from partnerbill.core.errors import Category, Resource, ZuoraError, not_found
from partnerbill.core.jobs import defer_in_transaction
from partnerbill.core.tenants import Tenant, get_settings
from partnerbill.orders.schemas import CreateOrderRequest
from partnerbill.tables.orders import JobStatus, async_jobs


async def accept_job(
    conn: AsyncConnection, tenant: Tenant, request: CreateOrderRequest, job_type: str
) -> str:
    """The id of a new job running `request` (an order, or an order preview) in the worker."""
    job_id = str(uuid.uuid4())
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
            status=JobStatus.PROCESSING,
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
    return job_id


class AsyncJobAnswer(TypedDict):
    success: bool
    status: str  # a JobStatus
    errors: str | None
    result: dict[str, Any] | None  # the order's answer, as kept


async def async_job_json(conn: AsyncConnection, tenant: Tenant, job_id: str) -> AsyncJobAnswer:
    """Status Processing | Failed (with `errors`) | Completed (with `result`, Zuora's shape)."""
    job = (
        await conn.execute(
            select(async_jobs).where(async_jobs.c.tenant_id == tenant.id, async_jobs.c.id == job_id)
        )
    ).one_or_none()
    if job is None:
        raise not_found(Resource.ORDER, "job", job_id)
    return {"success": True, "status": job.status, "errors": job.errors, "result": job.result}
