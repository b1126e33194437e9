"""The legacy subscribe (`POST /v1/subscriptions`) and the cancel, suspend, resume and renew
amendments, each carried out as one order, so they follow every rule of the Orders path
(versions, segments, metrics, locks); the legacy amend (`PUT /v1/subscriptions/{key}`) is in
`legacy_amend`.

Subscribe locks its accounts for write (`FOR KEY SHARE`) before the order runs; an amendment
reads the subscription's owner without a lock, and the order locks what it changes.
"""

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.accounts.service import lock_for_write
from partnerbill.core.clock import today
from partnerbill.core.errors import Resource, not_found
from partnerbill.core.tenants import Tenant, get_settings
from partnerbill.orders.legacy_amend import trigger_dates
from partnerbill.orders.schemas import CreateOrderRequest
from partnerbill.orders.service import CreateOrderResponse, create_order
from partnerbill.subscriptions.schemas import CreateSubscriptionRequest
from partnerbill.subscriptions.views import SubscriptionJson, subscription_json
from partnerbill.tables.accounts import accounts
from partnerbill.tables.subscriptions import subscriptions


async def _order(
    conn: AsyncConnection, tenant: Tenant, body: dict[str, Any]
) -> CreateOrderResponse:
    limit = (await get_settings(conn, tenant)).order_sync_limit
    return await create_order(
        conn, tenant, CreateOrderRequest.model_validate(body), limit=limit, return_ids=True
    )


async def subscribe(
    conn: AsyncConnection, tenant: Tenant, request: CreateSubscriptionRequest
) -> tuple[CreateOrderResponse, SubscriptionJson]:
    """The CreateSubscription order of a legacy subscribe: (the order's answer, the new
    subscription as GET shows it)."""
    owner = await lock_for_write(conn, tenant, request.account_key)
    invoice_owner = owner
    if request.invoice_owner_account_key is not None:
        invoice_owner = await lock_for_write(conn, tenant, request.invoice_owner_account_key)
    triggers = trigger_dates(
        request.contract_effective_date,
        request.service_activation_date,
        request.customer_acceptance_date,
    )
    terms: dict[str, Any] = {
        "initialTerm": {
            "termType": request.term_type,
            "period": request.initial_term,
            "periodType": request.initial_term_period_type,
            "startDate": request.term_start_date,
        },
        "renewalSetting": request.renewal_setting,
        "autoRenew": request.auto_renew,
    }
    if request.renewal_term:
        terms["renewalTerms"] = [
            {"period": request.renewal_term, "periodType": request.renewal_term_period_type}
        ]
    create = {
        "subscriptionNumber": request.subscription_number,
        "invoiceOwnerAccountNumber": invoice_owner.account_number,
        "terms": terms,
        "subscribeToRatePlans": [
            plan.model_dump(by_alias=True, exclude_none=True)
            for plan in request.subscribe_to_rate_plans
        ],
        "invoiceSeparately": request.invoice_separately,
        "notes": request.notes,
    }
    action = {"type": "CreateSubscription", "triggerDates": triggers, "createSubscription": create}
    target = request.target_date or request.contract_effective_date
    order = await _order(
        conn,
        tenant,
        {
            "orderDate": request.contract_effective_date,
            "existingAccountNumber": owner.account_number,
            "subscriptions": [{"orderActions": [action]}],
            "processingOptions": {
                "runBilling": request.run_billing or request.invoice,
                "billingOptions": {"targetDate": target, "documentDate": request.document_date},
            },
        },
    )
    return order, await subscription_json(conn, tenant, order["subscriptionIds"][0])


async def amend_with(
    conn: AsyncConnection,
    tenant: Tenant,
    key: str,
    order_date: date | None,
    action: dict[str, Any],
    run_billing: bool,
) -> tuple[CreateOrderResponse, SubscriptionJson]:
    """The order of one action on the subscription `key` (dated today unless `order_date`):
    (the order's answer, the subscription as GET shows it afterwards)."""
    owner_number = await conn.scalar(
        select(accounts.c.account_number)
        .join(
            subscriptions,
            (subscriptions.c.tenant_id == accounts.c.tenant_id)
            & (subscriptions.c.account_id == accounts.c.id),
        )
        .where(
            subscriptions.c.tenant_id == tenant.id,
            (subscriptions.c.version_id == key) | (subscriptions.c.subscription_number == key),
        )
    )
    if owner_number is None:
        raise not_found(Resource.SUBSCRIPTION, "subscription", key)
    order = await _order(
        conn,
        tenant,
        {
            "orderDate": order_date or today(),
            "existingAccountNumber": owner_number,
            "subscriptions": [{"subscriptionNumber": key, "orderActions": [action]}],
            "processingOptions": {"runBilling": run_billing},
        },
    )
    return order, await subscription_json(conn, tenant, order["subscriptionIds"][0])
