"""The input policy, request by request: NUL bytes refused in every string (body, path, query,
form), integers, dates and decimals inside their documented ranges, free text stored or refused
but never dropped, and no stored object that a later read cannot render. Every refusal is a 400
in the Zuora envelope naming the field, and writes nothing."""

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from partnerbill.billing.bill_runs import execute_bill_run
from partnerbill.core import db
from partnerbill.core.json import loads
from tests.catalog_fixtures import (
    amendment,
    created,
    new_account,
    order_body,
    plan_charge_ids,
    quantity_override,
    rate_plan,
    recurring_charge,
    tier,
)
from tests.helpers import ApiClient, assert_envelope, invoice_body

INVALID_VALUE = 20
WRITE_TABLES = (
    "accounts",
    "invoices",
    "invoice_items",
    "subscriptions",
    "orders",
    "products",
    "bill_runs",
    "async_jobs",
    "credit_memos",
)


async def _rows(api: ApiClient) -> dict[str, int]:
    async with db.get_engine().connect() as conn:
        return {
            table: int(
                await conn.scalar(
                    text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t"), {"t": api.tenant.id}
                )
                or 0
            )
            for table in WRITE_TABLES
        }


def _messages(payload: dict[str, Any]) -> str:
    return " ".join(reason["message"] for reason in payload["reasons"])


