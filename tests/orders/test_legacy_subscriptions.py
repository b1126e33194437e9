"""The legacy subscribe and amendment endpoints through the HTTP API on real PostgreSQL: subscribe
(with and without billing), subscription reads and versions, cancel, suspend and resume, renew."""

import re

from tests.catalog_fixtures import (
    amendment,
    new_account,
    plan_charge_ids,
    rate_plan,
    recurring_charge,
)
from tests.helpers import ApiClient, assert_envelope
from tests.subscription_billing import (
    D,
    bill_run,
    charges,
    cmrr,
    first_charge,
    invoice,
    items,
    legacy_subscribe_body,
    only_invoice_of_run,
    place,
    subscribe,
    subscription,
    update_quantity,
)

# --- legacy subscribe and reads -----------------------------------------------------------------


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


async def test_a_renewal_term_for_an_evergreen_subscription_needs_its_period_type(
    api: ApiClient,
) -> None:
    # An evergreen subscription has no renewal term to keep the period type of: the request
    # must name it (a fuzzed request once got a 500 here).
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    (number,) = (await subscribe(api, account, plan, "2026-01-01"))["subscriptionNumbers"]
    before = await subscription(api, number)
    status, payload = await api.call(
        "PUT", f"/v1/subscriptions/{number}", {"renewalTerm": 12}, expect=None
    )
    assert status == 400, payload
    (reason,) = assert_envelope(payload, 22)
    assert "renewalTermPeriodType" in reason["message"], reason
    assert (await subscription(api, number))["version"] == before["version"]
    updated = await api.ok(
        "PUT",
        f"/v1/subscriptions/{number}",
        {"renewalTerm": 12, "renewalTermPeriodType": "Month"},
    )
    assert updated["success"] is True, updated
