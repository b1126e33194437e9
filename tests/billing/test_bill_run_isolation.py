"""A bill run that cannot bill one subscription bills the others and says which one failed.

The bad subscriptions are made directly in PostgreSQL (input validation refuses such dates at
the door): charge dates at the ends of the calendar, which the billing math cannot step past, and
a subscription row another transaction holds locked past the tenant's `lockWaitMs`.
"""

import time
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.billing.bill_runs import execute_bill_run
from partnerbill.core.errors import LOCK_COMPETITION_MESSAGE
from tests.catalog_fixtures import new_account, order_body, rate_plan, recurring_charge
from tests.helpers import ApiClient

D = Decimal


async def _subscribe(api: ApiClient, account: dict[str, Any], plan: str) -> str:
    """One subscription to `plan` from 2026-01-01; its number."""
    order = await api.ok(
        "POST", "/v1/orders", order_body(account["accountNumber"], plan, "2026-01-01")
    )
    (number,) = order["subscriptionNumbers"]
    return str(number)


async def _poison(
    engine: AsyncEngine, api: ApiClient, subscription_number: str, start: str
) -> None:
    """Move the subscription's charges to start on `start`: stored data no request can make."""
    async with engine.begin() as conn:
        updated = await conn.execute(
            text(
                "UPDATE rate_plan_charges c SET effective_start_date = CAST(:start AS date) "
                "FROM subscriptions s WHERE s.tenant_id = c.tenant_id AND s.id = c.subscription_id "
                "AND s.tenant_id = :tenant_id AND s.subscription_number = :number"
            ),
            {"start": start, "tenant_id": api.tenant.id, "number": subscription_number},
        )
        assert updated.rowcount == 1


async def _run(api: ApiClient, body: dict[str, Any]) -> dict[str, Any]:
    created = await api.ok("POST", "/v1/bill-runs", {"targetDate": "2026-01-01", **body})
    await execute_bill_run(api.tenant, created["id"])
    return await api.ok("GET", f"/v1/bill-runs/{created['id']}")


async def _invoices_by_account(engine: AsyncEngine, api: ApiClient, run_id: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT a.account_number, i.amount, i.status, "
                "(SELECT count(*) FROM invoice_items t WHERE t.tenant_id = i.tenant_id "
                "AND t.invoice_id = i.id) AS lines "
                "FROM invoices i JOIN accounts a "
                "ON a.tenant_id = i.tenant_id AND a.id = i.account_id "
                "WHERE i.tenant_id = :tenant_id AND i.bill_run_id = :run_id"
            ),
            {"tenant_id": api.tenant.id, "run_id": run_id},
        )
        return {row.account_number: row for row in rows}


async def _charged_through(engine: AsyncEngine, api: ApiClient, subscription_number: str) -> Any:
    async with engine.connect() as conn:
        return await conn.scalar(
            text(
                "SELECT max(c.charged_through_date) FROM rate_plan_charges c JOIN subscriptions s "
                "ON s.tenant_id = c.tenant_id AND s.id = c.subscription_id "
                "WHERE s.tenant_id = :tenant_id AND s.subscription_number = :number"
            ),
            {"tenant_id": api.tenant.id, "number": subscription_number},
        )


