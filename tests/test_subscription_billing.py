"""Subscriptions, orders and billing through the HTTP API on real PostgreSQL: billing math by
example (orders with runBilling and bill runs), contractedMrr by example, the legacy subscribe
and amendment endpoints, subscription reads and versions, and order processing rules."""

import re
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from partnerbill.billing.bill_runs import execute_bill_run
from partnerbill.core import db
from tests.catalog_fixtures import (
    amendment,
    new_account,
    one_time_charge,
    order_body,
    plan_charge_ids,
    quantity_override,
    rate_plan,
    recurring_charge,
    tier,
    usage_charge,
)
from tests.helpers import ApiClient, assert_envelope

D = Decimal

# --- helpers ------------------------------------------------------------------------------------


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


# --- billing math: periods and timing -----------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "timing", "price", "target", "expected"),
    [
        (
            "Month",
            "In Advance",
            "10",
            "2026-03-01",
            [
                ("2026-01-01", "2026-01-31", "10.00"),
                ("2026-02-01", "2026-02-28", "10.00"),
                ("2026-03-01", "2026-03-31", "10.00"),
            ],
        ),
        (
            "Month",
            "In Arrears",
            "10",
            "2026-03-01",
            [("2026-01-01", "2026-01-31", "10.00"), ("2026-02-01", "2026-02-28", "10.00")],
        ),
        (
            "Quarter",
            "In Advance",
            "30",
            "2026-04-01",
            [("2026-01-01", "2026-03-31", "30.00"), ("2026-04-01", "2026-06-30", "30.00")],
        ),
        (
            "Quarter",
            "In Arrears",
            "30",
            "2026-06-30",
            [("2026-01-01", "2026-03-31", "30.00")],
        ),
        ("Annual", "In Advance", "1200", "2026-06-01", [("2026-01-01", "2026-12-31", "1200.00")]),
        ("Annual", "In Arrears", "1200", "2026-12-31", []),
        (
            "Week",
            "In Advance",
            "140",
            "2026-01-08",
            [("2026-01-01", "2026-01-07", "140.00"), ("2026-01-08", "2026-01-14", "140.00")],
        ),
    ],
)
async def test_order_run_billing_bills_the_periods_due_by_the_target_date(
    api: ApiClient,
    period: str,
    timing: str,
    price: str,
    target: str,
    expected: list[tuple[str, str, str]],
) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge(price, period=period, timing=timing))
    body = order_body(
        account["accountNumber"], plan, "2026-01-01", run_billing=True, target_date=target
    )
    order = await place(api, body)
    if not expected:
        assert order["invoiceNumbers"] == [], order
        return
    (number,) = order["invoiceNumbers"]
    lines = await items(api, number)
    assert lines == [(s, e, D(a)) for s, e, a in expected]
    found = await invoice(api, number)
    assert found["status"] == "Posted" and found["accountNumber"] == account["accountNumber"]
    assert D(str(found["amount"])) == sum((D(a) for *_, a in expected), D(0))
    metrics = await api.metrics(account["accountNumber"])
    assert D(str(metrics["totalInvoiceBalance"])) == D(str(found["amount"]))


