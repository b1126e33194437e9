"""Request validation and errors in the Zuora envelope; exact amounts; custom fields."""

from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.core.json import dumps, loads
from tests.helpers import (
    ApiClient,
    account_body,
    assert_envelope,
    count_accounts,
    count_invoices,
    invoice_body,
)

INVALID_VALUE = 20
MISSING_FIELD = 22
NOT_FOUND = 40


async def _raw(
    api: ApiClient,
    method: str,
    path: str,
    content: bytes | None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    all_headers = {"Authorization": f"Bearer {api.token}", **(headers or {})}
    if content is not None:
        all_headers.setdefault("Content-Type", "application/json")
    return await api.http.request(method, path, content=content, headers=all_headers)


def _bad_request(response: httpx.Response) -> list[dict[str, Any]]:
    """A 400 in the envelope; returns the reasons."""
    assert response.status_code == 400, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    payload = loads(response.content)
    reasons = assert_envelope(payload, payload["reasons"][0]["code"] % 100)
    assert payload["requestId"] == response.headers["zuora-request-id"]
    return reasons


def _reason_for(reasons: list[dict[str, Any]], field: str) -> dict[str, Any]:
    matching = [r for r in reasons if f"'{field}'" in r["message"]]
    assert matching, (field, reasons)
    return matching[0]


# --- validation --------------------------------------------------------------------------------


async def test_missing_field_is_category_22_naming_the_field(
    api: ApiClient, engine: AsyncEngine
) -> None:
    body = account_body()
    del body["name"]
    reasons = _bad_request(await _raw(api, "POST", "/v1/accounts", dumps(body)))
    reason = _reason_for(reasons, "name")
    assert reason["code"] % 100 == MISSING_FIELD
    assert len(str(reason["code"])) == 8
    assert reason["message"] == "'name' is required."
    assert await count_accounts(engine, api.tenant.id) == 0


async def test_every_missing_field_is_reported(api: ApiClient, engine: AsyncEngine) -> None:
    reasons = _bad_request(await _raw(api, "POST", "/v1/accounts", b"{}"))
    for field in ("name", "currency", "billToContact"):
        assert _reason_for(reasons, field)["code"] % 100 == MISSING_FIELD
    assert await count_accounts(engine, api.tenant.id) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("autoPay", 0),
        ("autoPay", 1),
        ("autoPay", "true"),
        ("partnerAccount", "yes"),
        ("billCycleDay", "x"),
        ("billCycleDay", "5"),
        ("billCycleDay", 5.5),
        ("billCycleDay", 32),
        ("billCycleDay", -1),
        ("currency", "XXX"),
        ("currency", 840),
        ("paymentTerm", "Net thirty"),
        ("batch", "Batch51"),
        ("name", ""),
        ("name", "n" * 256),
    ],
)
async def test_wrong_type_or_value_is_category_20(
    api: ApiClient, engine: AsyncEngine, field: str, value: Any
) -> None:
    reasons = _bad_request(
        await _raw(api, "POST", "/v1/accounts", dumps(account_body(**{field: value})))
    )
    assert _reason_for(reasons, field)["code"] % 100 == INVALID_VALUE
    assert await count_accounts(engine, api.tenant.id) == 0


async def test_valid_flags_and_bill_cycle_day_are_accepted(api: ApiClient) -> None:
    created = await api.create_account(autoPay=True, billCycleDay=31, paymentTerm="Net 30")
    account = await api.ok("GET", f"/v1/accounts/{created['accountId']}")
    assert account["billingAndPayment"]["autoPay"] is True
    assert account["billingAndPayment"]["billCycleDay"] == 31
    assert account["billingAndPayment"]["paymentTerm"] == "Net 30"


async def test_unknown_enum_on_invoice_is_rejected(api: ApiClient, engine: AsyncEngine) -> None:
    account = await api.create_account()
    body = invoice_body(account["accountNumber"], "10", status="Foo")
    reasons = _bad_request(await _raw(api, "POST", "/v1/invoices", dumps(body)))
    assert _reason_for(reasons, "status")["code"] % 100 == INVALID_VALUE
    body = invoice_body(account["accountNumber"], "10")
    body["invoiceItems"][0]["taxMode"] = "Sometimes"
    reasons = _bad_request(await _raw(api, "POST", "/v1/invoices", dumps(body)))
    assert _reason_for(reasons, "invoiceItems[0].taxMode")["code"] % 100 == INVALID_VALUE
    assert await count_invoices(engine, api.tenant.id) == 0