async def refused(
    api: ApiClient, method: str, path: str, body: Any = None, *, field: str
) -> dict[str, Any]:
    """The call is a 400 in the envelope naming `field`, and writes nothing."""
    before = await _rows(api)
    try:
        status, payload = await api.call(method, path, body, expect=None)
    except TypeError:  # an integer beyond 64 bits: orjson cannot write it, the stdlib can
        response = await _raw(
            api,
            method,
            path,
            content=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        status, payload = response.status_code, loads(response.content)
    assert status == 400, (status, payload)
    if path.startswith("/v1/object/"):  # the CRUD object API's own envelope
        assert payload["Success"] is False, payload
        messages = " ".join(error["Message"] for error in payload["Errors"])
    else:
        assert_envelope(payload, INVALID_VALUE)
        messages = _messages(payload)
    assert f"'{field}'" in messages, payload
    assert await _rows(api) == before
    return payload


JSON = {"Content-Type": "application/json"}


async def _raw(api: ApiClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {api.token}", **kwargs.pop("headers", {})}
    return await api.http.request(method, path, headers=headers, **kwargs)


def _bad_request(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, (response.status_code, response.text)
    payload = loads(response.content)
    assert_envelope(payload, INVALID_VALUE)
    assert f"'{field}'" in _messages(payload), payload
    assert payload["requestId"] == response.headers["zuora-request-id"]


async def _plan(api: ApiClient) -> str:
    return await rate_plan(api)


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


# --- free text ----------------------------------------------------------------------------------


async def test_subscription_notes_are_stored_or_refused_never_dropped(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await _plan(api)
    body = order_body(account["accountNumber"], plan, "2026-01-01")
    body["subscriptions"][0]["notes"] = "n" * 1_000_000
    await refused(api, "POST", "/v1/orders", body, field="subscriptions[0].notes")

    body["subscriptions"][0]["notes"] = "kept " * 100
    order = await api.ok("POST", "/v1/orders", body)
    number = order["subscriptionNumbers"][0]
    assert (await api.ok("GET", f"/v1/subscriptions/{number}"))["notes"] == ("kept " * 100).strip()

    amend = amendment(
        account["accountNumber"],
        number,
        "2026-02-01",
        {"type": "TermsAndConditions", "termsAndConditions": {"autoRenew": True}},
    )
    amend["subscriptions"][0]["notes"] = "amended"
    await api.ok("POST", "/v1/orders", amend)
    assert (await api.ok("GET", f"/v1/subscriptions/{number}"))["notes"] == "amended"


def _unbounded_text(spec: dict[str, Any]) -> bool:
    """A free-text string schema without a maxLength (dates, decimals and enums aside)."""
    return spec.get("type") == "string" and not {
        "format",
        "pattern",
        "enum",
        "const",
        "maxLength",
    } & set(spec)


def _request_schemas(document: dict[str, Any]) -> set[str]:
    """The component schemas a request body refers to, directly or through other schemas."""
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            name = ref.rsplit("/", 1)[-1]
            if ref and name not in names:
                names.add(name)
                visit(document["components"]["schemas"][name])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    for operations in document["paths"].values():
        for operation in operations.values():
            visit(operation.get("requestBody", {}))
    return names


async def test_every_request_string_field_has_a_maximum_length(app: Any) -> None:
    """No request model field takes text without a bound (custom fields have theirs)."""
    unbounded = []
    document = app.openapi()
    requests = _request_schemas(document)
    assert "CreateInvoiceRequest" in requests
    for name, schema in document["components"]["schemas"].items():
        if name not in requests:
            continue
        for field, spec in schema.get("properties", {}).items():
            options = spec.get("anyOf", [spec])
            if any(option.get("type") == "number" for option in options):
                continue  # a decimal, also taken as a string; bounded by the input policy
            for option in options:
                if _unbounded_text(option) or _unbounded_text(option.get("items", {})):
                    unbounded.append(f"{name}.{field}")
    assert unbounded == []


@pytest.mark.parametrize("pricing", ["recurringTiered", "recurringVolume"])
async def test_a_quantity_above_the_last_tier_is_refused(api: ApiClient, pricing: str) -> None:
    account = await new_account(api)
    model = "Tiered Pricing" if pricing == "recurringTiered" else "Volume Pricing"
    plan = await rate_plan(api, recurring_charge(model=model, tiers=[tier("1", 0, 10, "Per Unit")]))
    (charge,) = await plan_charge_ids(api, plan)
    body = order_body(
        account["accountNumber"],
        plan,
        "2026-01-01",
        charge_overrides=[quantity_override(charge, 11, pricing)],
    )
    payload = await refused(api, "POST", "/v1/orders", body, field="quantity")
    assert "last tier" in _messages(payload)


async def test_an_invoice_item_whose_unit_price_would_be_out_of_range(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    body = invoice_body(number, "100000000000000.00")
    body["invoiceItems"][0]["quantity"] = Decimal("0.000000001")
    await refused(api, "POST", "/v1/invoices", body, field="invoiceItems[0].quantity")


async def test_more_rate_plans_than_a_subscription_holds_is_a_400(api: ApiClient) -> None:
    account = await new_account(api)
    body = order_body(account["accountNumber"], "p0", "2026-01-01")
    create = body["subscriptions"][0]["orderActions"][0]["createSubscription"]
    create["subscribeToProducts"] = [{"productRatePlanId": f"p{i}"} for i in range(1001)]
    await refused(
        api,
        "POST",
        "/v1/orders",
        body,
        field="subscriptions[0].orderActions[0].createSubscription.subscribeToProducts",
    )


async def test_a_daily_auto_renewing_term_bills_decades_ahead(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await _plan(api)
    terms = {
        "initialTerm": {"termType": "TERMED", "period": 1, "periodType": "Day"},
        "autoRenew": True,
    }
    await api.ok(
        "POST", "/v1/orders", order_body(account["accountNumber"], plan, "2026-01-01", terms=terms)
    )
    run = await api.ok(
        "POST",
        "/v1/bill-runs",
        {
            "billRunFilters": [{"filterType": "Account", "accountId": account["accountId"]}],
            "targetDate": "2029-01-01",
        },
    )
    await execute_bill_run(api.tenant, run["id"])
    assert (await api.ok("GET", f"/v1/bill-runs/{run['id']}"))["status"] == "Completed"


async def test_a_charge_description_is_stored_not_dropped(api: ApiClient) -> None:
    account = await new_account(api)
    plan = await _plan(api)
    (charge,) = await plan_charge_ids(api, plan)
    body = order_body(
        account["accountNumber"],
        plan,
        "2026-01-01",
        charge_overrides=[{"productRatePlanChargeId": charge, "description": "seats, EU"}],
    )
    body["subscriptions"][0]["orderActions"][0]["createSubscription"]["subscribeToProducts"][0][
        "chargeOverrides"
    ][0]["description"] = "d" * 501
    await refused(
        api,
        "POST",
        "/v1/orders",
        body,
        field=(
            "subscriptions[0].orderActions[0].createSubscription.subscribeToProducts[0]"
            ".chargeOverrides[0].description"
        ),
    )
    body = order_body(
        account["accountNumber"],
        plan,
        "2026-01-01",
        charge_overrides=[{"productRatePlanChargeId": charge, "description": "seats, EU"}],
    )
    number = (await api.ok("POST", "/v1/orders", body))["subscriptionNumbers"][0]
    sub = await api.ok("GET", f"/v1/subscriptions/{number}")
    (rate_plan_json,) = sub["ratePlans"]
    (charge_json,) = rate_plan_json["ratePlanCharges"]
    assert charge_json["description"] == "seats, EU"

    update = {
        "type": "UpdateProduct",
        "updateProduct": {
            "ratePlanId": rate_plan_json["id"],
            "chargeUpdates": [{"chargeNumber": charge_json["number"], "description": "seats"}],
        },
    }
    await api.ok(
        "POST", "/v1/orders", amendment(account["accountNumber"], number, "2026-03-01", update)
    )
    sub = await api.ok("GET", f"/v1/subscriptions/{number}")
    segments = sub["ratePlans"][0]["ratePlanCharges"]
    assert [s["description"] for s in segments] == ["seats, EU", "seats"]


async def test_a_memo_item_keeps_its_comment_and_its_description(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    invoice = await api.ok("POST", "/v1/invoices", invoice_body(number))
    items = await api.ok("GET", f"/v1/invoices/{invoice['id']}/items")
    item = {
        "invoiceItemId": items["invoiceItems"][0]["id"],
        "amount": "1.00",
        "description": "goodwill",
        "comment": "agreed on the phone",
    }
    memo = await api.ok("POST", f"/v1/credit-memos/invoice/{invoice['id']}", {"items": [item]})
    (stored,) = (await api.ok("GET", f"/v1/credit-memos/{memo['id']}/items"))["items"]
    assert (stored["description"], stored["comment"]) == ("goodwill", "agreed on the phone")