async def test_bill_runs_bill_each_period_once_in_advance_and_in_arrears(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await rate_plan(
        api,
        recurring_charge("10", timing="In Advance"),
        recurring_charge("5", timing="In Arrears"),
    )
    await subscribe(api, account, plan, "2026-01-01")
    first = await bill_run(api, account["accountId"], "2026-01-01", autoPost=True)
    assert first["status"] == "Posted"
    inv = await only_invoice_of_run(api, first)
    assert await items(api, inv["invoiceNumber"]) == [("2026-01-01", "2026-01-31", D("10.00"))]
    second = await bill_run(api, account["accountId"], "2026-02-01", autoPost=True)
    inv = await only_invoice_of_run(api, second)
    assert sorted(await items(api, inv["invoiceNumber"])) == [
        ("2026-01-01", "2026-01-31", D("5.00")),
        ("2026-02-01", "2026-02-28", D("10.00")),
    ]
    assert D(str(inv["amount"])) == D("15.00")
    assert D(str((await api.metrics(account["accountNumber"]))["totalInvoiceBalance"])) == D(
        "25.00"
    )


async def test_a_second_bill_run_with_the_same_target_bills_nothing(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    await subscribe(api, account, plan, "2026-01-01")
    first = await bill_run(api, account["accountId"], "2026-02-01")
    assert first["status"] == "Completed" and first["invoiceCount"] == 1
    before = await rows(api, "invoices", "invoice_items")
    again = await bill_run(api, account["accountId"], "2026-02-01")
    assert again["status"] == "Completed" and again["invoiceCount"] == 0, again
    assert await run_invoices(api, again["id"]) == []
    assert await rows(api, "invoices", "invoice_items") == before


# --- proration ----------------------------------------------------------------------------------


async def test_a_mid_period_start_prorates_the_first_period(api: ApiClient) -> None:
    account = await new_account(api, bill_cycle_day=1)
    plan = await rate_plan(api, recurring_charge("31"), recurring_charge("10"))
    await subscribe(api, account, plan, "2026-01-16")
    run = await bill_run(api, account["accountId"], "2026-02-01")
    inv = await only_invoice_of_run(api, run)
    assert inv["status"] == "Draft"
    assert sorted(await items(api, inv["invoiceNumber"])) == [
        ("2026-01-16", "2026-01-31", D("5.16")),  # 10 x 16/31 = 5.161…
        ("2026-01-16", "2026-01-31", D("16.00")),  # 31 x 16/31
        ("2026-02-01", "2026-02-28", D("10.00")),
        ("2026-02-01", "2026-02-28", D("31.00")),
    ]
    assert D(str(inv["amount"])) == D("62.16")


async def test_a_cancellation_before_billing_prorates_the_last_period(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("31"))
    order = await subscribe(api, account, plan, "2026-01-01")
    (number,) = order["subscriptionNumbers"]
    await place(
        api, amendment(account["accountNumber"], number, "2026-01-05", cancel_on("2026-03-11"))
    )
    run = await bill_run(api, account["accountId"], "2026-06-01")
    inv = await only_invoice_of_run(api, run)
    assert await items(api, inv["invoiceNumber"]) == [
        ("2026-01-01", "2026-01-31", D("31.00")),
        ("2026-02-01", "2026-02-28", D("31.00")),
        ("2026-03-01", "2026-03-10", D("10.00")),  # 31 x 10/31
    ]
    sub = await subscription(api, number)
    assert sub["status"] == "Cancelled" and str(sub["cancelledDate"]) == "2026-03-11"


async def test_a_cancellation_after_billing_in_advance_credits_the_unused_part(
    api: ApiClient,
) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("31"))
    body = order_body(account["accountNumber"], plan, "2026-01-01", run_billing=True)
    order = await place(api, body)
    (number,) = order["subscriptionNumbers"]
    assert await items(api, order["invoiceNumbers"][0]) == [
        ("2026-01-01", "2026-01-31", D("31.00"))
    ]
    await place(
        api, amendment(account["accountNumber"], number, "2026-01-21", cancel_on("2026-01-21"))
    )
    run = await bill_run(api, account["accountId"], "2026-02-01", autoPost=True)
    inv = await only_invoice_of_run(api, run)
    assert await items(api, inv["invoiceNumber"]) == [("2026-01-21", "2026-01-31", D("-11.00"))]
    assert D(str(inv["amount"])) == D("-11.00")
    # Nothing more is due or credited afterwards.
    later = await bill_run(api, account["accountId"], "2026-05-01")
    assert later["invoiceCount"] == 0


async def test_a_quantity_update_splits_the_charge_and_prices_from_the_change_date(
    api: ApiClient,
) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    (charge_id,) = await plan_charge_ids(api, plan)
    order = await subscribe(
        api, account, plan, "2026-01-01", charge_overrides=[quantity_override(charge_id, 5)]
    )
    (number,) = order["subscriptionNumbers"]
    plan_id, charge_number = first_charge(await subscription(api, number))
    update = update_quantity(plan_id, charge_number, "8", "2026-03-16")
    await place(api, amendment(account["accountNumber"], number, "2026-01-10", update))
    sub = await subscription(api, number)
    segments = sorted(charges(sub), key=lambda c: c["segment"])
    assert [(s["segment"], D(str(s["quantity"]))) for s in segments] == [(1, D(5)), (2, D(8))]
    assert str(segments[0]["effectiveEndDate"]) == "2026-03-16"
    assert str(segments[1]["effectiveStartDate"]) == "2026-03-16"
    run = await bill_run(api, account["accountId"], "2026-04-01")
    inv = await only_invoice_of_run(api, run)
    assert sorted(await items(api, inv["invoiceNumber"])) == [
        ("2026-01-01", "2026-01-31", D("50.00")),
        ("2026-02-01", "2026-02-28", D("50.00")),
        ("2026-03-01", "2026-03-15", D("24.19")),  # 50 x 15/31
        ("2026-03-16", "2026-03-31", D("41.29")),  # 80 x 16/31
        ("2026-04-01", "2026-04-30", D("80.00")),
    ]
    assert D(str(inv["amount"])) == D("245.48")


async def test_a_quantity_increase_after_billing_credits_and_rebills_the_rest_of_the_period(
    api: ApiClient,
) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    (charge_id,) = await plan_charge_ids(api, plan)
    body = order_body(
        account["accountNumber"],
        plan,
        "2026-01-01",
        run_billing=True,
        charge_overrides=[quantity_override(charge_id, 2)],
    )
    order = await place(api, body)
    (number,) = order["subscriptionNumbers"]
    plan_id, charge_number = first_charge(await subscription(api, number))
    update = update_quantity(plan_id, charge_number, "3", "2026-01-17")
    billed = await place(
        api,
        amendment(account["accountNumber"], number, "2026-01-17", update, run_billing=True),
    )
    (number_2,) = billed["invoiceNumbers"]
    assert sorted(await items(api, number_2)) == [
        ("2026-01-17", "2026-01-31", D("-9.68")),  # 20 x 15/31
        ("2026-01-17", "2026-01-31", D("14.52")),  # 30 x 15/31
    ]


# --- charge models ------------------------------------------------------------------------------

TIERS = [tier("10", 1, 10, "Per Unit"), tier("8", 11, None, "Per Unit")]


@pytest.mark.parametrize(
    ("model", "pricing", "quantity", "expected"),
    [
        ("Tiered Pricing", "recurringTiered", "15", "140.00"),  # 10 x 10 + 5 x 8
        ("Volume Pricing", "recurringVolume", "15", "120.00"),  # 15 x 8
        ("Volume Pricing", "recurringVolume", "4", "40.00"),
        ("Per Unit Pricing", "recurringPerUnit", "3", "30.00"),
    ],
)
async def test_tiered_volume_and_per_unit_prices(
    api: ApiClient, model: str, pricing: str, quantity: str, expected: str
) -> None:
    account = await new_account(api)
    if model == "Per Unit Pricing":
        charge = recurring_charge("10")
    else:
        charge = recurring_charge(model=model, tiers=TIERS)
    plan = await rate_plan(api, charge)
    (charge_id,) = await plan_charge_ids(api, plan)
    body = order_body(
        account["accountNumber"],
        plan,
        "2026-01-01",
        run_billing=True,
        charge_overrides=[quantity_override(charge_id, quantity, pricing)],
    )
    order = await place(api, body)
    assert await items(api, order["invoiceNumbers"][0]) == [
        ("2026-01-01", "2026-01-31", D(expected))
    ]
    assert await cmrr(api, account["accountNumber"]) == D(expected)
    sub = await subscription(api, order["subscriptionNumbers"][0])
    assert D(str(sub["contractedMrr"])) == D(expected)
    assert D(str(charges(sub)[0]["mrr"])) == D(expected)


async def test_a_flat_fee_tier_prices_the_tier_once(api: ApiClient) -> None:
    account = await new_account(api)
    tiers = [tier("100", 0, 10, "Flat Fee"), tier("5", 11, None, "Per Unit")]
    plan = await rate_plan(api, recurring_charge(model="Tiered Pricing", tiers=tiers))
    (charge_id,) = await plan_charge_ids(api, plan)
    body = order_body(
        account["accountNumber"],
        plan,
        "2026-01-01",
        run_billing=True,
        charge_overrides=[quantity_override(charge_id, 12, "recurringTiered")],
    )
    order = await place(api, body)
    assert total(await items(api, order["invoiceNumbers"][0])) == D("110.00")


async def test_one_time_charges_are_billed_once(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"), one_time_charge("100"))
    body = order_body(account["accountNumber"], plan, "2026-01-01", run_billing=True)
    order = await place(api, body)
    assert sorted(await items(api, order["invoiceNumbers"][0])) == [
        ("2026-01-01", "2026-01-01", D("100.00")),
        ("2026-01-01", "2026-01-31", D("10.00")),
    ]
    run = await bill_run(api, account["accountId"], "2026-03-01")
    inv = await only_invoice_of_run(api, run)
    assert sorted(await items(api, inv["invoiceNumber"])) == [
        ("2026-02-01", "2026-02-28", D("10.00")),
        ("2026-03-01", "2026-03-31", D("10.00")),
    ]
    sub = await subscription(api, order["subscriptionNumbers"][0])
    one_time = next(c for c in charges(sub) if c["type"] == "OneTime")
    assert D(str(one_time["mrr"])) == 0 and D(str(one_time["tcv"])) == D("100")


# --- charge type exclusion ----------------------------------------------------------------------


async def test_bill_run_charge_type_to_exclude_leaves_those_charges_for_later(
    api: ApiClient,
) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"), one_time_charge("100"))
    await subscribe(api, account, plan, "2026-01-01")
    run = await bill_run(api, account["accountId"], "2026-01-01", chargeTypeToExclude=["OneTime"])
    assert run["chargeTypeToExclude"] == ["OneTime"]
    inv = await only_invoice_of_run(api, run)
    assert await items(api, inv["invoiceNumber"]) == [("2026-01-01", "2026-01-31", D("10.00"))]
    later = await bill_run(api, account["accountId"], "2026-01-01")
    inv = await only_invoice_of_run(api, later)
    assert await items(api, inv["invoiceNumber"]) == [("2026-01-01", "2026-01-01", D("100.00"))]


async def test_order_billing_options_exclude_recurring_charges(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"), one_time_charge("100"))
    body = order_body(account["accountNumber"], plan, "2026-01-01", run_billing=True)
    body["processingOptions"]["billingOptions"]["chargeTypeToExclude"] = ["Recurring"]
    order = await place(api, body)
    assert await items(api, order["invoiceNumbers"][0]) == [
        ("2026-01-01", "2026-01-01", D("100.00"))
    ]


# --- bill run post and cancel -------------------------------------------------------------------


async def test_posting_a_completed_bill_run_posts_its_invoices_and_moves_metrics(
    api: ApiClient,
) -> None:
    account = await new_account(api, paymentTerm="Net 30")
    plan = await rate_plan(api, recurring_charge("10"))
    await subscribe(api, account, plan, "2026-01-01")
    run = await bill_run(api, account["accountId"], "2026-02-01")
    assert run["status"] == "Completed" and run["autoPost"] is False
    inv = await only_invoice_of_run(api, run)
    assert inv["status"] == "Draft" and D(str(inv["amount"])) == D("20.00")
    metrics = await api.metrics(account["accountNumber"])
    assert D(str(metrics["totalInvoiceBalance"])) == 0 and D(str(metrics["balance"])) == 0
    posted = await api.ok("PUT", f"/v1/bill-runs/{run['id']}/post", {"invoiceDate": "2026-02-02"})
    assert posted["status"] == "Posted"
    assert (await api.ok("GET", f"/v1/bill-runs/{run['billRunNumber']}"))["status"] == "Posted"
    inv = await invoice(api, inv["id"])
    assert inv["status"] == "Posted" and str(inv["invoiceDate"]) == "2026-02-02"
    # The due date keeps the payment term's distance from the new invoice date (as
    # `PUT /v1/invoices/{key}/post` with an invoiceDate does).
    assert str(inv["dueDate"]) == "2026-03-04", inv
    metrics = await api.metrics(account["accountNumber"])
    assert D(str(metrics["totalInvoiceBalance"])) == D("20.00")
    assert D(str(metrics["balance"])) == D("20.00")
    # Only a Completed run can be posted or canceled.
    _, payload = await api.call("PUT", f"/v1/bill-runs/{run['id']}/post", {}, expect=None)
    assert_envelope(payload, 30)
    _, payload = await api.call("PUT", f"/v1/bill-runs/{run['id']}/cancel", {}, expect=None)
    assert_envelope(payload, 30)


async def test_canceling_a_bill_run_cancels_its_drafts_and_the_period_is_billable_again(
    api: ApiClient,
) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"), one_time_charge("100"))
    order = await subscribe(api, account, plan, "2026-01-01")
    run = await bill_run(api, account["accountId"], "2026-02-01")
    inv = await only_invoice_of_run(api, run)
    assert D(str(inv["amount"])) == D("120.00")
    canceled = await api.ok("PUT", f"/v1/bill-runs/{run['id']}/cancel", {"cancelOnce": True})
    assert canceled["status"] == "Canceled"
    assert (await invoice(api, inv["id"]))["status"] == "Canceled"
    sub = await subscription(api, order["subscriptionNumbers"][0])
    assert all(c["chargedThroughDate"] is None for c in charges(sub)), charges(sub)
    metrics = await api.metrics(account["accountNumber"])
    assert D(str(metrics["totalInvoiceBalance"])) == 0
    again = await bill_run(api, account["accountId"], "2026-02-01", autoPost=True)
    inv = await only_invoice_of_run(api, again)
    assert D(str(inv["amount"])) == D("120.00")
    assert sorted(await items(api, inv["invoiceNumber"])) == [
        ("2026-01-01", "2026-01-01", D("100.00")),
        ("2026-01-01", "2026-01-31", D("10.00")),
        ("2026-02-01", "2026-02-28", D("10.00")),
    ]


async def test_canceling_a_later_bill_run_keeps_what_an_earlier_one_billed(
    api: ApiClient,
) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    order = await subscribe(api, account, plan, "2026-01-01")
    await bill_run(api, account["accountId"], "2026-01-01", autoPost=True)
    second = await bill_run(api, account["accountId"], "2026-03-01")
    assert D(str((await only_invoice_of_run(api, second))["amount"])) == D("20.00")
    await api.ok("PUT", f"/v1/bill-runs/{second['id']}/cancel", {})
    sub = await subscription(api, order["subscriptionNumbers"][0])
    assert str(charges(sub)[0]["chargedThroughDate"]) == "2026-02-01"
    third = await bill_run(api, account["accountId"], "2026-03-01")
    inv = await only_invoice_of_run(api, third)
    assert await items(api, inv["invoiceNumber"]) == [
        ("2026-02-01", "2026-02-28", D("10.00")),
        ("2026-03-01", "2026-03-31", D("10.00")),
    ]


# --- reseller: invoice owner differs from subscription owner ------------------------------------


async def test_the_invoice_owner_is_billed_and_the_subscription_owner_carries_the_mrr(
    api: ApiClient,
) -> None:
    reseller = await new_account(api, name="Reseller")
    customer = await new_account(api, name="End customer")
    plan = await rate_plan(api, recurring_charge("10"))
    body = order_body(
        customer["accountNumber"],
        plan,
        "2026-01-01",
        run_billing=True,
        invoiceOwnerAccountNumber=reseller["accountNumber"],
    )
    order = await place(api, body)
    (number,) = order["subscriptionNumbers"]
    assert order["subscriptions"][0]["subscriptionOwnerNumber"] == customer["accountNumber"]
    inv = await invoice(api, order["invoiceNumbers"][0])
    assert inv["accountNumber"] == reseller["accountNumber"]
    sub = await subscription(api, number)
    assert sub["accountNumber"] == customer["accountNumber"]
    assert sub["invoiceOwnerAccountNumber"] == reseller["accountNumber"]
    reseller_metrics = await api.metrics(reseller["accountNumber"])
    customer_metrics = await api.metrics(customer["accountNumber"])
    assert D(str(reseller_metrics["totalInvoiceBalance"])) == D("10.00")
    assert D(str(customer_metrics["totalInvoiceBalance"])) == 0
    assert D(str(customer_metrics["contractedMrr"])) == D("10")
    assert D(str(reseller_metrics["contractedMrr"])) == 0
    # A bill run for the subscription owner finds nothing; one for the invoice owner bills.
    assert (await bill_run(api, customer["accountId"], "2026-02-01"))["invoiceCount"] == 0
    run = await bill_run(api, reseller["accountId"], "2026-02-01")
    inv = await only_invoice_of_run(api, run)
    assert inv["accountId"] == reseller["accountId"]
    assert await items(api, inv["invoiceNumber"]) == [("2026-02-01", "2026-02-28", D("10.00"))]


# --- contractedMrr ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "price", "expected"),
    [
        ("Month", "10", "10"),
        ("Quarter", "30", "10"),
        ("Semi-Annual", "90", "15"),
        ("Annual", "1200", "100"),
        ("Week", "140", "600"),
    ],
)
async def test_contracted_mrr_normalises_the_billing_period_to_a_month(
    api: ApiClient, period: str, price: str, expected: str
) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge(price, period=period), one_time_charge("500"))
    order = await subscribe(api, account, plan, "2026-01-01")
    assert await cmrr(api, account["accountNumber"]) == D(expected)
    sub = await subscription(api, order["subscriptionNumbers"][0])
    assert D(str(sub["contractedMrr"])) == D(expected)


async def test_contracted_mrr_sums_the_subscriptions_an_account_owns(api: ApiClient) -> None:
    account = await new_account(api)
    monthly = await rate_plan(api, recurring_charge("10"))
    annual = await rate_plan(api, recurring_charge("1200", period="Annual"))
    await subscribe(api, account, monthly, "2026-01-01")
    await subscribe(api, account, annual, "2026-01-01")
    assert await cmrr(api, account["accountNumber"]) == D("110")


async def test_a_future_upgrade_counts_in_contracted_mrr_already(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    order = await subscribe(api, account, plan, "2026-01-01")
    (number,) = order["subscriptionNumbers"]
    plan_id, charge_number = first_charge(await subscription(api, number))
    upgrade = update_quantity(plan_id, charge_number, "3", "2026-02-01")
    await place(api, amendment(account["accountNumber"], number, "2026-01-10", upgrade))
    assert await cmrr(api, account["accountNumber"]) == D("30")
    assert D(str((await subscription(api, number))["contractedMrr"])) == D("30")


async def test_a_future_cancellation_zeroes_the_account_but_not_the_subscription(
    api: ApiClient,
) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    order = await subscribe(api, account, plan, "2026-01-01")
    (number,) = order["subscriptionNumbers"]
    await place(
        api, amendment(account["accountNumber"], number, "2026-01-10", cancel_on("2026-06-01"))
    )
    assert await cmrr(api, account["accountNumber"]) == 0
    assert D(str((await subscription(api, number))["contractedMrr"])) == D("10")
    refreshed = await api.ok(
        "POST", f"/v1/partnerbill/accounts/{account['accountNumber']}/refresh-metrics"
    )
    assert refreshed["success"] is True
    assert await cmrr(api, account["accountNumber"]) == 0


async def test_add_and_remove_product_move_contracted_mrr(api: ApiClient) -> None:
    account = await new_account(api)
    base = await rate_plan(api, recurring_charge("10"), name="Base")
    addon = await rate_plan(api, recurring_charge("5"), name="Add-on")
    order = await subscribe(api, account, base, "2026-01-01")
    (number,) = order["subscriptionNumbers"]
    add = {"type": "AddProduct", "addProduct": {"productRatePlanId": addon}}
    await place(api, amendment(account["accountNumber"], number, "2026-01-10", add))
    assert await cmrr(api, account["accountNumber"]) == D("15")
    sub = await subscription(api, number)
    assert len(sub["ratePlans"]) == 2 and D(str(sub["contractedMrr"])) == D("15")
    base_plan = next(p for p in sub["ratePlans"] if p["productRatePlanId"] == base)
    remove = {"type": "RemoveProduct", "removeProduct": {"ratePlanId": base_plan["id"]}}
    await place(api, amendment(account["accountNumber"], number, "2026-02-01", remove))
    assert await cmrr(api, account["accountNumber"]) == D("5")
    sub = await subscription(api, number)
    assert D(str(sub["contractedMrr"])) == D("5")
    removed = next(p for p in sub["ratePlans"] if p["productRatePlanId"] == base)
    assert removed["lastChangeType"] == "Remove"


async def test_an_owner_transfer_moves_contracted_mrr_between_owners(api: ApiClient) -> None:
    first = await new_account(api, name="First owner")
    second = await new_account(api, name="Second owner")
    plan = await rate_plan(api, recurring_charge("10"))
    order = await subscribe(api, first, plan, "2026-01-01")
    (number,) = order["subscriptionNumbers"]
    transfer = {
        "type": "OwnerTransfer",
        "ownerTransfer": {"destinationAccountNumber": second["accountNumber"]},
    }
    moved = await place(api, amendment(first["accountNumber"], number, "2026-02-01", transfer))
    assert moved["subscriptions"][0]["subscriptionOwnerNumber"] == second["accountNumber"]
    assert await cmrr(api, first["accountNumber"]) == 0
    assert await cmrr(api, second["accountNumber"]) == D("10")
    sub = await subscription(api, number)
    assert sub["accountNumber"] == second["accountNumber"]
    # The invoice owner did not change.
    assert sub["invoiceOwnerAccountNumber"] == first["accountNumber"]
    for key in (first["accountNumber"], second["accountNumber"]):
        before = await cmrr(api, key)
        await api.refresh(key)
        assert await cmrr(api, key) == before


# --- legacy subscribe and reads -----------------------------------------------------------------


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


async def test_legacy_subscribe_answers_number_mrr_and_contract_value(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    (charge_id,) = await plan_charge_ids(api, plan)
    body = legacy_subscribe_body(account["accountNumber"], plan, charge_id)
    created = await api.ok("POST", "/v1/subscriptions", body)
    assert re.fullmatch(r"A-S\d{8}", created["subscriptionNumber"]), created
    assert D(str(created["contractedMrr"])) == D("60")
    assert D(str(created["totalContractedValue"])) == D("720")
    assert "invoiceId" not in created
    assert await cmrr(api, account["accountNumber"]) == D("60")
    by_number = await subscription(api, created["subscriptionNumber"])
    by_id = await subscription(api, created["subscriptionId"])
    assert by_number == by_id
    assert by_number["id"] == created["subscriptionId"]
    assert by_number["version"] == 1 and by_number["isLatestVersion"] is True
    assert by_number["status"] == "Active" and by_number["termType"] == "TERMED"
    assert str(by_number["termStartDate"]) == "2026-01-01"
    assert str(by_number["termEndDate"]) == "2027-01-01"
    assert by_number["accountNumber"] == account["accountNumber"]
    (rate_plan_json,) = by_number["ratePlans"]
    assert rate_plan_json["productRatePlanId"] == plan
    (charge,) = rate_plan_json["ratePlanCharges"]
    assert charge["productRatePlanChargeId"] == charge_id
    assert D(str(charge["price"])) == D("20") and D(str(charge["quantity"])) == D(3)
    assert D(str(charge["mrr"])) == D("60")
    assert charge["chargedThroughDate"] is None


async def test_a_recurring_charge_reports_its_contract_value(api: ApiClient) -> None:
    """Zuora's `tcv` on a rate plan charge is that charge's contract value over the term
    (here 60 a month for 12 months), not 0."""
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    (charge_id,) = await plan_charge_ids(api, plan)
    body = legacy_subscribe_body(account["accountNumber"], plan, charge_id)
    created = await api.ok("POST", "/v1/subscriptions", body)
    (charge,) = charges(await subscription(api, created["subscriptionNumber"]))
    assert D(str(charge["tcv"])) == D("720")


async def test_legacy_subscribe_with_billing_sets_charged_through(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    (charge_id,) = await plan_charge_ids(api, plan)
    body = {
        **legacy_subscribe_body(account["accountNumber"], plan, charge_id),
        "runBilling": True,
        "targetDate": "2026-02-15",
    }
    created = await api.ok("POST", "/v1/subscriptions", body)
    inv = await invoice(api, created["invoiceId"])
    assert D(str(inv["amount"])) == D("120.00") and inv["status"] == "Posted"
    (charge,) = charges(await subscription(api, created["subscriptionId"]))
    assert str(charge["chargedThroughDate"]) == "2026-03-01"


async def test_an_amendment_makes_version_2_and_the_old_version_id_answers_as_not_latest(
    api: ApiClient,
) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    order = await subscribe(api, account, plan, "2026-01-01")
    (number,) = order["subscriptionNumbers"]
    before = await subscription(api, number)
    assert before["version"] == 1 and before["isLatestVersion"] is True
    plan_id, charge_number = first_charge(before)
    update = update_quantity(plan_id, charge_number, "2", "2026-02-01")
    await place(api, amendment(account["accountNumber"], number, "2026-01-10", update))
    latest = await subscription(api, number)
    assert latest["version"] == 2 and latest["isLatestVersion"] is True
    assert D(str(latest["contractedMrr"])) == D("20")
    old = await subscription(api, before["id"])
    assert old["version"] == 1, old
    assert old["isLatestVersion"] is False
    assert D(str(old["contractedMrr"])) == D("10")
    assert latest["id"] != before["id"]


async def test_subscriptions_of_an_account_are_paged(api: ApiClient) -> None:
    account = await new_account(api)
    other = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    numbers = [
        (await subscribe(api, account, plan, "2026-01-01"))["subscriptionNumbers"][0]
        for _ in range(3)
    ]
    await subscribe(api, other, plan, "2026-01-01")
    first = await api.ok("GET", f"/v1/subscriptions/accounts/{account['accountNumber']}?pageSize=2")
    assert [s["subscriptionNumber"] for s in first["subscriptions"]] == sorted(numbers)[:2]
    assert "page=2" in first["nextPage"]
    second = await api.ok(
        "GET", f"/v1/subscriptions/accounts/{account['accountId']}?page=2&pageSize=2"
    )
    assert [s["subscriptionNumber"] for s in second["subscriptions"]] == sorted(numbers)[2:]
    assert "nextPage" not in second
    _, payload = await api.call("GET", "/v1/subscriptions/accounts/A-NOPE", expect=404)
    assert_envelope(payload, 40)


async def test_an_unknown_subscription_is_not_found(api: ApiClient) -> None:
    _, payload = await api.call("GET", "/v1/subscriptions/A-S99999999", expect=404)
    assert_envelope(payload, 40)


# --- legacy amendments --------------------------------------------------------------------------


async def test_legacy_cancel(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    (number,) = (await subscribe(api, account, plan, "2026-01-01"))["subscriptionNumbers"]
    canceled = await api.ok(
        "PUT",
        f"/v1/subscriptions/{number}/cancel",
        {
            "cancellationPolicy": "SpecificDate",
            "cancellationEffectiveDate": "2026-03-01",
            "orderDate": "2026-02-10",
        },
    )
    assert canceled["status"] == "Cancelled" and str(canceled["cancelledDate"]) == "2026-03-01"
    assert re.fullmatch(r"O-\d{8}", canceled["orderNumber"]), canceled
    assert canceled["subscriptionNumbers"] == [number]
    assert await cmrr(api, account["accountNumber"]) == 0
    # A cancelled subscription cannot be amended again.
    _, payload = await api.call(
        "PUT",
        f"/v1/subscriptions/{number}/cancel",
        {"cancellationPolicy": "SpecificDate", "cancellationEffectiveDate": "2026-03-05"},
        expect=None,
    )
    assert_envelope(payload, 30)


async def test_legacy_cancel_end_of_current_term(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    (charge_id,) = await plan_charge_ids(api, plan)
    created = await api.ok(
        "POST",
        "/v1/subscriptions",
        legacy_subscribe_body(account["accountNumber"], plan, charge_id),
    )
    canceled = await api.ok(
        "PUT",
        f"/v1/subscriptions/{created['subscriptionNumber']}/cancel",
        {"cancellationPolicy": "EndOfCurrentTerm", "orderDate": "2026-02-10"},
    )
    assert str(canceled["cancelledDate"]) == "2027-01-01"


async def test_legacy_suspend_and_resume_skip_the_suspended_periods(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    (number,) = (await subscribe(api, account, plan, "2026-01-01"))["subscriptionNumbers"]
    suspended = await api.ok(
        "PUT",
        f"/v1/subscriptions/{number}/suspend",
        {
            "suspendPolicy": "SpecificDate",
            "suspendSpecificDate": "2026-03-01",
            "orderDate": "2026-02-10",
        },
    )
    assert suspended["status"] == "Suspended"
    assert await cmrr(api, account["accountNumber"]) == 0
    resumed = await api.ok(
        "PUT",
        f"/v1/subscriptions/{number}/resume",
        {
            "resumePolicy": "SpecificDate",
            "resumeSpecificDate": "2026-04-01",
            "orderDate": "2026-02-11",
        },
    )
    assert resumed["status"] == "Active"
    assert await cmrr(api, account["accountNumber"]) == D("10")
    run = await bill_run(api, account["accountId"], "2026-05-01")
    inv = await only_invoice_of_run(api, run)
    assert await items(api, inv["invoiceNumber"]) == [
        ("2026-01-01", "2026-01-31", D("10.00")),
        ("2026-02-01", "2026-02-28", D("10.00")),
        ("2026-04-01", "2026-04-30", D("10.00")),
        ("2026-05-01", "2026-05-31", D("10.00")),
    ]
    # Resuming an active subscription is refused.
    _, payload = await api.call(
        "PUT",
        f"/v1/subscriptions/{number}/resume",
        {"resumePolicy": "Today", "orderDate": "2026-05-02"},
        expect=None,
    )
    assert_envelope(payload, 30)


async def test_legacy_renew_extends_a_termed_subscription(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    (charge_id,) = await plan_charge_ids(api, plan)
    created = await api.ok(
        "POST",
        "/v1/subscriptions",
        legacy_subscribe_body(account["accountNumber"], plan, charge_id),
    )
    renewed = await api.ok(
        "PUT",
        f"/v1/subscriptions/{created['subscriptionNumber']}/renew",
        {"orderDate": "2026-12-01"},
    )
    assert str(renewed["termEndDate"]) == "2028-01-01"
    sub = await subscription(api, created["subscriptionNumber"])
    assert str(sub["termStartDate"]) == "2027-01-01" and str(sub["termEndDate"]) == "2028-01-01"
    assert sub["version"] == 2


# --- orders -------------------------------------------------------------------------------------


async def test_an_order_with_a_new_partner_account(api: ApiClient) -> None:
    plan = await rate_plan(api, recurring_charge("10"))
    body = order_body("ignored", plan, "2026-01-01", run_billing=True)
    del body["existingAccountNumber"]
    body["newAccount"] = {
        "name": "Partner customer",
        "currency": "USD",
        "billCycleDay": 1,
        "billToContact": {"firstName": "Grace", "lastName": "Hopper"},
        "partnerAccount": True,
    }
    order = await place(api, body)
    number = order["accountNumber"]
    account = await api.ok("GET", f"/v1/accounts/{number}")
    assert account["basicInfo"]["partnerAccount"] is True
    assert account["billingAndPayment"]["billCycleDay"] == 1
    # A partner account's metrics wait for the recalculation.
    assert D(str(account["metrics"]["contractedMrr"])) == 0
    assert D(str(account["metrics"]["totalInvoiceBalance"])) == 0
    await api.refresh(number)
    metrics = await api.metrics(number)
    assert D(str(metrics["contractedMrr"])) == D("10")
    assert D(str(metrics["totalInvoiceBalance"])) == D("10.00")


async def test_order_response_shape_and_ids(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    body = order_body(account["accountNumber"], plan, "2026-01-01", run_billing=True)
    order = await place(api, body)
    assert re.fullmatch(r"O-\d{8}", order["orderNumber"]), order
    assert order["accountNumber"] == account["accountNumber"]
    assert order["status"] == "Completed"
    (number,) = order["subscriptionNumbers"]
    (sub,) = order["subscriptions"]
    assert sub["subscriptionNumber"] == number and sub["status"] == "Active"
    assert sub["subscriptionOwnerNumber"] == account["accountNumber"]
    assert sub["subscriptionOwnerId"] == account["accountId"]
    assert len(order["invoiceNumbers"]) == 1
    assert "orderId" not in order and "subscriptionIds" not in order
    read = await api.ok("GET", f"/v1/orders/{order['orderNumber']}")
    assert read["order"]["orderNumber"] == order["orderNumber"]
    assert read["order"]["invoiceNumbers"] == order["invoiceNumbers"]

    with_ids = await place(
        api,
        order_body(
            account["accountNumber"],
            plan,
            "2026-01-01",
            run_billing=True,
            orderNumber="MY-ORDER-1",
        )
        | {"orderNumber": "MY-ORDER-1"},
        "?returnIds=true",
    )
    assert with_ids["orderNumber"] == "MY-ORDER-1"
    assert with_ids["accountId"] == account["accountId"]
    assert len(with_ids["orderId"]) == 32
    (sub_id,) = with_ids["subscriptionIds"]
    assert (await subscription(api, sub_id))["subscriptionNumber"] == with_ids[
        "subscriptionNumbers"
    ][0]
    (invoice_id,) = with_ids["invoiceIds"]
    assert (await invoice(api, invoice_id))["invoiceNumber"] == with_ids["invoiceNumbers"][0]
    # An order number is taken once.
    _, payload = await api.call(
        "POST",
        "/v1/orders",
        order_body(account["accountNumber"], plan, "2026-01-01") | {"orderNumber": "MY-ORDER-1"},
        expect=None,
    )
    assert_envelope(payload, 30)


async def test_terms_and_conditions_and_renewal_by_order(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    order = await subscribe(
        api,
        account,
        plan,
        "2026-01-01",
        terms={
            "initialTerm": {"termType": "TERMED", "period": 12, "periodType": "Month"},
            "renewalTerms": [{"period": 12, "periodType": "Month"}],
        },
    )
    (number,) = order["subscriptionNumbers"]
    terms = {
        "type": "TermsAndConditions",
        "termsAndConditions": {
            "autoRenew": True,
            "lastTerm": {"termType": "TERMED", "period": 24, "periodType": "Month"},
            "renewalSetting": "RENEW_WITH_SPECIFIC_TERM",
            "renewalTerms": [{"period": 6, "periodType": "Month"}],
        },
    }
    await place(api, amendment(account["accountNumber"], number, "2026-02-01", terms))
    sub = await subscription(api, number)
    assert sub["autoRenew"] is True
    assert sub["initialTerm"] == 24 and str(sub["termEndDate"]) == "2028-01-01"
    assert sub["renewalTerm"] == 6 and sub["renewalTermPeriodType"] == "Month"
    renew = {"type": "RenewSubscription"}
    await place(api, amendment(account["accountNumber"], number, "2027-12-01", renew))
    sub = await subscription(api, number)
    assert str(sub["termStartDate"]) == "2028-01-01" and str(sub["termEndDate"]) == "2028-07-01"
    # An evergreen subscription cannot be renewed.
    evergreen = (await subscribe(api, account, plan, "2026-01-01"))["subscriptionNumbers"][0]
    _, payload = await api.call(
        "POST",
        "/v1/orders",
        amendment(account["accountNumber"], evergreen, "2026-02-01", renew),
        expect=None,
    )
    assert_envelope(payload, 30)


async def test_suspend_and_resume_by_order(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    (number,) = (await subscribe(api, account, plan, "2026-01-01"))["subscriptionNumbers"]
    suspend = {
        "type": "Suspend",
        "suspend": {"suspendPolicy": "Today"},
    }
    order = await place(api, amendment(account["accountNumber"], number, "2026-02-15", suspend))
    assert order["subscriptions"][0]["status"] == "Suspended"
    resume = {
        "type": "Resume",
        "resume": {
            "resumePolicy": "FixedPeriodsFromSuspendDate",
            "resumePeriods": 1,
            "resumePeriodsType": "Month",
            "extendsTerm": True,
        },
    }
    order = await place(api, amendment(account["accountNumber"], number, "2026-02-20", resume))
    assert order["subscriptions"][0]["status"] == "Active"
    sub = await subscription(api, number)
    assert str(sub["scheduledResumeDate"]) == "2026-03-15"
    run = await bill_run(api, account["accountId"], "2026-03-31")
    inv = await only_invoice_of_run(api, run)
    assert await items(api, inv["invoiceNumber"]) == [
        ("2026-01-01", "2026-01-31", D("10.00")),
        ("2026-02-01", "2026-02-14", D("5.00")),  # 10 x 14/28
        ("2026-03-15", "2026-03-31", D("5.48")),  # 10 x 17/31
    ]


async def test_an_order_is_all_or_nothing(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    body = order_body(account["accountNumber"], plan, "2026-01-01", run_billing=True)
    second = order_body(account["accountNumber"], "0" * 32, "2026-01-01")["subscriptions"][0]
    body["subscriptions"].append(second)
    tables = ("orders", "subscriptions", "rate_plans", "rate_plan_charges", "invoices")
    before = await rows(api, *tables)
    _, payload = await api.call("POST", "/v1/orders", body, expect=400)
    reasons = assert_envelope(payload, 20)
    assert "subscriptions[1]" in reasons[0]["message"], reasons
    assert await rows(api, *tables) == before
    assert before["subscriptions"] == 0
    assert await cmrr(api, account["accountNumber"]) == 0


async def test_the_order_sync_limit_is_a_tenant_setting(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    settings = await api.ok("PUT", "/v1/partnerbill/settings", {"orderSyncLimit": 1})
    assert settings["orderSyncLimit"] == 1
    body = order_body(account["accountNumber"], plan, "2026-01-01")
    body["subscriptions"].append(body["subscriptions"][0])
    _, payload = await api.call("POST", "/v1/orders", body, expect=None)
    reasons = assert_envelope(payload, 70)
    assert str(reasons[0]["code"]).startswith("532000"), reasons
    assert (await rows(api, "subscriptions"))["subscriptions"] == 0
    await place(api, order_body(account["accountNumber"], plan, "2026-01-01"))


async def test_a_usage_charge_is_refused_by_a_business_rule(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"), usage_charge())
    _, payload = await api.call(
        "POST", "/v1/orders", order_body(account["accountNumber"], plan, "2026-01-01"), expect=None
    )
    assert_envelope(payload, 30)
    assert (await rows(api, "subscriptions", "orders")) == {"subscriptions": 0, "orders": 0}


async def test_an_amendment_needs_the_subscription_number(api: ApiClient) -> None:
    account = await new_account(api)
    body = {
        "orderDate": "2026-01-01",
        "existingAccountNumber": account["accountNumber"],
        "subscriptions": [{"orderActions": [cancel_on("2026-02-01")]}],
    }
    _, payload = await api.call("POST", "/v1/orders", body, expect=400)
    assert_envelope(payload, 20)


async def test_an_order_number_taken_twice_leaves_nothing_of_the_second_order(
    api: ApiClient,
) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    body = order_body(account["accountNumber"], plan, "2026-01-01", run_billing=True)
    await place(api, body | {"orderNumber": "DUP-1"})
    tables = ("orders", "subscriptions", "rate_plan_charges", "invoices", "invoice_items")
    before = await rows(api, *tables)
    metrics = await api.metrics(account["accountNumber"])
    _, payload = await api.call("POST", "/v1/orders", body | {"orderNumber": "DUP-1"}, expect=None)
    assert_envelope(payload, 30)
    assert await rows(api, *tables) == before
    assert await api.metrics(account["accountNumber"]) == metrics


def entry(order: dict[str, Any]) -> dict[str, Any]:
    """The one `subscriptions` entry of an `order_body`."""
    (only,) = order["subscriptions"]
    return dict(only)


async def test_an_order_of_50_subscriptions_creates_them_in_its_sequence(api: ApiClient) -> None:
    owner = await new_account(api)
    payer = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    extra = await rate_plan(api, recurring_charge("3"), name="Extra")
    (charge_id,) = await plan_charge_ids(api, plan)
    existing = (await subscribe(api, owner, plan, "2026-01-01"))["subscriptionNumbers"][0]
    entries = []
    for j in range(50):
        created = entry(
            order_body(
                owner["accountNumber"],
                plan,
                "2026-01-01",
                charge_overrides=[quantity_override(charge_id, 1 + j % 7)],
                invoiceOwnerAccountNumber=payer["accountNumber"],
            )
        )
        if j % 10 == 3:
            created["notes"] = f"entry {j}"
        entries.append(created)
        if j == 20:  # an action on the subscription just created, then on an existing one
            created["orderActions"].append(
                {"type": "AddProduct", "addProduct": {"productRatePlanId": extra}}
            )
            cancel = amendment(
                owner["accountNumber"], existing, "2026-01-01", cancel_on("2026-03-01")
            )
            entries.append(entry(cancel))
    body = {
        "orderDate": "2026-01-01",
        "existingAccountNumber": owner["accountNumber"],
        "subscriptions": entries,
    }
    await api.ok("PUT", "/v1/partnerbill/settings", {"orderSyncLimit": 60})
    order = await place(api, body)

    numbers = order["subscriptionNumbers"]
    assert len(numbers) == 51 and numbers[21] == existing
    created_numbers = numbers[:21] + numbers[22:]
    sequence = [int(n.removeprefix("A-S")) for n in created_numbers]
    assert sequence == list(range(sequence[0], sequence[0] + 50))  # nothing else numbers them
    assert [s["subscriptionNumber"] for s in order["subscriptions"]] == numbers
    for j, number in enumerate(created_numbers):
        sub = await subscription(api, number)
        assert sub["invoiceOwnerAccountNumber"] == payer["accountNumber"]
        assert sub["notes"] == (f"entry {j}" if j % 10 == 3 else None)
        assert charges(sub)[0]["quantity"] == 1 + j % 7
        assert len(sub["ratePlans"]) == (2 if j == 20 else 1)
    assert (await subscription(api, existing))["status"] == "Cancelled"
    read = await api.ok("GET", f"/v1/orders/{order['orderNumber']}")
    assert [s["subscriptionNumber"] for s in read["order"]["subscriptions"]] == numbers
    assert [a["sequence"] for s in read["order"]["subscriptions"] for a in s["orderActions"]] == (
        list(range(1, 53))
    )
    seats = sum(1 + j % 7 for j in range(50))
    assert await cmrr(api, owner["accountNumber"]) == 10 * seats + 3


async def test_a_subscription_number_taken_refuses_the_order_before_later_refusals(
    api: ApiClient,
) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    await subscribe(api, account, plan, "2026-01-01", subscriptionNumber="TAKEN-1")
    tables = ("orders", "subscriptions", "rate_plans", "rate_plan_charges")
    before = await rows(api, *tables)

    def creating(number: str | None, plan_id: str = plan) -> dict[str, Any]:
        numbered = {"subscriptionNumber": number} if number else {}
        return entry(order_body(account["accountNumber"], plan_id, "2026-01-01", **numbered))

    bad_override = creating("TAKEN-1")
    bad_override["orderActions"][0]["createSubscription"]["subscribeToProducts"][0][
        "chargeOverrides"
    ] = [quantity_override("0" * 32, 2)]
    for entries, number in [
        # taken, then an unknown rate plan in a later subscription
        ([creating(None), creating("TAKEN-1"), creating(None, "0" * 32)], "TAKEN-1"),
        # taken twice in one order, then a subscription with no subscription number to amend
        (
            [creating("NEW-1"), creating("NEW-1"), {"orderActions": [cancel_on("2026-02-01")]}],
            "NEW-1",
        ),
        # taken, with a charge override that is not the rate plan's
        ([bad_override], "TAKEN-1"),
    ]:
        body = {
            "orderDate": "2026-01-01",
            "existingAccountNumber": account["accountNumber"],
            "subscriptions": entries,
        }
        _, payload = await api.call("POST", "/v1/orders", body, expect=200)
        reasons = assert_envelope(payload, 30)
        assert reasons[0]["message"] == f"A subscription numbered '{number}' already exists.", (
            reasons
        )
        assert await rows(api, *tables) == before


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
