"""Billing math by example through the HTTP API on real PostgreSQL: the periods an order with
runBilling or a bill run bills by its target date, in advance and in arrears, and proration at a
mid-period start, a cancellation and a quantity change."""

import pytest

from tests.catalog_fixtures import (
    amendment,
    new_account,
    order_body,
    plan_charge_ids,
    quantity_override,
    rate_plan,
    recurring_charge,
)
from tests.helpers import ApiClient
from tests.subscription_billing import (
    D,
    bill_run,
    cancel_on,
    charges,
    first_charge,
    invoice,
    items,
    only_invoice_of_run,
    place,
    rows,
    run_invoices,
    subscribe,
    subscription,
    update_quantity,
)

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
