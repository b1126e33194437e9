"""Legacy subscription endpoints: subscribe, read, amend (`PUT /v1/subscriptions/{key}`, see
`legacy_amend`), and the cancel/suspend/resume/renew amendments (`legacy`). Each write is carried
out as an order (one code path for both APIs), which is why they live with orders; the reads are
`subscriptions.views` and `subscriptions.versions`."""

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, NotRequired, TypedDict

from fastapi import Body, Query, Request

from partnerbill.core.auth import CurrentTenant
from partnerbill.core.clock import today
from partnerbill.core.db import transaction
from partnerbill.core.json import DecimalJSONRoute
from partnerbill.core.pagination import PageRequest, page_request, paged
from partnerbill.core.responses import ok
from partnerbill.core.routing import FeatureRouter
from partnerbill.core.tenants import Tenant
from partnerbill.orders import legacy, legacy_amend
from partnerbill.subscriptions import responses as answers
from partnerbill.subscriptions.schemas import (
    CreateSubscriptionRequest,
    LegacyCancelRequest,
    LegacyRenewRequest,
    LegacyResumeRequest,
    LegacySuspendRequest,
    LegacyUpdateRequest,
)
from partnerbill.subscriptions.versions import (
    SubscriptionMetrics,
    subscription_metrics,
    subscription_version_json,
)
from partnerbill.subscriptions.views import (
    SubscriptionJson,
    account_subscriptions,
    subscription_json,
)

router = FeatureRouter(route_class=DecimalJSONRoute, tags=["Subscriptions"])


class CreateSubscriptionResponse(TypedDict):
    """The legacy subscribe's answer; the invoice's id and number when it billed one."""

    success: bool
    subscriptionId: str
    subscriptionNumber: str
    contractedMrr: Decimal
    totalContractedValue: Decimal
    orderNumber: str
    invoiceId: NotRequired[str]
    invoiceNumber: NotRequired[str]


class AmendSubscriptionResponse(TypedDict):
    """The answer of a legacy cancel, suspend, resume or renew."""

    success: bool
    subscriptionId: str
    subscriptionNumber: str
    orderNumber: str
    subscriptionNumbers: list[str]
    status: str  # a SubscriptionStatus
    cancelledDate: date | None
    termEndDate: date | None
    invoiceNumbers: list[str]


class SubscriptionMetricsResponse(TypedDict):
    success: bool
    subscriptionMetrics: list[SubscriptionMetrics]


@router.post("/v1/subscriptions", responses=ok(answers.CreatedSubscription))
async def create_subscription(
    request: CreateSubscriptionRequest, tenant: CurrentTenant
) -> CreateSubscriptionResponse:
    async with transaction() as conn:
        order, subscription = await legacy.subscribe(conn, tenant, request)
    response: CreateSubscriptionResponse = {
        "success": True,
        "subscriptionId": subscription["id"],
        "subscriptionNumber": subscription["subscriptionNumber"],
        "contractedMrr": subscription["contractedMrr"],
        "totalContractedValue": subscription["totalContractedValue"],
        "orderNumber": order["orderNumber"],
    }
    if order["invoiceIds"]:
        response["invoiceId"] = order["invoiceIds"][0]
        response["invoiceNumber"] = order["invoiceNumbers"][0]
    return response


@router.get(
    "/v1/subscriptions/subscription-metrics", responses=ok(answers.SubscriptionMetricsAnswer)
)
async def get_metrics_by_subscription_numbers(
    tenant: CurrentTenant,
    numbers: Annotated[list[str] | None, Query(alias="subscriptionNumbers[]")] = None,
    listed: Annotated[str | None, Query(alias="subscriptionNumbers")] = None,
    as_of_day: Annotated[date | None, Query(alias="asOfDay")] = None,
) -> SubscriptionMetricsResponse:
    """Numbers come as the SDK sends them (`subscriptionNumbers[]` repeated) or comma-separated
    in `subscriptionNumbers`."""
    wanted = [*(numbers or []), *(n for n in (listed or "").split(",") if n)]
    async with transaction() as conn:
        found = await subscription_metrics(conn, tenant, wanted, as_of_day or today())
    return {"success": True, "subscriptionMetrics": found}


