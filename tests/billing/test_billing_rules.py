"""More billing rules through the HTTP API on real PostgreSQL: tiered price updates, weekly credits,
termed subscriptions, one invoice per invoice owner, owner transfers, pending and dead bill runs,
currencies, bill cycle day and batch, and charge overrides."""

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from partnerbill.billing.bill_runs import execute_bill_run
from partnerbill.core import db
from tests.catalog_fixtures import (
    amendment,
    new_account,
    order_body,
    plan_charge_ids,
    quantity_override,
    rate_plan,
    recurring_charge,
    tier,
)
from tests.helpers import ApiClient, assert_envelope
from tests.subscription_billing import (
    D,
    bill_run,
    cancel_on,
    cmrr,
    first_charge,
    items,
    only_invoice_of_run,
    place,
    rows,
    run_invoices,
    subscribe,
    subscription,
    total,
)

# --- more billing rules -------------------------------------------------------------------------


async def test_a_tiered_price_update_keeps_each_tiers_price_format(api: ApiClient) -> None:
    account = await new_account(api)
    tiers = [tier("100", 0, 10, "Flat Fee"), tier("5", 11, None, "Per Unit")]
    plan = await rate_plan(api, recurring_charge(model="Tiered Pricing", tiers=tiers))
    (charge_id,) = await plan_charge_ids(api, plan)
    order = await subscribe(
        api,
        account,
        plan,
        "2026-01-01",
        charge_overrides=[quantity_override(charge_id, 12, "recurringTiered")],
    )
    (number,) = order["subscriptionNumbers"]
    assert await cmrr(api, account["accountNumber"]) == D("110")
    plan_id, charge_number = first_charge(await subscription(api, number))
    new_tiers = [
        {"tier": 1, "startingUnit": 0, "endingUnit": 10, "price": 100, "priceFormat": "FlatFee"},
        {"tier": 2, "startingUnit": 11, "price": 6, "priceFormat": "PerUnit"},
    ]
    update = {
        "type": "UpdateProduct",
        "triggerDates": [{"name": "ContractEffective", "triggerDate": "2026-02-01"}],
        "updateProduct": {
            "ratePlanId": plan_id,
            "chargeUpdates": [
                {
                    "chargeNumber": charge_number,
                    "pricing": {"recurringTiered": {"tiers": new_tiers}},
                }
            ],
        },
    }
    await place(api, amendment(account["accountNumber"], number, "2026-01-10", update))
    assert await cmrr(api, account["accountNumber"]) == D("112")  # 100 flat + 2 x 6


async def test_weekly_credits_follow_the_billed_weeks(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("70", period="Week"))
    body = order_body(
        account["accountNumber"], plan, "2026-01-01", run_billing=True, target_date="2026-01-08"
    )
    order = await place(api, body)
    (number,) = order["subscriptionNumbers"]
    assert await items(api, order["invoiceNumbers"][0]) == [
        ("2026-01-01", "2026-01-07", D("70.00")),
        ("2026-01-08", "2026-01-14", D("70.00")),
    ]
    await place(
        api, amendment(account["accountNumber"], number, "2026-01-05", cancel_on("2026-01-05"))
    )
    run = await bill_run(api, account["accountId"], "2026-01-20")
    inv = await only_invoice_of_run(api, run)
    assert await items(api, inv["invoiceNumber"]) == [
        ("2026-01-05", "2026-01-07", D("-30.00")),  # 70 x 3/7 of the first billed week
        ("2026-01-08", "2026-01-14", D("-70.00")),
    ]


async def test_a_termed_subscription_bills_to_its_term_end_unless_it_auto_renews(
    api: ApiClient,
) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    terms = {
        "initialTerm": {"termType": "TERMED", "period": 3, "periodType": "Month"},
        "renewalTerms": [{"period": 3, "periodType": "Month"}],
    }
    ends = await subscribe(api, account, plan, "2026-01-01", terms=terms)
    renews = await subscribe(api, account, plan, "2026-01-01", terms={**terms, "autoRenew": True})
    run = await bill_run(api, account["accountId"], "2026-05-01")
    assert run["invoiceCount"] == 1
    by_sub: dict[str, Decimal] = {}
    for inv in await run_invoices(api, run["id"]):
        payload = await api.ok("GET", f"/v1/invoices/{inv['invoiceNumber']}/items")
        for item in payload["invoiceItems"]:
            name = str(item["subscriptionName"])
            by_sub[name] = by_sub.get(name, D(0)) + D(str(item["chargeAmount"]))
    assert by_sub == {
        ends["subscriptionNumbers"][0]: D("30.00"),
        renews["subscriptionNumbers"][0]: D("50.00"),
    }
    renewed = await subscription(api, renews["subscriptionNumbers"][0])
    assert str(renewed["termStartDate"]) == "2026-04-01"
    assert str(renewed["termEndDate"]) == "2026-07-01"