@pytest.mark.parametrize(
    "content",
    [b'{"name": ', b"{'name': 'x'}", b'{"name": "x",}', b"not json", b'{"a": 1} trailing'],
)
async def test_malformed_json_names_body(
    api: ApiClient, engine: AsyncEngine, content: bytes
) -> None:
    reasons = _bad_request(await _raw(api, "POST", "/v1/accounts", content))
    assert reasons[0]["message"].startswith("'body'"), reasons
    assert reasons[0]["code"] % 100 == INVALID_VALUE
    assert await count_accounts(engine, api.tenant.id) == 0


@pytest.mark.parametrize("content", [b"[]", b'"account"', b"42", b"null"])
async def test_body_of_wrong_shape_is_400(
    api: ApiClient, engine: AsyncEngine, content: bytes
) -> None:
    reasons = _bad_request(await _raw(api, "POST", "/v1/accounts", content))
    assert reasons[0]["code"] % 100 in (INVALID_VALUE, MISSING_FIELD)
    assert await count_accounts(engine, api.tenant.id) == 0


async def test_nested_field_names_in_messages(api: ApiClient, engine: AsyncEngine) -> None:
    body = account_body(billToContact={"lastName": "Lovelace"})
    reasons = _bad_request(await _raw(api, "POST", "/v1/accounts", dumps(body)))
    reason = _reason_for(reasons, "billToContact.firstName")
    assert reason["code"] % 100 == MISSING_FIELD
    assert reason["message"] == "'billToContact.firstName' is required."

    body = account_body(soldToContact={"firstName": "A", "lastName": "B", "workEmail": "e" * 81})
    reasons = _bad_request(await _raw(api, "POST", "/v1/accounts", dumps(body)))
    assert _reason_for(reasons, "soldToContact.workEmail")["code"] % 100 == INVALID_VALUE
    assert await count_accounts(engine, api.tenant.id) == 0

    account = await api.create_account()
    body = invoice_body(account["accountNumber"], "1", "2")
    del body["invoiceItems"][0]["amount"]
    body["invoiceItems"][1]["amount"] = "abc"
    reasons = _bad_request(await _raw(api, "POST", "/v1/invoices", dumps(body)))
    missing = _reason_for(reasons, "invoiceItems[0].amount")
    assert missing["code"] % 100 == MISSING_FIELD
    assert missing["message"] == "'invoiceItems[0].amount' is required."
    assert _reason_for(reasons, "invoiceItems[1].amount")["code"] % 100 == INVALID_VALUE

    body = invoice_body(account["accountNumber"], "1")
    body["invoiceItems"][0]["serviceStartDate"] = "2026-13-45"
    reasons = _bad_request(await _raw(api, "POST", "/v1/invoices", dumps(body)))
    assert _reason_for(reasons, "invoiceItems[0].serviceStartDate")
    assert await count_invoices(engine, api.tenant.id) == 0


async def test_invoice_without_items_or_account_is_rejected(
    api: ApiClient, engine: AsyncEngine
) -> None:
    account = await api.create_account()
    body = invoice_body(account["accountNumber"], "1")
    body["invoiceItems"] = []
    reasons = _bad_request(await _raw(api, "POST", "/v1/invoices", dumps(body)))
    assert _reason_for(reasons, "invoiceItems")
    body = invoice_body(account["accountNumber"], "1")
    del body["accountNumber"]
    reasons = _bad_request(await _raw(api, "POST", "/v1/invoices", dumps(body)))
    assert reasons[0]["code"] % 100 == MISSING_FIELD
    assert "accountId" in reasons[0]["message"]
    assert await count_invoices(engine, api.tenant.id) == 0