@router.get(
    "/v1/subscriptions/{subscription_key}/versions/{version}",
    responses=ok(answers.SubscriptionAnswer),
)
async def get_subscription_by_key_and_version(
    subscription_key: str, version: str, tenant: CurrentTenant
) -> SubscriptionJson:
    async with transaction() as conn:
        return await subscription_version_json(conn, tenant, subscription_key, version)


@router.get("/v1/subscriptions/{subscription_key}", responses=ok(answers.SubscriptionAnswer))
async def get_subscription(subscription_key: str, tenant: CurrentTenant) -> SubscriptionJson:
    async with transaction() as conn:
        return await subscription_json(conn, tenant, subscription_key)


@router.get("/v1/subscriptions/accounts/{account_key}", responses=ok(answers.AccountSubscriptions))
async def get_subscriptions_by_account(
    account_key: str,
    tenant: CurrentTenant,
    http_request: Request,
    window: PageRequest = page_request(20),
) -> dict[str, Any]:
    async with transaction() as conn:
        found, more = await account_subscriptions(conn, tenant, account_key, window)
    # `paged` takes plain dicts.
    return paged("subscriptions", found, more, http_request, window)


async def _amend(
    tenant: Tenant,
    key: str,
    order_date: date | None,
    action: dict[str, Any],
    run_billing: bool = False,
) -> AmendSubscriptionResponse:
    async with transaction() as conn:
        order, subscription = await legacy.amend_with(
            conn, tenant, key, order_date, action, run_billing
        )
    return {
        "success": True,
        "subscriptionId": subscription["id"],
        "subscriptionNumber": subscription["subscriptionNumber"],
        "orderNumber": order["orderNumber"],
        "subscriptionNumbers": order["subscriptionNumbers"],
        "status": subscription["status"],
        "cancelledDate": subscription["cancelledDate"],
        "termEndDate": subscription["termEndDate"],
        "invoiceNumbers": order["invoiceNumbers"],
    }


@router.put("/v1/subscriptions/{subscription_key}", responses=ok(answers.UpdatedSubscription))
async def update_subscription(
    subscription_key: str, request: LegacyUpdateRequest, tenant: CurrentTenant
) -> legacy_amend.UpdateSubscriptionResponse:
    async with transaction() as conn:
        return await legacy_amend.update_subscription(conn, tenant, subscription_key, request)


@router.put(
    "/v1/subscriptions/{subscription_key}/cancel", responses=ok(answers.AmendedSubscription)
)
async def cancel_subscription(
    subscription_key: str, request: LegacyCancelRequest, tenant: CurrentTenant
) -> AmendSubscriptionResponse:
    action = {
        "type": "CancelSubscription",
        "cancelSubscription": request.model_dump(
            by_alias=True,
            exclude_none=True,
            include={"cancellation_policy", "cancellation_effective_date"},
        ),
    }
    return await _amend(tenant, subscription_key, request.order_date, action, request.run_billing)


@router.put(
    "/v1/subscriptions/{subscription_key}/suspend", responses=ok(answers.AmendedSubscription)
)
async def suspend_subscription(
    subscription_key: str, request: LegacySuspendRequest, tenant: CurrentTenant
) -> AmendSubscriptionResponse:
    action = {
        "type": "Suspend",
        "suspend": request.model_dump(by_alias=True, exclude_none=True, exclude={"order_date"}),
    }
    return await _amend(tenant, subscription_key, request.order_date, action)


@router.put(
    "/v1/subscriptions/{subscription_key}/resume", responses=ok(answers.AmendedSubscription)
)
async def resume_subscription(
    subscription_key: str, request: LegacyResumeRequest, tenant: CurrentTenant
) -> AmendSubscriptionResponse:
    action = {
        "type": "Resume",
        "resume": request.model_dump(by_alias=True, exclude_none=True, exclude={"order_date"}),
    }
    return await _amend(tenant, subscription_key, request.order_date, action)


@router.put("/v1/subscriptions/{subscription_key}/renew", responses=ok(answers.AmendedSubscription))
async def renew_subscription(
    subscription_key: str,
    tenant: CurrentTenant,
    request: Annotated[LegacyRenewRequest | None, Body()] = None,
) -> AmendSubscriptionResponse:
    action = {"type": "RenewSubscription"}
    return await _amend(tenant, subscription_key, request.order_date if request else None, action)