async def test_one_invoice_per_invoice_owner_unless_invoiced_separately(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    together = order_body(account["accountNumber"], plan, "2026-01-01", run_billing=True)
    together["subscriptions"].append(together["subscriptions"][0])
    order = await place(api, together)
    assert len(order["subscriptionNumbers"]) == 2
    (number,) = order["invoiceNumbers"]
    assert total(await items(api, number)) == D("20.00")
    apart = order_body(
        account["accountNumber"], plan, "2026-01-01", run_billing=True, invoiceSeparately=True
    )
    apart["subscriptions"].append(apart["subscriptions"][0])
    order = await place(api, apart)
    assert len(order["invoiceNumbers"]) == 2


async def test_separate_and_shared_invoices_of_one_owner_in_one_billing(api: ApiClient) -> None:
    """One subscription invoiced separately and one not, for the same invoice owner: two
    invoices (not a crash sorting the invoice keys (owner, subscription id | None))."""
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    body = order_body(account["accountNumber"], plan, "2026-01-01", run_billing=True)
    apart = order_body(account["accountNumber"], plan, "2026-01-01", invoiceSeparately=True)
    body["subscriptions"].append(apart["subscriptions"][0])
    _, order = await api.call("POST", "/v1/orders", body, expect=None)
    assert order.get("success") is True, order
    assert len(order["invoiceNumbers"]) == 2
    totals = sorted([total(await items(api, n)) for n in order["invoiceNumbers"]])
    assert totals == [D("10.00"), D("10.00")]


async def test_an_invoice_owner_transfer_sends_later_invoices_to_the_new_owner(
    api: ApiClient,
) -> None:
    customer = await new_account(api)
    reseller = await new_account(api, name="Reseller")
    plan = await rate_plan(api, recurring_charge("10"))
    body = order_body(customer["accountNumber"], plan, "2026-01-01", run_billing=True)
    order = await place(api, body)
    (number,) = order["subscriptionNumbers"]
    transfer = {
        "type": "OwnerTransfer",
        "ownerTransfer": {"destinationInvoiceAccountNumber": reseller["accountNumber"]},
    }
    await place(api, amendment(customer["accountNumber"], number, "2026-01-15", transfer))
    assert await cmrr(api, customer["accountNumber"]) == D("10")
    assert await cmrr(api, reseller["accountNumber"]) == 0
    run = await bill_run(api, reseller["accountId"], "2026-02-01")
    inv = await only_invoice_of_run(api, run)
    assert inv["accountNumber"] == reseller["accountNumber"]
    assert await items(api, inv["invoiceNumber"]) == [("2026-02-01", "2026-02-28", D("10.00"))]


async def test_a_pending_bill_run_can_be_canceled_and_then_never_runs(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    await subscribe(api, account, plan, "2026-01-01")
    created = await api.ok(
        "POST",
        "/v1/bill-runs",
        {
            "billRunFilters": [{"filterType": "Account", "accountId": account["accountNumber"]}],
            "targetDate": "2026-01-01",
        },
    )
    canceled = await api.ok("PUT", f"/v1/bill-runs/{created['id']}/cancel", {})
    assert canceled["status"] == "Canceled"
    await execute_bill_run(api.tenant, created["id"])
    run = await api.ok("GET", f"/v1/bill-runs/{created['id']}")
    assert run["status"] == "Canceled" and run["invoiceCount"] == 0
    assert (await rows(api, "invoices"))["invoices"] == 0


async def test_a_subscription_across_currencies_is_refused(api: ApiClient) -> None:
    account = await new_account(api)
    euro = await api.create_account(currency="EUR", billCycleDay=1)
    plan = await rate_plan(api, recurring_charge("10"))
    body = order_body(
        account["accountNumber"],
        plan,
        "2026-01-01",
        invoiceOwnerAccountNumber=euro["accountNumber"],
    )
    _, payload = await api.call("POST", "/v1/orders", body, expect=None)
    assert_envelope(payload, 30)
    assert (await rows(api, "subscriptions"))["subscriptions"] == 0


async def test_a_bill_run_by_bill_cycle_day_and_batch_bills_only_matching_accounts(
    api: ApiClient,
) -> None:
    """A run without an account filter bills every account whose bill cycle day and batch match
    (`billCycleDay` "1".."31" or AllBillCycleDays, `batches`)."""
    plan = await rate_plan(api, recurring_charge("10.00"))
    first = await new_account(api, bill_cycle_day=1, batch="Batch1")
    fifteenth = await new_account(api, bill_cycle_day=15, batch="Batch2")
    for account in (first, fifteenth):
        await api.ok("POST", "/v1/orders", order_body(account["accountNumber"], plan, "2026-01-01"))

    async def run(**scope: Any) -> dict[str, Any]:
        created = await api.ok("POST", "/v1/bill-runs", {"targetDate": "2026-01-01", **scope})
        await execute_bill_run(api.tenant, created["id"])
        return await api.ok("GET", f"/v1/bill-runs/{created['id']}")

    only_day_one = await run(billCycleDay="1")
    assert only_day_one["status"] == "Completed" and only_day_one["invoiceCount"] == 1
    (invoice,) = await run_invoices(api, only_day_one["id"])
    assert invoice["accountId"] == first["accountId"]

    other_batch = await run(billCycleDay="AllBillCycleDays", batches=["Batch2"])
    assert other_batch["invoiceCount"] == 1
    (invoice,) = await run_invoices(api, other_batch["id"])
    assert invoice["accountId"] == fifteenth["accountId"]

    nothing_left = await run(billCycleDay="AllBillCycleDays")
    assert nothing_left["status"] == "Completed" and nothing_left["invoiceCount"] == 0


async def test_a_bill_run_left_processing_by_a_dead_worker_runs_again(api: ApiClient) -> None:
    """A worker killed mid-run rolls its billing back but leaves the run Processing; the job's
    retry (stalled-job recovery) must bill it, exactly once."""
    plan = await rate_plan(api, recurring_charge("10.00"))
    account = await new_account(api)
    await api.ok("POST", "/v1/orders", order_body(account["accountNumber"], plan, "2026-01-01"))
    created = await api.ok(
        "POST",
        "/v1/bill-runs",
        {
            "targetDate": "2026-01-01",
            "billRunFilters": [{"filterType": "Account", "accountId": account["accountId"]}],
        },
    )
    async with db.get_engine().begin() as conn:
        await conn.execute(
            text("UPDATE bill_runs SET status = 'Processing' WHERE tenant_id = :t AND id = :r"),
            {"t": api.tenant.id, "r": created["id"]},
        )
    await execute_bill_run(api.tenant, created["id"])
    run = await api.ok("GET", f"/v1/bill-runs/{created['id']}")
    assert run["status"] == "Completed" and run["invoiceCount"] == 1, run
    await execute_bill_run(api.tenant, created["id"])  # a second delivery changes nothing
    assert (await api.ok("GET", f"/v1/bill-runs/{created['id']}"))["invoiceCount"] == 1
    assert len(await run_invoices(api, created["id"])) == 1


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"billing": {"billingPeriod": "Fortnight"}}, "billingPeriod"),
        ({"billing": {"billingTiming": "Whenever"}}, "billingTiming"),
        ({"startDate": {"triggerEvent": "Tomorrow"}}, "triggerEvent"),
        ({"endDate": {"endDateCondition": "Never"}}, "endDateCondition"),
        (
            {
                "tiers": [
                    {"startingUnit": 0, "endingUnit": 10, "price": 5},
                    {"startingUnit": 20, "price": 4},
                ]
            },
            "tiers[1].startingUnit",
        ),
        ({"tiers": [{"startingUnit": 0, "price": -1}]}, "tiers[0].price"),
        (
            {"tiers": [{"startingUnit": 0, "price": "0.001", "priceFormat": "FlatFee"}]},
            "tiers[0].price",
        ),
        (
            {"tiers": [{"startingUnit": 0, "price": 1, "priceFormat": "Weird"}]},
            "tiers[0].priceFormat",
        ),
        ({"tiers": [{"startingUnit": 5, "endingUnit": 2, "price": 1}]}, "tiers[0].endingUnit"),
        ({"billing": {"billingPeriod": "Specific_Months"}}, "specificBillingPeriod"),
        (
            {
                "endDate": {
                    "endDateCondition": "Fixed_Period",
                    "upToPeriods": 2,
                    "upToPeriodsType": "Fortnights",
                }
            },
            "upToPeriodsType",
        ),
    ],
)
async def test_a_bad_charge_override_is_a_400_naming_the_field(
    api: ApiClient, override: dict[str, Any], field: str
) -> None:
    plan = await rate_plan(api, recurring_charge("10.00"))
    (charge_id,) = await plan_charge_ids(api, plan)
    account = await new_account(api)
    body = order_body(
        account["accountNumber"],
        plan,
        "2026-01-01",
        charge_overrides=[{"productRatePlanChargeId": charge_id, **override}],
    )
    status, payload = await api.call("POST", "/v1/orders", body, expect=None)
    assert status == 400, payload
    assert field in payload["reasons"][0]["message"], payload
    _, subscriptions = await api.call(
        "GET", f"/v1/subscriptions/accounts/{account['accountNumber']}"
    )
    assert subscriptions["subscriptions"] == []