# --- not found, request ids ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/accounts/A99999999"),
        ("GET", "/v1/accounts/" + "f" * 32),
        ("GET", "/v1/accounts/A99999999/summary"),
        ("PUT", "/v1/accounts/A99999999"),
        ("POST", "/v1/partnerbill/accounts/A99999999/refresh-metrics"),
        ("GET", "/v1/invoices/INV99999999"),
        ("GET", "/v1/invoices/INV99999999/items"),
        ("PUT", "/v1/invoices/INV99999999/post"),
        ("PUT", "/v1/invoices/INV99999999/unpost"),
        ("PUT", "/v1/invoices/INV99999999/cancel"),
    ],
)
async def test_unknown_key_is_404_envelope(api: ApiClient, method: str, path: str) -> None:
    content = b'{"notes": "x"}' if method == "PUT" and "/accounts/" in path else None
    response = await _raw(api, method, path, content)
    assert response.status_code == 404, response.text
    reasons = assert_envelope(loads(response.content), NOT_FOUND)
    key = path.split("/")[3] if "/partnerbill/" not in path else path.split("/")[4]
    assert key in reasons[0]["message"]


async def test_invoice_for_unknown_account_is_404(api: ApiClient, engine: AsyncEngine) -> None:
    response = await _raw(api, "POST", "/v1/invoices", dumps(invoice_body("A99999999", "1")))
    assert response.status_code == 404
    assert_envelope(loads(response.content), NOT_FOUND)
    assert await count_invoices(engine, api.tenant.id) == 0


@pytest.mark.parametrize(
    ("method", "path"),
    # `GET /` is the web UI's entry (it leads to the sign-in page).
    [
        ("GET", "/v1/nothing-here"),
        ("POST", "/v1/nothing"),
        ("GET", "/nothing-here"),
        ("GET", "/v2/accounts"),
    ],
)
async def test_unknown_route_is_404_envelope(api: ApiClient, method: str, path: str) -> None:
    response = await _raw(api, method, path, b"{}" if method == "POST" else None)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/json")
    reasons = assert_envelope(loads(response.content), NOT_FOUND)
    assert path in reasons[0]["message"]


async def test_unknown_route_without_token_is_404_envelope(api: ApiClient) -> None:
    response = await api.http.get("/v1/no-such-thing")
    assert response.status_code == 404
    assert_envelope(loads(response.content), NOT_FOUND)


async def test_wrong_method_is_an_envelope(api: ApiClient) -> None:
    response = await _raw(api, "PATCH", "/v1/accounts/A00000001", None)
    assert response.status_code == 405, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert loads(response.content)["success"] is False


async def test_track_id_echoed_and_request_id_present(api: ApiClient) -> None:
    account = await api.create_account()
    ok = await _raw(
        api, "GET", f"/v1/accounts/{account['accountId']}", None, {"Zuora-Track-Id": "trace-123"}
    )
    assert ok.status_code == 200
    assert ok.headers["zuora-track-id"] == "trace-123"
    request_id = ok.headers["zuora-request-id"]
    assert len(request_id) >= 16

    failed = await _raw(api, "GET", "/v1/accounts/A99999999", None, {"Zuora-Track-Id": "t-2"})
    assert failed.status_code == 404
    assert failed.headers["zuora-track-id"] == "t-2"
    payload = loads(failed.content)
    assert payload["requestId"] == failed.headers["zuora-request-id"]
    assert failed.headers["zuora-request-id"] != request_id
    assert payload["processId"] and isinstance(payload["processId"], str)

    no_track = await _raw(api, "GET", f"/v1/accounts/{account['accountId']}", None)
    assert "zuora-track-id" not in no_track.headers
    assert no_track.headers["zuora-request-id"]

    long = await _raw(api, "GET", "/v1/accounts/A99999999", None, {"Zuora-Track-Id": "x" * 100})
    assert long.headers["zuora-track-id"] == "x" * 64

    unauthenticated = await api.http.get("/v1/accounts/x", headers={"Zuora-Track-Id": "t-3"})
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["zuora-track-id"] == "t-3"
    assert (
        loads(unauthenticated.content)["requestId"] == (unauthenticated.headers["zuora-request-id"])
    )


# --- amounts -------------------------------------------------------------------------------------


def _invoice_raw(account_number: str, *amounts: str, currency: str | None = None) -> bytes:
    """An invoice body with the amounts written verbatim (JSON numbers or quoted strings)."""
    items = ",".join(
        f'{{"amount": {amount}, "serviceStartDate": "2026-11-01"}}' for amount in amounts
    )
    extra = f', "currency": "{currency}"' if currency else ""
    return (
        f'{{"accountNumber": "{account_number}", "invoiceDate": "2026-11-01", '
        f'"status": "Posted", "invoiceItems": [{items}]{extra}}}'
    ).encode()


