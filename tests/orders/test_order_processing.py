"""Orders through the HTTP API on real PostgreSQL: the response's shape and ids, terms and renewal,
suspend and resume, all or nothing, the sync limit, the business rules that refuse an order, and
the order of many subscriptions in one order."""

import re
from typing import Any

from tests.catalog_fixtures import (
    amendment,
    new_account,
    order_body,
    plan_charge_ids,
    quantity_override,
    rate_plan,
    recurring_charge,
    usage_charge,
)
from tests.helpers import ApiClient, assert_envelope
from tests.subscription_billing import (
    D,
    bill_run,
    cancel_on,
    charges,
    cmrr,
    invoice,
    items,
    only_invoice_of_run,
    place,
    rows,
    subscribe,
    subscription,
)

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