async def test_fixed_period_in_any_spelling_of_billing_periods(api: ApiClient) -> None:
    plan = await rate_plan(api, recurring_charge("10.00"))
    (charge_id,) = await plan_charge_ids(api, plan)
    account = await new_account(api)
    end = {
        "endDateCondition": "Fixed_Period",
        "upToPeriods": 2,
        "upToPeriodsType": "billing periods",
    }
    body = order_body(
        account["accountNumber"],
        plan,
        "2026-01-01",
        charge_overrides=[{"productRatePlanChargeId": charge_id, "endDate": end}],
    )
    order = await api.ok("POST", "/v1/orders", body)
    sub = await api.ok("GET", f"/v1/subscriptions/{order['subscriptionNumbers'][0]}")
    assert sub["ratePlans"][0]["ratePlanCharges"][0]["effectiveEndDate"] == "2026-03-01"


async def test_a_charge_override_trigger_event_is_the_charges_own(api: ApiClient) -> None:
    """An override's trigger event both dates the charge and is what the subscription shows."""
    plan = await rate_plan(api, recurring_charge("10.00"))
    (charge_id,) = await plan_charge_ids(api, plan)
    account = await new_account(api)
    override = {
        "productRatePlanChargeId": charge_id,
        "startDate": {"triggerEvent": "SpecificDate", "specificTriggerDate": "2026-02-15"},
    }
    body = order_body(account["accountNumber"], plan, "2026-01-01", charge_overrides=[override])
    order = await api.ok("POST", "/v1/orders", body)
    sub = await api.ok("GET", f"/v1/subscriptions/{order['subscriptionNumbers'][0]}")
    (charge,) = sub["ratePlans"][0]["ratePlanCharges"]
    assert charge["triggerEvent"] == "SpecificDate"
    assert charge["effectiveStartDate"] == "2026-02-15"


async def test_override_tiers_are_kept_in_order_and_price_the_charge(api: ApiClient) -> None:
    plan = await rate_plan(api, recurring_charge("10.00"))
    (charge_id,) = await plan_charge_ids(api, plan)
    account = await new_account(api)
    override = {
        "productRatePlanChargeId": charge_id,
        "quantity": 3,
        "tiers": [{"startingUnit": 0, "endingUnit": 100, "price": "7.25"}],
    }
    body = order_body(account["accountNumber"], plan, "2026-01-01", charge_overrides=[override])
    order = await api.ok("POST", "/v1/orders", body)
    sub = await api.ok("GET", f"/v1/subscriptions/{order['subscriptionNumbers'][0]}")
    (charge,) = sub["ratePlans"][0]["ratePlanCharges"]
    assert D(str(charge["mrr"])) == D("21.75")