@pytest.mark.parametrize(
    ("amounts", "total"),
    [
        (('"0.1"', '"0.2"'), "0.3"),
        (("0.1", "0.2"), "0.3"),
        (('"0.1"', "0.2"), "0.3"),
        (("1234567890123.45",), "1234567890123.45"),
        (('"1234567890123.45"',), "1234567890123.45"),
        (("123456789012345.67",), "123456789012345.67"),
        (("999999999999999.99", "-999999999999999.98"), "0.01"),
        (("10", '"-2.5"'), "7.5"),
        (("1e2",), "100"),
    ],
)
async def test_amounts_as_strings_and_numbers_are_exact(
    api: ApiClient, amounts: tuple[str, ...], total: str
) -> None:
    account = await api.create_account()
    number = account["accountNumber"]
    response = await _raw(api, "POST", "/v1/invoices", _invoice_raw(number, *amounts))
    assert response.status_code == 200, response.text
    invoice = loads(response.content)
    assert invoice["success"] is True
    assert invoice["amount"] == Decimal(total)
    assert isinstance(invoice["amount"], Decimal | int)  # a JSON number, parsed exactly
    stored = await api.ok("GET", f"/v1/invoices/{invoice['id']}")
    assert stored["amount"] == Decimal(total)
    items = await api.ok("GET", f"/v1/invoices/{invoice['id']}/items")
    assert [Decimal(item["chargeAmount"]) for item in items["invoiceItems"]] == [
        Decimal(a.strip('"')) for a in amounts
    ]
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal(total)


@pytest.mark.parametrize("amount", ['"1.005"', "1.005", '"0.001"', "12.3456", '"-1.999"'])
async def test_more_decimals_than_currency_scale_is_rejected(
    api: ApiClient, engine: AsyncEngine, amount: str
) -> None:
    account = await api.create_account()
    content = _invoice_raw(account["accountNumber"], '"1.00"', amount)
    reasons = _bad_request(await _raw(api, "POST", "/v1/invoices", content))
    reason = _reason_for(reasons, "invoiceItems[1].amount")
    assert reason["code"] % 100 == INVALID_VALUE
    assert "USD" in reason["message"]
    first = _bad_request(
        await _raw(api, "POST", "/v1/invoices", _invoice_raw(account["accountNumber"], amount))
    )
    assert _reason_for(first, "invoiceItems[0].amount")
    assert await count_invoices(engine, api.tenant.id) == 0
    assert (await api.metrics(account["accountNumber"]))["totalInvoiceBalance"] == 0


async def test_trailing_zeros_within_scale_are_fine(api: ApiClient) -> None:
    account = await api.create_account()
    response = await _raw(
        api, "POST", "/v1/invoices", _invoice_raw(account["accountNumber"], '"2.50"', "1.10")
    )
    assert response.status_code == 200, response.text
    assert loads(response.content)["amount"] == Decimal("3.60")


@pytest.mark.parametrize("amount", ['"100.5"', "100.5", '"0.01"'])
async def test_jpy_with_decimals_is_rejected(
    api: ApiClient, engine: AsyncEngine, amount: str
) -> None:
    account = await api.create_account(currency="JPY")
    reasons = _bad_request(
        await _raw(api, "POST", "/v1/invoices", _invoice_raw(account["accountNumber"], amount))
    )
    reason = _reason_for(reasons, "invoiceItems[0].amount")
    assert "JPY" in reason["message"]
    assert await count_invoices(engine, api.tenant.id) == 0
    ok = await _raw(api, "POST", "/v1/invoices", _invoice_raw(account["accountNumber"], "1500"))
    assert ok.status_code == 200, ok.text
    assert loads(ok.content)["amount"] == Decimal(1500)
    assert loads(ok.content)["currency"] == "JPY"


async def test_three_decimal_currency_accepts_three_places(api: ApiClient) -> None:
    account = await api.create_account(currency="KWD")
    ok = await _raw(api, "POST", "/v1/invoices", _invoice_raw(account["accountNumber"], '"1.005"'))
    assert ok.status_code == 200, ok.text
    assert loads(ok.content)["amount"] == Decimal("1.005")
    too_many = await _raw(
        api, "POST", "/v1/invoices", _invoice_raw(account["accountNumber"], '"1.0005"')
    )
    _reason_for(_bad_request(too_many), "invoiceItems[0].amount")


