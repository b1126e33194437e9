"""The input policy, request by request: free text stored or refused but never dropped, every
request string with a maximum length, and amounts a later read could not render refused. Every
refusal is a 400 in the Zuora envelope naming the field, and writes nothing."""

from decimal import Decimal
from typing import Any

import pytest

from partnerbill.billing.bill_runs import execute_bill_run
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
from tests.core.input_policy_support import _messages, _plan, refused
from tests.helpers import ApiClient, invoice_body

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
