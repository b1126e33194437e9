"""contractedMrr by example through the HTTP API on real PostgreSQL: the billing period normalised
to a month, the sum over an account's subscriptions, future upgrades and cancellations, added and
removed products, and an owner transfer."""

import pytest

from tests.catalog_fixtures import (
    amendment,
    new_account,
    one_time_charge,
    rate_plan,
    recurring_charge,
)
from tests.helpers import ApiClient
from tests.subscription_billing import (
    D,
    cancel_on,
    cmrr,
    first_charge,
    place,
    subscribe,
    subscription,
    update_quantity,
)

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