@pytest.mark.parametrize("amount", ['"NaN"', '"Infinity"', '"1e15"', "1e20"])
async def test_non_finite_or_huge_amounts_are_rejected(
    api: ApiClient, engine: AsyncEngine, amount: str
) -> None:
    account = await api.create_account()
    response = await _raw(
        api, "POST", "/v1/invoices", _invoice_raw(account["accountNumber"], amount)
    )
    _reason_for(_bad_request(response), "invoiceItems[0].amount")
    assert await count_invoices(engine, api.tenant.id) == 0


# --- custom fields -------------------------------------------------------------------------------


async def test_custom_fields_are_stored_and_returned(api: ApiClient) -> None:
    created = await api.create_account(foo__c="bar", Region__c="EMEA", flag__c=True, empty__c=None)
    for key in (created["accountId"], created["accountNumber"]):
        account = await api.ok("GET", f"/v1/accounts/{key}")
        info = account["basicInfo"]
        assert info["foo__c"] == "bar"
        assert info["Region__c"] == "EMEA"
        assert info["flag__c"] is True
        assert "empty__c" in info and info["empty__c"] is None
    summary = await api.ok("GET", f"/v1/accounts/{created['accountId']}/summary")
    assert summary["basicInfo"]["foo__c"] == "bar"

    await api.ok("PUT", f"/v1/accounts/{created['accountId']}", {"foo__c": "baz", "new__c": "n"})
    info = (await api.ok("GET", f"/v1/accounts/{created['accountId']}"))["basicInfo"]
    assert info["foo__c"] == "baz"
    assert info["new__c"] == "n"
    assert info["Region__c"] == "EMEA"


@pytest.mark.parametrize("value", ["12.5", "7", "0.1", "-3"])
async def test_numeric_custom_field_is_stored_exactly(api: ApiClient, value: str) -> None:
    """Custom fields take numbers (core/schemas.py); a JSON number arrives as a Decimal."""
    response = await _raw(
        api,
        "POST",
        "/v1/accounts",
        dumps(account_body()).replace(b"{", b'{"score__c": ' + value.encode() + b", ", 1),
    )
    assert response.status_code == 200, response.text
    created = loads(response.content)
    info = (await api.ok("GET", f"/v1/accounts/{created['accountId']}"))["basicInfo"]
    assert info["score__c"] == Decimal(value)
    await api.ok("PUT", f"/v1/accounts/{created['accountId']}", {"score__c": Decimal("0.3")})
    info = (await api.ok("GET", f"/v1/accounts/{created['accountId']}"))["basicInfo"]
    assert info["score__c"] == Decimal("0.3")


async def test_unknown_non_custom_fields_are_ignored_not_returned(api: ApiClient) -> None:
    created = await api.create_account(somethingElse="x", invoiceTemplateId="t")
    info = (await api.ok("GET", f"/v1/accounts/{created['accountId']}"))["basicInfo"]
    assert "somethingElse" not in info
    assert "invoiceTemplateId" not in info


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2], "x" * 256])
async def test_custom_field_must_be_a_short_scalar(
    api: ApiClient, engine: AsyncEngine, value: Any
) -> None:
    response = await _raw(api, "POST", "/v1/accounts", dumps(account_body(foo__c=value)))
    reasons = _bad_request(response)
    assert _reason_for(reasons, "foo__c")["code"] % 100 == INVALID_VALUE
    assert await count_accounts(engine, api.tenant.id) == 0


async def test_custom_fields_on_invoice(api: ApiClient) -> None:
    account = await api.create_account()
    body = invoice_body(account["accountNumber"], "3", po__c="PO-7")
    body["invoiceItems"][0]["line__c"] = "L1"
    invoice = await api.ok("POST", "/v1/invoices", body)
    assert invoice["po__c"] == "PO-7"
    assert (await api.ok("GET", f"/v1/invoices/{invoice['id']}"))["po__c"] == "PO-7"
    items = await api.ok("GET", f"/v1/invoices/{invoice['id']}/items")
    assert items["invoiceItems"][0]["line__c"] == "L1"
