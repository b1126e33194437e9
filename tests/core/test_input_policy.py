"""The input policy, request by request: NUL bytes refused in every string (body, path, query,
form) and integers inside their documented ranges. Every refusal is a 400 in the Zuora envelope
naming the field, and writes nothing."""

from typing import Any

import pytest

from tests.catalog_fixtures import (
    amendment,
    created,
    new_account,
    order_body,
    plan_charge_ids,
)
from tests.core.input_policy_support import (
    INVALID_VALUE,
    _bad_request,
    _messages,
    _plan,
    _raw,
    _rows,
    refused,
)
from tests.helpers import ApiClient, assert_envelope, invoice_body

# --- NUL bytes ----------------------------------------------------------------------------------


async def test_nul_in_the_oauth_form_is_refused_before_any_lookup(api: ApiClient) -> None:
    response = await api.http.post(
        "/oauth/token",
        content=b"client_id=a%00&client_secret=b&grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    _bad_request(response, "client_id")


async def test_nul_in_a_path_key_names_the_path_parameter(api: ApiClient) -> None:
    _bad_request(await _raw(api, "GET", "/v1/accounts/a%00b"), "account_key")
    _bad_request(await _raw(api, "GET", "/v1/subscriptions/a%00"), "subscription_key")
    _bad_request(await _raw(api, "PUT", "/v1/invoices/x%00/post"), "invoice_key")


async def test_nul_in_a_query_parameter_names_it(api: ApiClient) -> None:
    _bad_request(await _raw(api, "GET", "/v1/payments?accountId=a%00"), "accountId")
    _bad_request(await _raw(api, "GET", "/v1/catalog/products?x%00=1"), "x\\x00")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/v1/accounts",
            {
                "name": "a\u0000",
                "currency": "USD",
                "billToContact": {"firstName": "A", "lastName": "B"},
            },
            "name",
        ),
        (
            "/v1/accounts",
            {
                "name": "a",
                "currency": "USD",
                "billToContact": {"firstName": "A", "lastName": "B\u0000"},
            },
            "billToContact.lastName",
        ),
        (
            "/v1/accounts",
            {
                "name": "a",
                "currency": "USD",
                "billToContact": {"firstName": "A", "lastName": "B"},
                "Region__c": "\u0000",
            },
            "Region__c",
        ),
        (
            "/v1/accounts",
            {
                "name": "a",
                "currency": "USD",
                "billToContact": {"firstName": "A", "lastName": "B"},
                "ignored": ["x", {"deep": "\u0000"}],
            },
            "ignored[1].deep",
        ),
        (
            "/v1/accounts",
            {
                "name": "a",
                "currency": "USD",
                "billToContact": {"firstName": "A", "lastName": "B"},
                "Region\u0000__c": "x",
            },
            "Region\\x00__c",
        ),
        (
            "/v1/object/product",
            {
                "Name": "P\u0000",
                "EffectiveStartDate": "2020-01-01",
                "EffectiveEndDate": "2030-01-01",
            },
            "Name",
        ),
        ("/v1/bill-runs", {"targetDate": "2026-01-01", "batches": ["Batch1\u0000"]}, "batches[0]"),
    ],
    ids=[
        "account-name",
        "contact",
        "custom-field",
        "ignored-extra",
        "extra-key",
        "catalog-name",
        "batches",
    ],
)
async def test_nul_in_a_json_string_is_refused_naming_the_field(
    api: ApiClient, path: str, body: dict[str, Any], field: str
) -> None:
    payload = await refused(api, "POST", path, body, field=field)
    assert "NUL" in str(payload)


