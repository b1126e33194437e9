"""`/v1/payments` and `/v1/refunds`."""

from typing import Annotated, Any

from fastapi import Query, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.accounts.tables import accounts
from partnerbill.core.auth import CurrentTenant
from partnerbill.core.db import transaction
from partnerbill.core.errors import Resource, not_found
from partnerbill.core.json import DecimalJSONRoute
from partnerbill.core.pagination import MAX_PAGE_SIZE, Page, PageSize, paged
from partnerbill.core.responses import ok
from partnerbill.core.routing import FeatureRouter
from partnerbill.core.tenants import Tenant
from partnerbill.payments import edits, service
from partnerbill.payments import responses as answers
from partnerbill.payments.schemas import (
    ApplyPaymentRequest,
    CreatePaymentRequest,
    CreateRefundRequest,
    UpdatePaymentRequest,
    UpdateRefundRequest,
)
from partnerbill.payments.tables import payments, refunds

router = FeatureRouter(route_class=DecimalJSONRoute, tags=["Payments"])


@router.post("/v1/payments", responses=ok(answers.PaymentAnswer))
async def create_payment(request: CreatePaymentRequest, tenant: CurrentTenant) -> dict[str, Any]:
    async with transaction() as conn:
        return await service.create_payment(conn, tenant, request)


@router.put("/v1/payments/{payment_key}/apply", responses=ok(answers.PaymentAnswer))
async def apply_payment(
    payment_key: str, request: ApplyPaymentRequest, tenant: CurrentTenant
) -> dict[str, Any]:
    async with transaction() as conn:
        return await service.apply_payment(conn, tenant, payment_key, request, 1)


@router.put("/v1/payments/{payment_key}/unapply", responses=ok(answers.PaymentAnswer))
async def unapply_payment(
    payment_key: str, request: ApplyPaymentRequest, tenant: CurrentTenant
) -> dict[str, Any]:
    async with transaction() as conn:
        return await service.apply_payment(conn, tenant, payment_key, request, -1)


@router.post("/v1/payments/{payment_key}/refunds", responses=ok(answers.RefundAnswer))
async def refund_payment(
    payment_key: str, request: CreateRefundRequest, tenant: CurrentTenant
) -> dict[str, Any]:
    async with transaction() as conn:
        return await service.refund_payment(conn, tenant, payment_key, request)


@router.put("/v1/payments/{payment_key}/cancel", responses=ok(answers.PaymentAnswer))
async def cancel_payment(payment_key: str, tenant: CurrentTenant) -> dict[str, Any]:
    async with transaction() as conn:
        return await service.cancel_payment(conn, tenant, payment_key)


@router.put("/v1/payments/{payment_key}", responses=ok(answers.PaymentAnswer))
async def update_payment(
    payment_key: str, request: UpdatePaymentRequest, tenant: CurrentTenant
) -> dict[str, Any]:
    async with transaction() as conn:
        return await edits.update_payment(conn, tenant, payment_key, request)


@router.put("/v1/refunds/{refund_key}", responses=ok(answers.RefundAnswer))
async def update_refund(
    refund_key: str, request: UpdateRefundRequest, tenant: CurrentTenant
) -> dict[str, Any]:
    async with transaction() as conn:
        return await edits.update_refund(conn, tenant, refund_key, request)


async def _account_numbers(
    conn: AsyncConnection, tenant: Tenant, account_ids: set[str]
) -> dict[str, str]:
    rows = await conn.execute(
        select(accounts.c.id, accounts.c.account_number).where(
            accounts.c.tenant_id == tenant.id, accounts.c.id.in_(account_ids)
        )
    )
    return {row.id: row.account_number for row in rows}


