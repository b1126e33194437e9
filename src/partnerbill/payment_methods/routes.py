"""`/v1/payment-methods` and an account's payment methods (external types only)."""

from typing import Any

from partnerbill.core.auth import CurrentTenant
from partnerbill.core.db import transaction
from partnerbill.core.json import DecimalJSONRoute
from partnerbill.core.responses import Succeeded, ok
from partnerbill.core.routing import FeatureRouter
from partnerbill.payment_methods import responses as answers
from partnerbill.payment_methods import service
from partnerbill.payment_methods.schemas import (
    CreatePaymentMethodRequest,
    UpdatePaymentMethodRequest,
)

router = FeatureRouter(route_class=DecimalJSONRoute, tags=["Payment Methods"])


@router.post("/v1/payment-methods", responses=ok(answers.Created))
async def create_payment_method(
    request: CreatePaymentMethodRequest, tenant: CurrentTenant
) -> service.SavedPaymentMethod:
    async with transaction() as conn:
        return await service.create_payment_method(conn, tenant, request)


@router.get("/v1/payment-methods/{payment_method_id}", responses=ok(answers.PaymentMethodAnswer))
async def get_payment_method(
    payment_method_id: str, tenant: CurrentTenant
) -> service.PaymentMethodAnswer:
    async with transaction() as conn:
        return await service.get_payment_method(conn, tenant, payment_method_id)


@router.put("/v1/payment-methods/{payment_method_id}", responses=ok(answers.Created))
async def update_payment_method(
    payment_method_id: str, request: UpdatePaymentMethodRequest, tenant: CurrentTenant
) -> service.SavedPaymentMethod:
    async with transaction() as conn:
        return await service.update_payment_method(conn, tenant, payment_method_id, request)


@router.delete("/v1/payment-methods/{payment_method_id}", responses=ok(Succeeded))
async def delete_payment_method(payment_method_id: str, tenant: CurrentTenant) -> dict[str, Any]:
    async with transaction() as conn:
        return await service.delete_payment_method(conn, tenant, payment_method_id)


@router.get(
    "/v1/accounts/{account_key}/payment-methods", responses=ok(answers.AccountPaymentMethods)
)
async def account_payment_methods(
    account_key: str, tenant: CurrentTenant
) -> service.AccountPaymentMethods:
    async with transaction() as conn:
        return await service.account_payment_methods(conn, tenant, account_key)


@router.get(
    "/v1/accounts/{account_key}/payment-methods/default",
    responses=ok(answers.PaymentMethodAnswer),
)
async def account_default_payment_method(
    account_key: str, tenant: CurrentTenant
) -> service.PaymentMethodAnswer:
    async with transaction() as conn:
        return await service.account_default_payment_method(conn, tenant, account_key)
