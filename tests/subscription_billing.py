"""Subscriptions, orders and bill runs over the HTTP API as the tests drive them: place an order,
subscribe, run and read bills, count rows, read a subscription and its charges, and the order
actions and legacy subscribe bodies they send. Shared by the billing, subscription, order and
lock-bound tests."""

import re
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from partnerbill.billing.bill_runs import execute_bill_run
from partnerbill.core import db
from tests.catalog_fixtures import (
    order_body,
)
from tests.helpers import ApiClient

D = Decimal


async def place(api: ApiClient, body: dict[str, Any], query: str = "") -> dict[str, Any]:
    """A synchronous order that must succeed."""
    return await api.ok("POST", f"/v1/orders{query}", body)


async def subscribe(
    api: ApiClient, account: dict[str, Any], plan_id: str, order_date: str, **fields: Any
) -> dict[str, Any]:
    """One subscription to `plan_id` for `account`; the order response."""
    return await place(api, order_body(account["accountNumber"], plan_id, order_date, **fields))


async def items(api: ApiClient, invoice_key: str) -> list[tuple[str, str, Decimal]]:
    """An invoice's lines as (serviceStartDate, serviceEndDate, amount), in line order."""
    payload = await api.ok("GET", f"/v1/invoices/{invoice_key}/items?pageSize=200")
    return [
        (str(i["serviceStartDate"]), str(i["serviceEndDate"]), D(str(i["chargeAmount"])))
        for i in payload["invoiceItems"]
    ]


async def invoice(api: ApiClient, invoice_key: str) -> dict[str, Any]:
    return await api.ok("GET", f"/v1/invoices/{invoice_key}")


async def bill_run(
    api: ApiClient, account_id: str, target_date: str, **fields: Any
) -> dict[str, Any]:
    """Create an account bill run, run its job here, and read it back."""
    created = await api.ok(
        "POST",
        "/v1/bill-runs",
        {
            "billRunFilters": [{"filterType": "Account", "accountId": account_id}],
            "targetDate": target_date,
            **fields,
        },
    )
    assert created["status"] == "Pending", created
    assert re.fullmatch(r"BR-\d{8}", created["billRunNumber"]), created
    await execute_bill_run(api.tenant, created["id"])
    return await api.ok("GET", f"/v1/bill-runs/{created['id']}")


async def run_invoices(api: ApiClient, bill_run_id: str) -> list[dict[str, Any]]:
    """The invoices a bill run made (read from PostgreSQL: the API lists no run's invoices)."""
    async with db.get_engine().connect() as conn:
        numbers = list(
            await conn.scalars(
                text(
                    "SELECT invoice_number FROM invoices WHERE tenant_id = :t AND bill_run_id = :r "
                    "ORDER BY invoice_number"
                ),
                {"t": api.tenant.id, "r": bill_run_id},
            )
        )
    return [await invoice(api, n) for n in numbers]


async def only_invoice_of_run(api: ApiClient, run: dict[str, Any]) -> dict[str, Any]:
    assert run["invoiceCount"] == 1, run
    (found,) = await run_invoices(api, run["id"])
    return found


async def rows(api: ApiClient, *tables: str) -> dict[str, int]:
    async with db.get_engine().connect() as conn:
        return {
            table: int(
                await conn.scalar(
                    text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t"), {"t": api.tenant.id}
                )
                or 0
            )
            for table in tables
        }


async def cmrr(api: ApiClient, account_key: str) -> Decimal:
    return D(str((await api.metrics(account_key))["contractedMrr"]))


async def subscription(api: ApiClient, key: str) -> dict[str, Any]:
    return await api.ok("GET", f"/v1/subscriptions/{key}")


def charges(sub: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for plan in sub["ratePlans"] for c in plan["ratePlanCharges"]]


def first_charge(sub: dict[str, Any]) -> tuple[str, str]:
    """(rate plan id, charge number) of the subscription's first charge."""
    plan = sub["ratePlans"][0]
    return plan["id"], plan["ratePlanCharges"][0]["number"]


def update_quantity(rate_plan_id: str, charge_number: str, quantity: str, on: str) -> dict:  # type: ignore[type-arg]
    return {
        "type": "UpdateProduct",
        "triggerDates": [{"name": "ContractEffective", "triggerDate": on}],
        "updateProduct": {
            "ratePlanId": rate_plan_id,
            "chargeUpdates": [
                {
                    "chargeNumber": charge_number,
                    "pricing": {"recurringPerUnit": {"quantity": D(quantity)}},
                }
            ],
        },
    }


def cancel_on(day: str) -> dict[str, Any]:
    return {
        "type": "CancelSubscription",
        "cancelSubscription": {
            "cancellationPolicy": "SpecificDate",
            "cancellationEffectiveDate": day,
        },
    }


def total(lines: list[tuple[str, str, Decimal]]) -> Decimal:
    return sum((amount for _, _, amount in lines), D(0))


def legacy_subscribe_body(account_key: str, plan_id: str, charge_id: str) -> dict[str, Any]:
    return {
        "accountKey": account_key,
        "contractEffectiveDate": "2026-01-01",
        "termType": "TERMED",
        "initialTerm": 12,
        "renewalTerm": 12,
        "autoRenew": False,
        "subscribeToRatePlans": [
            {
                "productRatePlanId": plan_id,
                "chargeOverrides": [
                    {"productRatePlanChargeId": charge_id, "quantity": 3, "price": "20"}
                ],
            }
        ],
    }