@router.get("/v1/payments/{payment_key}", responses=ok(answers.PaymentAnswer))
async def get_payment(payment_key: str, tenant: CurrentTenant) -> dict[str, Any]:
    async with transaction() as conn:
        row = (
            await conn.execute(
                select(payments).where(
                    payments.c.tenant_id == tenant.id,
                    (payments.c.id == payment_key) | (payments.c.payment_number == payment_key),
                )
            )
        ).one_or_none()
        if row is None:
            raise not_found(Resource.PAYMENT, "payment", payment_key)
        numbers = await _account_numbers(conn, tenant, {row.account_id})
    return service.payment_json(row._mapping, numbers[row.account_id])


@router.get("/v1/payments", responses=ok(answers.Payments))
async def list_payments(
    tenant: CurrentTenant,
    http_request: Request,
    account_id: Annotated[str | None, Query(alias="accountId")] = None,
    status: Annotated[str | None, Query()] = None,
    payment_type: Annotated[str | None, Query(alias="type")] = None,
    page: Page = 1,
    page_size: PageSize = 20,
) -> dict[str, Any]:
    page_size = min(page_size, MAX_PAGE_SIZE)
    query = select(payments).where(payments.c.tenant_id == tenant.id)
    if account_id is not None:
        query = query.where(payments.c.account_id == account_id)
    if status is not None:
        query = query.where(payments.c.status == status)
    if payment_type is not None:
        query = query.where(payments.c.type == payment_type)
    async with transaction() as conn:
        rows = (
            await conn.execute(
                query.order_by(payments.c.created_at.desc(), payments.c.id.desc())
                .offset((page - 1) * page_size)
                .limit(page_size + 1)
            )
        ).all()
        numbers = await _account_numbers(conn, tenant, {row.account_id for row in rows})
    found = [
        _without_success(service.payment_json(row._mapping, numbers[row.account_id]))
        for row in rows[:page_size]
    ]
    return paged("payments", found, len(rows) > page_size, http_request, page, page_size)


@router.get("/v1/refunds/{refund_key}", responses=ok(answers.RefundAnswer))
async def get_refund(refund_key: str, tenant: CurrentTenant) -> dict[str, Any]:
    async with transaction() as conn:
        row = (
            await conn.execute(
                select(refunds, payments.c.payment_number)
                .outerjoin(
                    payments,
                    (payments.c.tenant_id == refunds.c.tenant_id)
                    & (payments.c.id == refunds.c.payment_id),
                )
                .where(
                    refunds.c.tenant_id == tenant.id,
                    (refunds.c.id == refund_key) | (refunds.c.refund_number == refund_key),
                )
            )
        ).one_or_none()
    if row is None:
        raise not_found(Resource.PAYMENT, "refund", refund_key)
    return service.refund_json(row._mapping, row.payment_number)


@router.get("/v1/refunds", responses=ok(answers.Refunds))
async def list_refunds(
    tenant: CurrentTenant,
    http_request: Request,
    account_id: Annotated[str | None, Query(alias="accountId")] = None,
    page: Page = 1,
    page_size: PageSize = 20,
) -> dict[str, Any]:
    page_size = min(page_size, MAX_PAGE_SIZE)
    query = (
        select(refunds, payments.c.payment_number)
        .outerjoin(
            payments,
            (payments.c.tenant_id == refunds.c.tenant_id) & (payments.c.id == refunds.c.payment_id),
        )
        .where(refunds.c.tenant_id == tenant.id)
    )
    if account_id is not None:
        query = query.where(refunds.c.account_id == account_id)
    async with transaction() as conn:
        rows = (
            await conn.execute(
                query.order_by(refunds.c.created_at.desc(), refunds.c.id.desc())
                .offset((page - 1) * page_size)
                .limit(page_size + 1)
            )
        ).all()
    found = [
        _without_success(service.refund_json(row._mapping, row.payment_number))
        for row in rows[:page_size]
    ]
    return paged("refunds", found, len(rows) > page_size, http_request, page, page_size)


def _without_success(document: dict[str, Any]) -> dict[str, Any]:
    """A document as a list entry: lists carry one `success`, at the top."""
    return {key: value for key, value in document.items() if key != "success"}
