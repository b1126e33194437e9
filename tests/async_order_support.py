"""Asynchronous orders as the tests place and inspect them: a seat plan, an order body,
`POST /v1/async/orders`, the procrastinate jobs and `async_jobs` rows behind a job, and the job
status read raw through the SDK. Shared by the order, idempotency and fault tests."""

import json
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from zuora_sdk.zuora_client import ZuoraClient

from partnerbill.core.tenants import Tenant
from tests.helpers import SDK_SERIALIZE_DEFAULTS, ApiClient

ORDER_DATE = "2026-01-01"
SEAT_PRICE = Decimal("12.50")


def catalog_bodies() -> list[tuple[str, dict[str, Any]]]:
    """Product, plan and a monthly per-unit charge of 12.50 USD (ids filled in by the caller)."""
    return [
        (
            "/v1/object/product",
            {"Name": "Seats", "EffectiveStartDate": "2025-01-01", "EffectiveEndDate": "2036-01-01"},
        ),
        ("/v1/object/product-rate-plan", {"Name": "Monthly"}),
        (
            "/v1/object/product-rate-plan-charge",
            {
                "Name": "Seat fee",
                "ChargeType": "Recurring",
                "ChargeModel": "Per Unit Pricing",
                "BillingPeriod": "Month",
                "BillCycleType": "DefaultFromCustomer",
                "TriggerEvent": "ContractEffective",
                "ProductRatePlanChargeTierData": {
                    "ProductRatePlanChargeTier": [{"Currency": "USD", "Price": SEAT_PRICE}]
                },
            },
        ),
    ]


async def seat_plan(api: ApiClient) -> str:
    """The product rate plan's id."""
    ids: list[str] = []
    for (path, body), parent in zip(
        catalog_bodies(), ("", "ProductId", "ProductRatePlanId"), strict=True
    ):
        if parent:
            body = {**body, parent: ids[-1]}
        status, payload = await api.call("POST", path, body, expect=None)
        assert status == 200 and payload.get("Success") is True, (status, payload)
        ids.append(str(payload["Id"]))
    return ids[1]


def order_body(account_number: str, plan_id: str, *, subscriptions: int = 1) -> dict[str, Any]:
    return {
        "orderDate": ORDER_DATE,
        "existingAccountNumber": account_number,
        "subscriptions": [
            {
                "orderActions": [
                    {
                        "type": "CreateSubscription",
                        "createSubscription": {
                            "terms": {"initialTerm": {"termType": "EVERGREEN"}},
                            "subscribeToRatePlans": [{"productRatePlanId": plan_id}],
                        },
                    }
                ]
            }
            for _ in range(subscriptions)
        ],
    }


async def post_async_order(api: ApiClient, body: dict[str, Any]) -> str:
    _, payload = await api.call("POST", "/v1/async/orders", body, expect=202)
    assert payload["success"] is True, payload
    job_id = payload["jobId"]
    assert isinstance(job_id, str) and uuid.UUID(job_id), payload
    return str(job_id)


async def procrastinate_jobs(engine: AsyncEngine, job_id: str) -> list[dict[str, Any]]:
    """The procrastinate jobs that carry this async order job (whatever their task name)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT id, status, task_name, queue_name, args, attempts, worker_id "
                "FROM procrastinate_jobs WHERE args->>'job_id' = :job"
            ),
            {"job": job_id},
        )
        return [dict(row._mapping) for row in rows]


async def tenant_job_rows(engine: AsyncEngine, tenant: Tenant) -> tuple[int, int]:
    """(procrastinate jobs, async_jobs rows) of the tenant."""
    async with engine.connect() as conn:
        deferred = await conn.scalar(
            text(
                "SELECT count(*) FROM procrastinate_jobs "
                "WHERE args ? 'job_id' AND args->>'tenant_id' = :t"
            ),
            {"t": tenant.id},
        )
        recorded = await conn.scalar(
            text("SELECT count(*) FROM async_jobs WHERE tenant_id = :t"), {"t": tenant.id}
        )
    return int(deferred or 0), int(recorded or 0)


# --- the official zuora-sdk ---------------------------------------------------------------------


def raw_job_status(zc: ZuoraClient, job_id: str) -> dict[str, Any]:
    """`GET /v1/async-jobs/{jobId}` through the SDK's own request building, auth and transport,
    parsed here: the raw-response path (zuora-sdk 3.21.0 has no `..._without_preload_content`
    variant of this operation, so this is its equivalent)."""
    orders = zc.orders_api()
    request = orders._get_job_status_and_response_serialize(job_id=job_id, **SDK_SERIALIZE_DEFAULTS)
    response = orders.api_client.call_api(*request)
    assert response.status == 200, response.read()
    return dict(json.loads(response.read()))
