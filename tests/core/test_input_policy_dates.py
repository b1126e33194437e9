"""The input policy, request by request: dates and decimals inside their documented ranges, and no
stored object that a later read cannot render. Every refusal is a 400 in the Zuora envelope
naming the field, and writes nothing."""

from decimal import Decimal

import pytest
from sqlalchemy import text

from partnerbill.billing.bill_runs import execute_bill_run
from partnerbill.core import db
from partnerbill.core.json import loads
from tests.catalog_fixtures import (
    new_account,
    order_body,
    plan_charge_ids,
    quantity_override,
)
from tests.core.input_policy_support import INVALID_VALUE, JSON, _messages, _plan, _raw, refused
from tests.helpers import ApiClient, assert_envelope, invoice_body

# --- dates --------------------------------------------------------------------------------------


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "2100-01-01", "1899-12-31"])
async def test_an_order_date_out_of_range_is_refused(api: ApiClient, day: str) -> None:
    account = await new_account(api)
    plan = await _plan(api)
    payload = await refused(
        api,
        "POST",
        "/v1/orders",
        order_body(account["accountNumber"], plan, day),
        field="orderDate",
    )
    assert "1900-01-01" in _messages(payload) and "2099-12-31" in _messages(payload)


async def test_a_term_that_would_end_after_the_last_date_is_refused(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await _plan(api)
    terms = {"initialTerm": {"termType": "TERMED", "period": 12, "periodType": "Month"}}
    body = order_body(account["accountNumber"], plan, "2099-06-01", terms=terms)
    payload = await refused(
        api,
        "POST",
        "/v1/orders",
        body,
        field="subscriptions[0].orderActions[0].createSubscription.terms.initialTerm.period",
    )
    assert "2099-12-31" in _messages(payload)


async def test_an_evergreen_subscription_on_the_last_date_reads_back(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await _plan(api)
    order = await api.ok(
        "POST", "/v1/orders", order_body(account["accountNumber"], plan, "2099-12-31")
    )
    number = order["subscriptionNumbers"][0]
    assert (await api.ok("GET", f"/v1/subscriptions/{number}"))["termStartDate"] == "2099-12-31"
    await api.ok("GET", f"/v1/subscriptions/accounts/{account['accountNumber']}")


async def test_a_stored_subscription_at_the_end_of_the_calendar_still_reads(
    api: ApiClient,
) -> None:
    """Rows written before the policy (or by hand) must not make reads raise."""
    account = await new_account(api)
    plan = await _plan(api)
    order = await api.ok(
        "POST", "/v1/orders", order_body(account["accountNumber"], plan, "2026-01-01")
    )
    number = order["subscriptionNumbers"][0]
    async with db.get_engine().begin() as conn:
        await conn.execute(
            text(
                "UPDATE subscriptions SET term_start_date = '9999-12-31', "
                "contract_effective_date = '9999-12-31' WHERE tenant_id = :t"
            ),
            {"t": api.tenant.id},
        )
        await conn.execute(
            text(
                "UPDATE rate_plan_charges SET effective_start_date = '9999-12-31' "
                "WHERE tenant_id = :t"
            ),
            {"t": api.tenant.id},
        )
    assert (await api.ok("GET", f"/v1/subscriptions/{number}"))["termStartDate"] == "9999-12-31"
    await api.ok("GET", f"/v1/subscriptions/accounts/{account['accountNumber']}")
    run = await api.ok(
        "POST",
        "/v1/bill-runs",
        {
            "billRunFilters": [{"filterType": "Account", "accountId": account["accountId"]}],
            "targetDate": "2099-12-31",
        },
    )
    await execute_bill_run(api.tenant, run["id"])
    assert (await api.ok("GET", f"/v1/bill-runs/{run['id']}"))["status"] == "Completed"


async def test_run_billing_target_date_out_of_range_is_refused(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await _plan(api)
    body = order_body(
        account["accountNumber"], plan, "2026-01-01", run_billing=True, target_date="9000-01-01"
    )
    await refused(
        api, "POST", "/v1/orders", body, field="processingOptions.billingOptions.targetDate"
    )
    await refused(api, "POST", "/v1/bill-runs", {"targetDate": "9000-01-01"}, field="targetDate")


async def test_invoice_dates_out_of_range_and_due_dates_past_the_last_date(
    api: ApiClient,
) -> None:
    number = (await api.create_account())["accountNumber"]
    body = invoice_body(number, invoice_date="9999-12-31", paymentTerm="Net 30")
    body["invoiceItems"][0]["serviceStartDate"] = "2026-01-01"
    await refused(api, "POST", "/v1/invoices", body, field="invoiceDate")
    payload = await refused(
        api,
        "POST",
        "/v1/invoices",
        invoice_body(number, invoice_date="2099-12-31", paymentTerm="Net 30"),
        field="paymentTerm",
    )
    assert "2099-12-31" in _messages(payload)
    await api.ok(
        "POST",
        "/v1/invoices",
        invoice_body(number, invoice_date="2099-12-01", paymentTerm="Net 30"),
    )


@pytest.mark.parametrize("value", [0, 1767225600, 2026.5, 0.0, "0", "1767225600", "2026-1-1"])
async def test_a_date_not_written_as_yyyy_mm_dd_is_refused_not_read_as_unix_time(
    api: ApiClient, value: float | str
) -> None:
    number = (await api.create_account())["accountNumber"]
    body = invoice_body(number)
    body["invoiceDate"] = value
    await refused(api, "POST", "/v1/invoices", body, field="invoiceDate")
    await refused(
        api, "POST", "/v1/bill-runs", {"targetDate": value, "accountId": number}, field="targetDate"
    )
    await refused(
        api, "PUT", "/v1/bill-runs/BR-00000001/post", {"invoiceDate": value}, field="invoiceDate"
    )
    response = await api.http.get(
        "/v1/billing-documents",
        params={"accountNumber": number, "documentDate": str(value)},
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert response.status_code == 400, response.text
    assert "documentDate" in response.text


async def test_a_method_a_path_does_not_serve_is_a_405_allowing_every_method_it_does(
    api: ApiClient,
) -> None:
    number = (await api.create_account())["accountNumber"]
    response = await api.http.request(
        "PATCH", f"/v1/accounts/{number}", headers={"Authorization": f"Bearer {api.token}"}
    )
    assert response.status_code == 405, response.text
    assert response.headers["Allow"] == "DELETE, GET, PUT"  # DELETE answers "not supported"
    response = await api.http.request("OPTIONS", "/v1/invoices/batch")
    assert response.status_code == 405, response.text
    assert response.headers["Allow"] == "POST"  # not GET of an invoice keyed "batch"
    assert_envelope(response.json(), INVALID_VALUE)


async def test_a_malformed_form_is_a_400_not_a_500(api: ApiClient) -> None:
    response = await api.http.post(
        "/oauth/token",
        content=b"client_id=a&client_secret=b&grant_type=client_credentials",
        headers={"Content-Type": "multipart/form-data"},  # no boundary
    )
    assert response.status_code == 400, response.text
    (reason,) = assert_envelope(response.json(), INVALID_VALUE)
    assert reason["message"].startswith("'body': "), reason


@pytest.mark.parametrize("raw", [b"1.7e254", b"[]", b'"text"', b"true"])
async def test_a_body_that_is_not_an_object_is_refused_even_where_the_body_is_optional(
    api: ApiClient, raw: bytes
) -> None:
    for method, path in (("PUT", "/v1/partnerbill/settings"), ("POST", "/v1/accounts")):
        response = await _raw(api, method, path, content=raw, headers=JSON)
        assert response.status_code == 400, (path, response.text)
        (reason,) = assert_envelope(loads(response.content), INVALID_VALUE)
        assert "a request body is a JSON object" in reason["message"], reason
    number = (await api.create_account())["accountNumber"]
    invoice = await api.ok("POST", "/v1/invoices", invoice_body(number, status="Draft"))
    response = await _raw(
        api, "PUT", f"/v1/invoices/{invoice['id']}/post", content=raw, headers=JSON
    )
    assert response.status_code == 400, response.text
    assert (await api.ok("GET", f"/v1/invoices/{invoice['id']}"))["status"] == "Draft"


# --- decimals -----------------------------------------------------------------------------------

BAD_DECIMALS = [
    "1e400",
    "1e-400",
    "123456789012345678901234567890",
    "0.000000000000000000000000000001",
]


@pytest.mark.parametrize("value", BAD_DECIMALS)
async def test_invoice_item_quantity_and_price_out_of_range(api: ApiClient, value: str) -> None:
    number = (await api.create_account())["accountNumber"]
    body = invoice_body(number)
    body["invoiceItems"][0]["quantity"] = Decimal(value)
    await refused(api, "POST", "/v1/invoices", body, field="invoiceItems[0].quantity")
    body = invoice_body(number)
    body["invoiceItems"][0]["unitPrice"] = Decimal(value)
    await refused(api, "POST", "/v1/invoices", body, field="invoiceItems[0].unitPrice")


@pytest.mark.parametrize("value", BAD_DECIMALS)
async def test_order_quantity_out_of_range(api: ApiClient, value: str) -> None:
    account = await new_account(api)
    plan = await _plan(api)
    (charge,) = await plan_charge_ids(api, plan)
    body = order_body(
        account["accountNumber"],
        plan,
        "2026-01-01",
        charge_overrides=[quantity_override(charge, Decimal(value))],
    )
    await refused(
        api,
        "POST",
        "/v1/orders",
        body,
        field=(
            "subscriptions[0].orderActions[0].createSubscription.subscribeToProducts[0]"
            ".chargeOverrides[0].pricing.recurringPerUnit.quantity"
        ),
    )


@pytest.mark.parametrize("value", ["1e400", "1e-400"])
async def test_credit_memo_quantity_out_of_range(api: ApiClient, value: str) -> None:
    number = (await api.create_account())["accountNumber"]
    invoice = await api.ok("POST", "/v1/invoices", invoice_body(number))
    items = await api.ok("GET", f"/v1/invoices/{invoice['id']}/items")
    item_id = items["invoiceItems"][0]["id"]
    body = {"items": [{"invoiceItemId": item_id, "amount": "1.00", "quantity": Decimal(value)}]}
    await refused(
        api, "POST", f"/v1/credit-memos/invoice/{invoice['id']}", body, field="items[0].quantity"
    )


async def test_a_huge_json_integer_is_a_400(api: ApiClient) -> None:
    body = (
        b'{"name":"a","currency":"USD","billToContact":{"firstName":"A","lastName":"B"},'
        b'"billCycleDay":' + b"9" * 5000 + b"}"
    )
    response = await _raw(
        api, "POST", "/v1/accounts", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert_envelope(loads(response.content), INVALID_VALUE)
