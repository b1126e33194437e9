"""`/v1/payments` and `/v1/refunds`."""

from typing import Annotated

from fastapi import Query, Request

from partnerbill.core.auth import CurrentTenant
from partnerbill.core.db import transaction
from partnerbill.core.json import DecimalJSONRoute
from partnerbill.core.pagination import PageRequest, page_request, paged
from partnerbill.core.responses import ok
from partnerbill.core.routing import FeatureRouter
from partnerbill.payments import edits, service, views
from partnerbill.payments import responses as answers
from partnerbill.payments.schemas import (
    ApplyPaymentRequest,
    CreatePaymentRequest,
    CreateRefundRequest,
    UpdatePaymentRequest,
    UpdateRefundRequest,
)
from partnerbill.payments.service import PaymentJson
from partnerbill.payments.settlement import RefundJson

router = FeatureRouter(route_class=DecimalJSONRoute, tags=["Payments"])


@router.post("/v1/payments", responses=ok(answers.PaymentAnswer))
async def create_payment(request: CreatePaymentRequest, tenant: CurrentTenant) -> PaymentJson:
    async with transaction() as conn:
        return await service.create_payment(conn, tenant, request)


@router.put("/v1/payments/{payment_key}/apply", responses=ok(answers.PaymentAnswer))
async def apply_payment(
    payment_key: str, request: ApplyPaymentRequest, tenant: CurrentTenant
) -> PaymentJson:
    async with transaction() as conn:
        return await service.apply_payment(conn, tenant, payment_key, request, 1)


@router.put("/v1/payments/{payment_key}/unapply", responses=ok(answers.PaymentAnswer))
async def unapply_payment(
    payment_key: str, request: ApplyPaymentRequest, tenant: CurrentTenant
) -> PaymentJson:
    async with transaction() as conn:
        return await service.apply_payment(conn, tenant, payment_key, request, -1)


@router.post("/v1/payments/{payment_key}/refunds", responses=ok(answers.RefundAnswer))
async def refund_payment(
    payment_key: str, request: CreateRefundRequest, tenant: CurrentTenant
) -> RefundJson:
    async with transaction() as conn:
        return await service.refund_payment(conn, tenant, payment_key, request)


@router.put("/v1/payments/{payment_key}/cancel", responses=ok(answers.PaymentAnswer))
async def cancel_payment(payment_key: str, tenant: CurrentTenant) -> PaymentJson:
    async with transaction() as conn:
        return await service.cancel_payment(conn, tenant, payment_key)


@router.put("/v1/payments/{payment_key}", responses=ok(answers.PaymentAnswer))
async def update_payment(
    payment_key: str, request: UpdatePaymentRequest, tenant: CurrentTenant
) -> PaymentJson:
    async with transaction() as conn:
        return await edits.update_payment(conn, tenant, payment_key, request)


@router.put("/v1/refunds/{refund_key}", responses=ok(answers.RefundAnswer))
async def update_refund(
    refund_key: str, request: UpdateRefundRequest, tenant: CurrentTenant
) -> RefundJson:
    async with transaction() as conn:
        return await edits.update_refund(conn, tenant, refund_key, request)


@router.get("/v1/payments/{payment_key}", responses=ok(answers.PaymentAnswer))
async def get_payment(payment_key: str, tenant: CurrentTenant) -> PaymentJson:
    async with transaction() as conn:
        return await views.get_payment(conn, tenant, payment_key)


@router.get("/v1/payments", responses=ok(answers.Payments))
async def list_payments(
    tenant: CurrentTenant,
    http_request: Request,
    account_id: Annotated[str | None, Query(alias="accountId")] = None,
    status: Annotated[str | None, Query()] = None,
    payment_type: Annotated[str | None, Query(alias="type")] = None,
    window: PageRequest = page_request(20),
) -> dict[str, object]:
    async with transaction() as conn:
        found, more = await views.list_payments(
            conn,
            tenant,
            account_id=account_id,
            status=status,
            payment_type=payment_type,
            window=window,
        )
    return paged("payments", found, more, http_request, window)


@router.get("/v1/refunds/{refund_key}", responses=ok(answers.RefundAnswer))
async def get_refund(refund_key: str, tenant: CurrentTenant) -> RefundJson:
    async with transaction() as conn:
        return await views.get_refund(conn, tenant, refund_key)


@router.get("/v1/refunds", responses=ok(answers.Refunds))
async def list_refunds(
    tenant: CurrentTenant,
    http_request: Request,
    account_id: Annotated[str | None, Query(alias="accountId")] = None,
    window: PageRequest = page_request(20),
) -> dict[str, object]:
    async with transaction() as conn:
        found, more = await views.list_refunds(conn, tenant, account_id=account_id, window=window)
    return paged("refunds", found, more, http_request, window)
