"""Charge models by example through the HTTP API on real PostgreSQL: tiered, volume, per-unit,
flat-fee tier and one-time prices, and the charge types a bill run or an order's billing
options leave out."""

import pytest

from tests.catalog_fixtures import (
    new_account,
    one_time_charge,
    order_body,
    plan_charge_ids,
    quantity_override,
    rate_plan,
    recurring_charge,
    tier,
)
from tests.helpers import ApiClient
from tests.subscription_billing import (
    D,
    bill_run,
    charges,
    cmrr,
    items,
    only_invoice_of_run,
    place,
    subscribe,
    subscription,
    total,
)

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