async def test_nul_in_order_description_and_subscription_notes(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await _plan(api)
    body = order_body(account["accountNumber"], plan, "2026-01-01")
    body["description"] = "d\u0000"
    await refused(api, "POST", "/v1/orders", body, field="description")
    body = order_body(account["accountNumber"], plan, "2026-01-01", notes="n\u0000")
    await refused(
        api,
        "POST",
        "/v1/orders",
        body,
        field="subscriptions[0].orderActions[0].createSubscription.notes",
    )


async def test_a_non_atomic_batch_refuses_only_the_invoice_with_a_nul(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    good = invoice_body(number, "10.00")
    bad = invoice_body(number, "20.00", comments="c\u0000")
    status, payload = await api.call(
        "POST", "/v1/invoices/batch", {"invoices": [good, bad, good]}, expect=None
    )
    assert status == 200, payload
    assert payload["success"] is False
    first, second, third = payload["invoices"]
    assert first["success"] is True and third["success"] is True
    assert_envelope(second, INVALID_VALUE)
    assert "'invoices[1].comments'" in _messages(second), second
    assert (await _rows(api))["invoices"] == 2

    await refused(
        api,
        "POST",
        "/v1/invoices/batch",
        {"invoices": [good, bad], "useSingleTransaction": True},
        field="invoices[1].comments",
    )


async def test_a_non_atomic_batch_of_only_bad_invoices_answers_each(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    bad = invoice_body(number, "1e400")
    status, payload = await api.call("POST", "/v1/invoices/batch", {"invoices": [bad]}, expect=None)
    assert status == 200, payload
    (only,) = payload["invoices"]
    assert_envelope(only, INVALID_VALUE)
    assert "'invoices[0].invoiceItems[0].amount'" in _messages(only)
    assert (await _rows(api))["invoices"] == 0


# --- integers -----------------------------------------------------------------------------------

LIST_ROUTES = [
    "/v1/catalog/products",
    "/v1/rateplan/{product}/productRatePlan",
    "/v1/invoices/{invoice}/items",
    "/v1/payments",
    "/v1/refunds",
    "/v1/credit-memos",
    "/v1/debit-memos",
    "/v1/credit-memos/{memo}/items",
    "/v1/subscriptions/accounts/{account}",
]


async def test_page_and_page_size_are_bounded_on_every_list_route(api: ApiClient) -> None:
    account = await new_account(api)
    product = await created(
        api,
        "/v1/object/product",
        {"Name": "P", "EffectiveStartDate": "2020-01-01", "EffectiveEndDate": "2030-01-01"},
    )
    keys = {
        "product": product,
        "invoice": "INV00000001",
        "memo": "CM1",
        "account": account["accountNumber"],
    }
    for route in LIST_ROUTES:
        path = route.format(**keys)
        for query, field in (
            ("page=1000000000000000000", "page"),
            ("page=0", "page"),
            ("pageSize=1000000000000000000", "pageSize"),
        ):
            _bad_request(await _raw(api, "GET", f"{path}?{query}"), field)


@pytest.mark.parametrize("period", [10**9, 10**30])
async def test_a_term_period_out_of_range_is_refused(api: ApiClient, period: int) -> None:
    account = await new_account(api)
    plan = await _plan(api)
    terms = {"initialTerm": {"termType": "TERMED", "period": period, "periodType": "Month"}}
    body = order_body(account["accountNumber"], plan, "2026-01-01", terms=terms)
    field = "subscriptions[0].orderActions[0].createSubscription.terms.initialTerm.period"
    await refused(api, "POST", "/v1/orders", body, field=field)


async def test_an_async_order_with_a_huge_term_is_refused_at_the_door(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await _plan(api)
    terms = {"initialTerm": {"termType": "TERMED", "period": 10**30, "periodType": "Day"}}
    body = order_body(account["accountNumber"], plan, "2026-01-01", terms=terms)
    field = "subscriptions[0].orderActions[0].createSubscription.terms.initialTerm.period"
    await refused(api, "POST", "/v1/async/orders", body, field=field)


async def test_suspend_periods_and_up_to_periods_are_bounded(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await _plan(api)
    order = await api.ok(
        "POST", "/v1/orders", order_body(account["accountNumber"], plan, "2026-01-01")
    )
    number = order["subscriptionNumbers"][0]
    suspend = {
        "type": "Suspend",
        "suspend": {
            "suspendPolicy": "FixedPeriodsFromToday",
            "suspendPeriods": 10**30,
            "suspendPeriodsType": "Day",
        },
    }
    await refused(
        api,
        "POST",
        "/v1/orders",
        amendment(account["accountNumber"], number, "2026-02-01", suspend),
        field="subscriptions[0].orderActions[0].suspend.suspendPeriods",
    )
    (charge,) = await plan_charge_ids(api, plan)
    body = order_body(
        account["accountNumber"],
        plan,
        "2026-01-01",
        charge_overrides=[
            {
                "productRatePlanChargeId": charge,
                "endDate": {"endDateCondition": "Fixed_Period", "upToPeriods": 10**30},
            }
        ],
    )
    await refused(
        api,
        "POST",
        "/v1/orders",
        body,
        field=(
            "subscriptions[0].orderActions[0].createSubscription.subscribeToProducts[0]"
            ".chargeOverrides[0].endDate.upToPeriods"
        ),
    )
    await refused(
        api,
        "POST",
        "/v1/object/product-rate-plan-charge",
        {
            "ProductRatePlanId": plan,
            "Name": "c",
            "ChargeType": "Recurring",
            "ChargeModel": "Flat Fee Pricing",
            "BillingPeriod": "Month",
            "EndDateCondition": "Fixed_Period",
            "UpToPeriods": 10**30,
            "ProductRatePlanChargeTierData": {
                "ProductRatePlanChargeTier": [{"Currency": "USD", "Price": 1}]
            },
        },
        field="UpToPeriods",
    )


async def test_an_empty_product_rate_plan_id_is_a_400_not_an_assert(api: ApiClient) -> None:
    account = await new_account(api)
    body = order_body(account["accountNumber"], "", "2026-01-01")
    await refused(
        api,
        "POST",
        "/v1/orders",
        body,
        field=(
            "subscriptions[0].orderActions[0].createSubscription.subscribeToProducts[0]"
            ".productRatePlanId"
        ),
    )