async def test_a_tenant_wide_run_bills_every_account_but_the_one_it_cannot(
    api: ApiClient, engine: AsyncEngine
) -> None:
    plan = await rate_plan(api, recurring_charge("10"))
    good_first, bad, good_last = [await new_account(api) for _ in range(3)]
    await _subscribe(api, good_first, plan)
    bad_subscription = await _subscribe(api, bad, plan)
    await _subscribe(api, good_last, plan)
    # A billing period no request can store: the billing math raises on it.
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE rate_plan_charges c SET billing_period = 'Fortnight' "
                "FROM subscriptions s WHERE s.tenant_id = c.tenant_id "
                "AND s.id = c.subscription_id AND s.subscription_number = :number"
            ),
            {"number": bad_subscription},
        )

    run = await _run(api, {"billCycleDay": "AllBillCycleDays", "autoPost": True})

    assert run["status"] == "Posted", run
    assert run["invoiceCount"] == 2, str(run)
    assert run["numberOfErrors"] == 1
    (error,) = run["errors"]
    assert error["subscriptionNumber"] == bad_subscription
    assert error["accountNumber"] == bad["accountNumber"]
    assert error["accountId"] == bad["accountId"]
    assert error["code"] % 100 == 60, error
    assert "Fortnight" in error["message"], error  # says what failed
    assert "1 subscription(s) could not be billed" in run["errorMessage"]
    invoices = await _invoices_by_account(engine, api, run["id"])
    assert set(invoices) == {good_first["accountNumber"], good_last["accountNumber"]}
    assert all(i.amount == D("10.00") and i.status == "Posted" for i in invoices.values())
    # Nothing of the bad subscription was written: it is still billable once fixed.
    assert await _charged_through(engine, api, bad_subscription) is None
    bad_metrics = await api.metrics(bad["accountNumber"])
    assert D(str(bad_metrics["totalInvoiceBalance"])) == 0
    # The run is answered the same way later (the errors are stored, not kept in memory).
    assert await api.ok("GET", f"/v1/bill-runs/{run['billRunNumber']}") == run


async def test_an_account_run_puts_the_billable_subscriptions_on_the_owner_invoice(
    api: ApiClient, engine: AsyncEngine
) -> None:
    plan = await rate_plan(api, recurring_charge("10"))
    account = await new_account(api)
    numbers = [await _subscribe(api, account, plan) for _ in range(3)]
    # 24,000 monthly periods to 2026: more than one charge may have.
    await _poison(engine, api, numbers[1], "0001-01-01")

    run = await _run(
        api, {"billRunFilters": [{"filterType": "Account", "accountId": account["accountId"]}]}
    )

    assert run["status"] == "Completed", run
    assert [e["subscriptionNumber"] for e in run["errors"]] == [numbers[1]]
    invoice = (await _invoices_by_account(engine, api, run["id"]))[account["accountNumber"]]
    assert (invoice.amount, invoice.lines, invoice.status) == (D("20.00"), 2, "Draft")
    assert await _charged_through(engine, api, numbers[1]) is None
    # A Completed run with errors posts what it billed.
    posted = await api.ok("PUT", f"/v1/bill-runs/{run['id']}/post", {})
    assert posted["status"] == "Posted"
    assert posted["numberOfErrors"] == 1


async def test_a_subscription_held_past_the_lock_bound_is_reported_and_the_rest_billed(
    api: ApiClient, engine: AsyncEngine
) -> None:
    lock_wait_ms = 300
    await api.ok("PUT", "/v1/partnerbill/settings", {"lockWaitMs": lock_wait_ms})
    plan = await rate_plan(api, recurring_charge("10"))
    held_account, free_account = await new_account(api), await new_account(api)
    held = await _subscribe(api, held_account, plan)
    await _subscribe(api, free_account, plan)

    async with engine.connect() as holder:
        await holder.begin()
        await holder.execute(
            text(
                "SELECT 1 FROM subscriptions WHERE tenant_id = :tenant_id "
                "AND subscription_number = :number FOR UPDATE"
            ),
            {"tenant_id": api.tenant.id, "number": held},
        )
        started = time.monotonic()
        run = await _run(api, {"billCycleDay": "AllBillCycleDays"})
        elapsed = time.monotonic() - started
        await holder.rollback()

    assert run["status"] == "Completed", run
    (error,) = run["errors"]
    assert error["subscriptionNumber"] == held
    assert error["code"] % 100 == 50
    assert error["message"] == LOCK_COMPETITION_MESSAGE
    # The batch waited once, then the held subscription alone once more.
    assert elapsed < 2 * lock_wait_ms / 1000 + 3, elapsed
    assert set(await _invoices_by_account(engine, api, run["id"])) == {
        free_account["accountNumber"]
    }
