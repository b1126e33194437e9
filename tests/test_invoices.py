"""Standalone invoices over the v1 API: create, read, items paging, post/unpost/cancel, batch, and
how each moves the account metrics (synchronous accounts now, partner accounts on refresh)."""

import re
from decimal import Decimal
from typing import Any

from partnerbill.core.json import dumps
from tests.helpers import ApiClient, invoice_body, tenant_rows

ID = re.compile(r"^[0-9a-f]{32}$")


def category(payload: dict[str, Any]) -> int:
    return int(payload["reasons"][0]["code"]) % 100


def message(payload: dict[str, Any]) -> str:
    return " ".join(reason["message"] for reason in payload["reasons"])


async def summary(api: ApiClient, key: str) -> dict[str, Any]:
    return await api.ok("GET", f"/v1/accounts/{key}/summary")


async def assert_no_invoices(api: ApiClient, account_key: str) -> None:
    """Nothing billed: no invoice, item or pending change in the database, zero metrics."""
    rows = await tenant_rows(api)
    assert (rows["invoices"], rows["invoice_items"], rows["metrics_changes"]) == (0, 0, 0), rows
    result = await summary(api, account_key)
    assert result["invoices"] == []
    assert result["basicInfo"]["lastInvoiceDate"] is None
    metrics = await api.metrics(account_key)
    assert Decimal(metrics["totalInvoiceBalance"]) == Decimal("0")
    assert Decimal(metrics["balance"]) == Decimal("0")
    assert (await api.ok("GET", f"/v1/accounts/{account_key}"))["metricsFreshness"][
        "pendingChanges"
    ] == 0


async def assert_invoice_absent(api: ApiClient, key: str) -> None:
    status, payload = await api.call("GET", f"/v1/invoices/{key}", expect=None)
    assert status == 404, payload
    assert category(payload) == 40


async def put(api: ApiClient, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    return await api.call("PUT", path, body, expect=None)


async def business_error(api: ApiClient, method: str, path: str, body: Any = None) -> str:
    status, payload = await api.call(method, path, body, expect=None)
    assert status == 200, payload
    assert payload["success"] is False, payload
    assert category(payload) == 30, payload
    return message(payload)


# --- create ---------------------------------------------------------------------------------


async def test_create_defaults_to_draft_and_moves_no_metric(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    body = invoice_body(number, "10.00", "5.55")
    del body["status"]
    invoice = await api.ok("POST", "/v1/invoices", body)
    assert invoice["status"] == "Draft"
    assert invoice["postedDate"] is None
    assert invoice["amount"] == Decimal("15.55")
    assert invoice["balance"] == Decimal("15.55")
    metrics = await api.metrics(number)
    assert metrics["totalInvoiceBalance"] == Decimal("0")
    assert metrics["balance"] == Decimal("0")
    assert (await summary(api, number))["basicInfo"]["lastInvoiceDate"] is None


async def test_create_posted_sums_items_and_moves_metrics_at_once(api: ApiClient) -> None:
    account = await api.create_account()
    number = account["accountNumber"]
    invoice = await api.ok(
        "POST", "/v1/invoices", invoice_body(number, "100.10", "0.01", Decimal("-20.05"))
    )
    assert ID.match(invoice["id"])
    assert invoice["status"] == "Posted"
    assert invoice["postedDate"] is not None
    assert invoice["accountId"] == account["accountId"]
    assert invoice["accountNumber"] == number
    assert invoice["currency"] == "USD"
    assert invoice["sourceType"] == "Standalone"
    assert invoice["invoiceDate"] == "2026-11-01"
    assert invoice["amount"] == Decimal("80.06")
    assert invoice["amountWithoutTax"] == Decimal("80.06")
    assert Decimal(invoice["taxAmount"]) == Decimal("0")
    assert invoice["balance"] == Decimal("80.06")
    metrics = await api.metrics(number)
    assert metrics["totalInvoiceBalance"] == Decimal("80.06")
    assert metrics["balance"] == Decimal("80.06")
    assert (await summary(api, number))["basicInfo"]["lastInvoiceDate"] == "2026-11-01"


async def test_amounts_as_json_numbers_are_exact(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    body = invoice_body(number)
    body["invoiceItems"] = [
        {"amount": Decimal("0.1"), "serviceStartDate": "2026-11-01"},
        {"amount": Decimal("0.2"), "serviceStartDate": "2026-11-01"},
    ]
    invoice = await api.ok("POST", "/v1/invoices", body)
    assert invoice["amount"] == Decimal("0.3")
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("0.3")


async def test_create_by_account_id(api: ApiClient) -> None:
    account = await api.create_account()
    body = invoice_body(account["accountNumber"], "1")
    del body["accountNumber"]
    body["accountId"] = account["accountId"]
    invoice = await api.ok("POST", "/v1/invoices", body)
    assert invoice["accountId"] == account["accountId"]
    assert invoice["accountNumber"] == account["accountNumber"]


async def test_due_date_follows_payment_term_or_is_given(api: ApiClient) -> None:
    net30 = (await api.create_account(paymentTerm="Net 30"))["accountNumber"]
    upon_receipt = (await api.create_account())["accountNumber"]

    invoice = await api.ok("POST", "/v1/invoices", invoice_body(net30, invoice_date="2026-12-15"))
    assert invoice["dueDate"] == "2027-01-14"
    assert invoice["paymentTerm"] == "Net 30"

    invoice = await api.ok(
        "POST", "/v1/invoices", invoice_body(upon_receipt, invoice_date="2026-12-15")
    )
    assert invoice["dueDate"] == "2026-12-15"
    assert invoice["paymentTerm"] == "Due Upon Receipt"

    invoice = await api.ok(
        "POST", "/v1/invoices", invoice_body(net30, invoice_date="2026-02-20", paymentTerm="Net 10")
    )
    assert invoice["dueDate"] == "2026-03-02"
    assert invoice["paymentTerm"] == "Net 10"

    invoice = await api.ok(
        "POST", "/v1/invoices", invoice_body(net30, invoice_date="2026-02-20", dueDate="2026-02-21")
    )
    assert invoice["dueDate"] == "2026-02-21"
    fetched = await api.ok("GET", f"/v1/invoices/{invoice['id']}")
    assert fetched["dueDate"] == "2026-02-21"


async def test_due_date_before_invoice_date_is_rejected(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    status, payload = await api.call(
        "POST",
        "/v1/invoices",
        invoice_body(number, invoice_date="2026-11-01", dueDate="2026-10-31"),
        expect=None,
    )
    assert status == 400
    assert payload["success"] is False
    await assert_no_invoices(api, number)


async def test_invoice_numbers_are_generated_increasing(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    first = await api.ok("POST", "/v1/invoices", invoice_body(number, status="Draft"))
    second = await api.ok("POST", "/v1/invoices", invoice_body(number))
    third = await api.ok("POST", "/v1/invoices", invoice_body(number))
    assert [first["invoiceNumber"], second["invoiceNumber"], third["invoiceNumber"]] == [
        "INV00000001",
        "INV00000002",
        "INV00000003",
    ]


async def test_given_invoice_number_is_kept_and_duplicate_writes_nothing(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    original = await api.ok(
        "POST", "/v1/invoices", invoice_body(number, "10", invoiceNumber="MIG-2026-001")
    )
    assert original["invoiceNumber"] == "MIG-2026-001"
    text = await business_error(
        api, "POST", "/v1/invoices", invoice_body(number, "99", invoiceNumber="MIG-2026-001")
    )
    assert "MIG-2026-001" in text
    fetched = await api.ok("GET", "/v1/invoices/MIG-2026-001")
    assert fetched["id"] == original["id"]
    assert fetched["amount"] == Decimal("10")
    rows = await tenant_rows(api)
    assert (rows["invoices"], rows["invoice_items"]) == (1, 1)
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("10")


async def test_currency_mismatch_is_a_business_error(api: ApiClient) -> None:
    number = (await api.create_account(currency="USD"))["accountNumber"]
    text = await business_error(
        api, "POST", "/v1/invoices", invoice_body(number, "5", currency="EUR")
    )
    assert "EUR" in text and "USD" in text
    await assert_no_invoices(api, number)
    same = await api.ok("POST", "/v1/invoices", invoice_body(number, "5", currency="USD"))
    assert same["currency"] == "USD"


async def test_amount_beyond_currency_scale_is_rejected(api: ApiClient) -> None:
    number = (await api.create_account(currency="JPY"))["accountNumber"]
    status, payload = await api.call(
        "POST", "/v1/invoices", invoice_body(number, "100.5"), expect=None
    )
    assert status == 400
    assert category(payload) == 20
    assert "invoiceItems[0].amount" in message(payload)
    await assert_no_invoices(api, number)
    ok = await api.ok("POST", "/v1/invoices", invoice_body(number, "100"))
    assert ok["amount"] == Decimal("100")


async def test_unknown_account_is_not_found(api: ApiClient) -> None:
    status, payload = await api.call(
        "POST", "/v1/invoices", invoice_body("NO-SUCH-ACCOUNT"), expect=None
    )
    assert status == 404
    assert payload["success"] is False
    assert category(payload) == 40
    assert "NO-SUCH-ACCOUNT" in message(payload)


async def test_missing_account_key_and_items_are_rejected(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    body = invoice_body(number)
    del body["accountNumber"]
    status, payload = await api.call("POST", "/v1/invoices", body, expect=None)
    assert status == 400
    assert category(payload) == 22
    assert "accountId" in message(payload)
    status, payload = await api.call(
        "POST", "/v1/invoices", {**invoice_body(number), "invoiceItems": []}, expect=None
    )
    assert status == 400
    await assert_no_invoices(api, number)


async def test_item_defaults(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    body = invoice_body(number)
    body["invoiceItems"] = [
        {"amount": "10", "serviceStartDate": "2026-11-01", "chargeName": "Plain"},
        {
            "amount": "10",
            "quantity": 3,
            "serviceStartDate": "2026-11-01",
            "serviceEndDate": "2026-11-30",
            "chargeName": "Three seats",
            "uom": "Seat",
            "sku": "SKU-1",
            "description": "Seats for November",
        },
        {"amount": "7.50", "quantity": "2.5", "unitPrice": "3", "serviceStartDate": "2026-11-02"},
    ]
    invoice = await api.ok("POST", "/v1/invoices", body)
    assert invoice["amount"] == Decimal("27.50")
    items = (await api.ok("GET", f"/v1/invoices/{invoice['id']}/items"))["invoiceItems"]
    assert [item["chargeName"] for item in items] == ["Plain", "Three seats", None]
    plain, seats, explicit = items
    assert ID.match(plain["id"])
    assert Decimal(plain["quantity"]) == Decimal("1")
    assert Decimal(plain["unitPrice"]) == Decimal("10")
    assert plain["serviceStartDate"] == "2026-11-01"
    assert plain["serviceEndDate"] == "2026-11-01"
    assert Decimal(seats["quantity"]) == Decimal("3")
    assert Decimal(seats["unitPrice"]) == Decimal("3.333333333")
    assert seats["serviceEndDate"] == "2026-11-30"
    assert seats["uom"] == "Seat"
    assert seats["sku"] == "SKU-1"
    assert seats["description"] == "Seats for November"
    assert Decimal(explicit["quantity"]) == Decimal("2.5")
    assert Decimal(explicit["unitPrice"]) == Decimal("3")
    assert explicit["serviceEndDate"] == "2026-11-02"


async def test_service_end_before_start_is_rejected(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    body = invoice_body(number)
    body["invoiceItems"][0]["serviceEndDate"] = "2026-10-31"
    status, payload = await api.call("POST", "/v1/invoices", body, expect=None)
    assert status == 400
    assert payload["success"] is False
    assert "serviceEndDate" in message(payload)
    await assert_no_invoices(api, number)


async def test_zero_or_negative_quantity_is_rejected(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    for quantity in ("0", "-1"):
        body = invoice_body(number)
        body["invoiceItems"][0]["quantity"] = quantity
        status, payload = await api.call("POST", "/v1/invoices", body, expect=None)
        assert status == 400, quantity
        assert "quantity" in message(payload)
    await assert_no_invoices(api, number)


# --- read -----------------------------------------------------------------------------------


async def test_get_by_id_and_by_number(api: ApiClient) -> None:
    number = (await api.create_account(paymentTerm="Net 30"))["accountNumber"]
    created = await api.ok(
        "POST", "/v1/invoices", invoice_body(number, "42.42", comments="first of many")
    )
    by_id = await api.ok("GET", f"/v1/invoices/{created['id']}")
    by_number = await api.ok("GET", f"/v1/invoices/{created['invoiceNumber']}")
    assert by_id == by_number
    for field in ("id", "invoiceNumber", "accountId", "invoiceDate", "dueDate", "status"):
        assert by_id[field] == created[field], field
    assert by_id["amount"] == Decimal("42.42")
    assert by_id["balance"] == Decimal("42.42")
    assert by_id["dueDate"] == "2026-12-01"
    assert by_id["comments"] == "first of many"
    assert by_id["accountNumber"] == number
    await assert_invoice_absent(api, "INV99999999")
    await assert_invoice_absent(api, "f" * 32)


async def test_items_page_with_full_next_page_url(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    amounts = [f"{i}.01" for i in range(1, 46)]
    invoice = await api.ok("POST", "/v1/invoices", invoice_body(number, *amounts))
    assert invoice["amount"] == sum(Decimal(a) for a in amounts)
    key = invoice["invoiceNumber"]

    first = await api.ok("GET", f"/v1/invoices/{key}/items?pageSize=10")
    assert [item["chargeName"] for item in first["invoiceItems"]] == [
        f"item {i}" for i in range(10)
    ]
    next_page = first["nextPage"]
    assert next_page.startswith("http://partnerbill.test/v1/invoices/")
    assert "page=2" in next_page and "pageSize=10" in next_page
    second = await api.ok("GET", next_page)
    assert [item["chargeName"] for item in second["invoiceItems"]] == [
        f"item {i}" for i in range(10, 20)
    ]

    last = await api.ok("GET", f"/v1/invoices/{invoice['id']}/items?page=5&pageSize=10")
    assert [item["chargeName"] for item in last["invoiceItems"]] == [
        f"item {i}" for i in range(40, 45)
    ]
    assert "nextPage" not in last
    beyond = await api.ok("GET", f"/v1/invoices/{key}/items?page=6&pageSize=10")
    assert beyond["invoiceItems"] == []
    assert "nextPage" not in beyond

    default = await api.ok("GET", f"/v1/invoices/{key}/items")
    assert len(default["invoiceItems"]) == 20
    assert "nextPage" in default


async def test_items_page_size_is_capped_at_40(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    invoice = await api.ok("POST", "/v1/invoices", invoice_body(number, *(["1"] * 45)))
    first = await api.ok("GET", f"/v1/invoices/{invoice['id']}/items?pageSize=100")
    assert len(first["invoiceItems"]) == 40
    following = await api.ok("GET", first["nextPage"])
    assert len(following["invoiceItems"]) == 5
    assert "nextPage" not in following
    seen = [item["id"] for item in first["invoiceItems"] + following["invoiceItems"]]
    assert len(set(seen)) == 45

    exact = await api.ok("GET", f"/v1/invoices/{invoice['id']}/items?pageSize=45&page=2")
    assert len(exact["invoiceItems"]) == 5


async def test_items_bad_paging_and_unknown_invoice(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    invoice = await api.ok("POST", "/v1/invoices", invoice_body(number))
    for query in ("page=0", "pageSize=0", "page=-1"):
        status, payload = await api.call(
            "GET", f"/v1/invoices/{invoice['id']}/items?{query}", expect=None
        )
        assert status == 400, query
        assert payload["success"] is False
    status, _ = await api.call("GET", "/v1/invoices/INV99999999/items", expect=None)
    assert status == 404


async def test_item_amounts_and_balances_are_strings(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    invoice = await api.ok("POST", "/v1/invoices", invoice_body(number, "12.30", "0.07"))
    items = (await api.ok("GET", f"/v1/invoices/{invoice['id']}/items"))["invoiceItems"]
    assert len(items) == 2
    for item, expected in zip(items, ("12.30", "0.07"), strict=True):
        assert isinstance(item["chargeAmount"], str)
        assert isinstance(item["balance"], str)
        assert isinstance(item["taxAmount"], str)
        assert Decimal(item["chargeAmount"]) == Decimal(expected)
        assert Decimal(item["balance"]) == Decimal(expected)
        assert item["chargeType"] == "OneTime"


# --- post, unpost, cancel -------------------------------------------------------------------


async def test_post_draft_moves_metrics_for_non_partner(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    draft = await api.ok(
        "POST",
        "/v1/invoices",
        invoice_body(number, "30.30", status="Draft", invoice_date="2026-09-09"),
    )
    result = await api.ok("PUT", f"/v1/invoices/{draft['id']}/post", {})
    assert result["id"] == draft["id"]
    assert result["jobStatus"] == "Completed"
    posted = await api.ok("GET", f"/v1/invoices/{draft['id']}")
    assert posted["status"] == "Posted"
    assert posted["postedDate"] is not None
    assert posted["invoiceDate"] == "2026-09-09"
    metrics = await api.metrics(number)
    assert metrics["totalInvoiceBalance"] == Decimal("30.30")
    assert metrics["balance"] == Decimal("30.30")
    basic = (await summary(api, number))["basicInfo"]
    assert basic["lastInvoiceDate"] == "2026-09-09"
    assert Decimal(basic["balance"]) == Decimal("30.30")


async def test_post_without_body_or_content_type(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    draft = await api.ok("POST", "/v1/invoices", invoice_body(number, "3", status="Draft"))
    response = await api.http.put(
        f"/v1/invoices/{draft['invoiceNumber']}/post",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert response.status_code == 200, response.text
    assert "content-type" not in response.request.headers
    assert response.json()["success"] is True
    assert (await api.ok("GET", f"/v1/invoices/{draft['id']}"))["status"] == "Posted"
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("3")


async def test_post_with_invoice_date_changes_the_date(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    draft = await api.ok(
        "POST", "/v1/invoices", invoice_body(number, "8", status="Draft", invoice_date="2026-05-01")
    )
    await api.ok("PUT", f"/v1/invoices/{draft['id']}/post", {"invoiceDate": "2026-05-20"})
    posted = await api.ok("GET", f"/v1/invoices/{draft['id']}")
    assert posted["invoiceDate"] == "2026-05-20"
    assert posted["status"] == "Posted"
    assert (await summary(api, number))["basicInfo"]["lastInvoiceDate"] == "2026-05-20"


async def test_post_with_later_invoice_date_keeps_due_date_on_or_after_it(api: ApiClient) -> None:
    """The create path refuses a dueDate before the invoiceDate; posting with a new date must not
    produce one either (the due date follows the invoice's payment term, Net 30 here)."""
    number = (await api.create_account(paymentTerm="Net 30"))["accountNumber"]
    draft = await api.ok(
        "POST", "/v1/invoices", invoice_body(number, "8", status="Draft", invoice_date="2026-05-01")
    )
    assert draft["dueDate"] == "2026-05-31"
    await api.ok("PUT", f"/v1/invoices/{draft['id']}/post", {"invoiceDate": "2026-07-01"})
    posted = await api.ok("GET", f"/v1/invoices/{draft['id']}")
    assert posted["invoiceDate"] == "2026-07-01"
    assert posted["dueDate"] >= posted["invoiceDate"], posted
    assert posted["dueDate"] == "2026-07-31"


async def test_post_invalid_date_body_is_rejected(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    draft = await api.ok("POST", "/v1/invoices", invoice_body(number, "8", status="Draft"))
    status, payload = await put(api, f"/v1/invoices/{draft['id']}/post", {"invoiceDate": "soon"})
    assert status == 400
    assert payload["success"] is False
    assert (await api.ok("GET", f"/v1/invoices/{draft['id']}"))["status"] == "Draft"


async def test_post_an_already_posted_invoice_is_an_error(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    invoice = await api.ok("POST", "/v1/invoices", invoice_body(number, "9"))
    text = await business_error(api, "PUT", f"/v1/invoices/{invoice['id']}/post")
    assert invoice["invoiceNumber"] in text
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("9")


async def test_unpost_moves_metrics_back_and_recomputes_last_invoice_date(
    api: ApiClient,
) -> None:
    number = (await api.create_account())["accountNumber"]
    older = await api.ok(
        "POST", "/v1/invoices", invoice_body(number, "10", invoice_date="2026-03-01")
    )
    newer = await api.ok(
        "POST", "/v1/invoices", invoice_body(number, "25", invoice_date="2026-04-01")
    )
    assert (await summary(api, number))["basicInfo"]["lastInvoiceDate"] == "2026-04-01"
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("35")

    result = await api.ok("PUT", f"/v1/invoices/{newer['invoiceNumber']}/unpost")
    assert result["jobStatus"] == "Completed"
    assert result["invoice"]["status"] == "Draft"
    assert result["invoice"]["id"] == newer["id"]
    assert (await api.ok("GET", f"/v1/invoices/{newer['id']}"))["status"] == "Draft"
    metrics = await api.metrics(number)
    assert metrics["totalInvoiceBalance"] == Decimal("10")
    assert metrics["balance"] == Decimal("10")
    result_summary = await summary(api, number)
    assert result_summary["basicInfo"]["lastInvoiceDate"] == "2026-03-01"
    assert [i["id"] for i in result_summary["invoices"]] == [older["id"]]

    await api.ok("PUT", f"/v1/invoices/{older['id']}/unpost")
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("0")
    assert (await summary(api, number))["basicInfo"]["lastInvoiceDate"] is None

    # Post again: everything comes back.
    await api.ok("PUT", f"/v1/invoices/{newer['id']}/post")
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("25")
    assert (await summary(api, number))["basicInfo"]["lastInvoiceDate"] == "2026-04-01"


async def test_unpost_a_draft_is_an_error(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    draft = await api.ok("POST", "/v1/invoices", invoice_body(number, "9", status="Draft"))
    await business_error(api, "PUT", f"/v1/invoices/{draft['id']}/unpost")
    assert (await api.ok("GET", f"/v1/invoices/{draft['id']}"))["status"] == "Draft"
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("0")


async def test_cancel_rules(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    draft = await api.ok("POST", "/v1/invoices", invoice_body(number, "11", status="Draft"))
    posted = await api.ok("POST", "/v1/invoices", invoice_body(number, "13"))

    result = await api.ok("PUT", f"/v1/invoices/{draft['id']}/cancel")
    assert result["id"] == draft["id"]
    assert (await api.ok("GET", f"/v1/invoices/{draft['id']}"))["status"] == "Canceled"
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("13")

    text = await business_error(api, "PUT", f"/v1/invoices/{posted['id']}/cancel")
    assert "unpost" in text.lower()
    assert (await api.ok("GET", f"/v1/invoices/{posted['id']}"))["status"] == "Posted"

    for action in ("post", "unpost", "cancel"):
        text = await business_error(api, "PUT", f"/v1/invoices/{draft['id']}/{action}")
        assert "Canceled" in text, action
    canceled = await api.ok("GET", f"/v1/invoices/{draft['id']}")
    assert canceled["status"] == "Canceled"
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("13")
    assert [i["id"] for i in (await summary(api, number))["invoices"]] == [posted["id"]]


async def test_status_changes_on_unknown_invoice_are_not_found(api: ApiClient) -> None:
    for action in ("post", "unpost", "cancel"):
        status, payload = await put(api, f"/v1/invoices/INV99999999/{action}")
        assert status == 404, action
        assert category(payload) == 40


async def test_partner_post_and_unpost_are_deferred(api: ApiClient) -> None:
    number = (await api.create_account(partner=True))["accountNumber"]
    draft = await api.ok(
        "POST",
        "/v1/invoices",
        invoice_body(number, "50", status="Draft", invoice_date="2026-06-06"),
    )
    await api.ok("PUT", f"/v1/invoices/{draft['id']}/post")
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("0")
    await api.refresh(number)
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("50")
    assert (await summary(api, number))["basicInfo"]["lastInvoiceDate"] == "2026-06-06"

    await api.ok("PUT", f"/v1/invoices/{draft['id']}/unpost")
    # The document changes now, the aggregate at the next refresh.
    assert (await api.ok("GET", f"/v1/invoices/{draft['id']}"))["status"] == "Draft"
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("50")
    await api.refresh(number)
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("0")
    assert (await summary(api, number))["basicInfo"]["lastInvoiceDate"] is None


# --- batch ----------------------------------------------------------------------------------


async def test_batch_creates_several_in_request_order(api: ApiClient) -> None:
    number = (await api.create_account(paymentTerm="Net 30"))["accountNumber"]
    body = {
        "invoices": [
            invoice_body(number, "1.11", invoice_date="2026-01-10"),
            invoice_body(number, "2.22", "0.01", status="Draft", invoice_date="2026-01-11"),
            invoice_body(number, "3.33", invoice_date="2026-01-12", invoiceNumber="MIG-3"),
        ],
        "useSingleTransaction": True,
    }
    result = await api.ok("POST", "/v1/invoices/batch", body)
    invoices = result["invoices"]
    assert [i["success"] for i in invoices] == [True, True, True]
    assert [i["amount"] for i in invoices] == [Decimal("1.11"), Decimal("2.23"), Decimal("3.33")]
    assert [i["status"] for i in invoices] == ["Posted", "Draft", "Posted"]
    assert [i["invoiceNumber"] for i in invoices] == ["INV00000001", "INV00000002", "MIG-3"]
    assert invoices[0]["dueDate"] == "2026-02-09"
    for invoice in invoices:
        fetched = await api.ok("GET", f"/v1/invoices/{invoice['id']}")
        assert fetched["amount"] == invoice["amount"]
    metrics = await api.metrics(number)
    assert metrics["totalInvoiceBalance"] == Decimal("4.44")
    assert (await summary(api, number))["basicInfo"]["lastInvoiceDate"] == "2026-01-12"


async def test_single_transaction_with_one_invalid_writes_nothing(api: ApiClient) -> None:
    number = (await api.create_account(currency="USD"))["accountNumber"]
    body = {
        "invoices": [
            invoice_body(number, "1", invoiceNumber="ST-1"),
            invoice_body(number, "2", invoiceNumber="ST-2", currency="EUR"),
            invoice_body(number, "3", invoiceNumber="ST-3"),
        ],
        "useSingleTransaction": True,
    }
    status, payload = await api.call("POST", "/v1/invoices/batch", body, expect=None)
    assert status == 200
    assert payload["success"] is False
    assert category(payload) == 30
    assert "invoices[1]." in message(payload)
    for key in ("ST-1", "ST-2", "ST-3"):
        await assert_invoice_absent(api, key)
    await assert_no_invoices(api, number)


async def test_single_transaction_with_bad_amount_names_the_item(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    body = {
        "invoices": [
            invoice_body(number, "1", invoiceNumber="SA-1"),
            invoice_body(number, "2", invoiceNumber="SA-2"),
            invoice_body(number, "1", "3.333", invoiceNumber="SA-3"),
        ],
        "useSingleTransaction": True,
    }
    status, payload = await api.call("POST", "/v1/invoices/batch", body, expect=None)
    assert status == 400
    assert payload["success"] is False
    assert "invoices[2].invoiceItems[1].amount" in message(payload)
    for key in ("SA-1", "SA-2", "SA-3"):
        await assert_invoice_absent(api, key)
    await assert_no_invoices(api, number)


async def test_single_transaction_batch_of_one_names_the_invoice(api: ApiClient) -> None:
    """A batch reports its problems as `invoices[i]...`, whatever its size."""
    number = (await api.create_account(currency="USD"))["accountNumber"]
    body = {
        "invoices": [invoice_body(number, "2", currency="EUR")],
        "useSingleTransaction": True,
    }
    status, payload = await api.call("POST", "/v1/invoices/batch", body, expect=None)
    assert status == 200
    assert payload["success"] is False
    assert category(payload) == 30
    await assert_no_invoices(api, number)
    assert "invoices[0]." in message(payload), payload


async def test_single_transaction_unknown_account_writes_nothing(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    body = {
        "invoices": [invoice_body(number, "1"), invoice_body("NO-SUCH-ACCOUNT", "2")],
        "useSingleTransaction": True,
    }
    status, payload = await api.call("POST", "/v1/invoices/batch", body, expect=None)
    assert status == 404
    assert payload["success"] is False
    assert "NO-SUCH-ACCOUNT" in message(payload)
    await assert_no_invoices(api, number)


async def test_separate_transactions_create_the_valid_ones(api: ApiClient) -> None:
    number = (await api.create_account(currency="USD"))["accountNumber"]
    body = {
        "invoices": [
            invoice_body(number, "1", invoiceNumber="SEP-1"),
            invoice_body(number, "2", invoiceNumber="SEP-2", currency="EUR"),
            invoice_body("NO-SUCH-ACCOUNT", "3", invoiceNumber="SEP-3"),
            invoice_body(number, "4", "0.001", invoiceNumber="SEP-4"),
            invoice_body(number, "5", invoiceNumber="SEP-5"),
        ],
        "useSingleTransaction": False,
    }
    result = await api.call("POST", "/v1/invoices/batch", body)
    payload = result[1]
    assert payload["success"] is False
    invoices = payload["invoices"]
    assert [i["success"] for i in invoices] == [True, False, False, False, True]
    assert invoices[0]["invoiceNumber"] == "SEP-1"
    assert invoices[4]["invoiceNumber"] == "SEP-5"
    assert invoices[4]["amount"] == Decimal("5")
    assert int(invoices[1]["reasons"][0]["code"]) % 100 == 30
    assert "invoices[1].currency" in invoices[1]["reasons"][0]["message"]
    assert int(invoices[2]["reasons"][0]["code"]) % 100 == 40
    assert "NO-SUCH-ACCOUNT" in invoices[2]["reasons"][0]["message"]
    assert int(invoices[3]["reasons"][0]["code"]) % 100 == 20
    assert "invoices[3].invoiceItems[1].amount" in invoices[3]["reasons"][0]["message"]
    for failed in invoices[1:4]:
        assert "id" not in failed
    await api.ok("GET", "/v1/invoices/SEP-1")
    await api.ok("GET", "/v1/invoices/SEP-5")
    for key in ("SEP-2", "SEP-3", "SEP-4"):
        await assert_invoice_absent(api, key)
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("6")


async def test_separate_transactions_all_valid_is_success(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    body = {"invoices": [invoice_body(number, "1"), invoice_body(number, "2")]}
    result = await api.ok("POST", "/v1/invoices/batch", body)
    assert [i["amount"] for i in result["invoices"]] == [Decimal("1"), Decimal("2")]
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("3")


async def test_batch_over_the_tenant_limit_writes_nothing(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    settings = await api.ok("PUT", "/v1/partnerbill/settings", {"invoiceBatchLimit": 2})
    assert settings["invoiceBatchLimit"] == 2
    for single in (True, False):
        body = {
            "invoices": [invoice_body(number, str(i), invoiceNumber=f"LIM-{i}") for i in range(3)],
            "useSingleTransaction": single,
        }
        status, payload = await api.call("POST", "/v1/invoices/batch", body, expect=None)
        assert status == 400, payload
        assert payload["success"] is False
        assert category(payload) == 70
        assert "invoices" not in payload
    for i in range(3):
        await assert_invoice_absent(api, f"LIM-{i}")
    await assert_no_invoices(api, number)

    at_limit = {"invoices": [invoice_body(number, "1"), invoice_body(number, "2")]}
    result = await api.ok("POST", "/v1/invoices/batch", at_limit)
    assert len(result["invoices"]) == 2


async def test_default_batch_limit_is_50(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    assert (await api.ok("GET", "/v1/partnerbill/settings"))["invoiceBatchLimit"] == 50
    too_many = {"invoices": [invoice_body(number, "1") for _ in range(51)]}
    status, payload = await api.call("POST", "/v1/invoices/batch", too_many, expect=None)
    assert status == 400
    assert category(payload) == 70
    await assert_no_invoices(api, number)
    fifty = {"invoices": [invoice_body(number, "1") for _ in range(50)]}
    result = await api.ok("POST", "/v1/invoices/batch", fifty)
    assert len(result["invoices"]) == 50
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("50")


async def test_same_invoice_number_twice_in_one_batch(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    single = {
        "invoices": [
            invoice_body(number, "1", invoiceNumber="TWICE"),
            invoice_body(number, "2", invoiceNumber="TWICE"),
        ],
        "useSingleTransaction": True,
    }
    status, payload = await api.call("POST", "/v1/invoices/batch", single, expect=None)
    assert status == 200
    assert payload["success"] is False
    assert category(payload) == 30
    assert "TWICE" in message(payload)
    await assert_invoice_absent(api, "TWICE")
    await assert_no_invoices(api, number)

    separate = {**single, "useSingleTransaction": False}
    payload = (await api.call("POST", "/v1/invoices/batch", separate))[1]
    assert payload["success"] is False
    first, second = payload["invoices"]
    assert first["success"] is True
    assert first["invoiceNumber"] == "TWICE"
    assert first["amount"] == Decimal("1")
    assert second["success"] is False
    assert int(second["reasons"][0]["code"]) % 100 == 30
    assert "TWICE" in second["reasons"][0]["message"]
    assert (await api.ok("GET", "/v1/invoices/TWICE"))["id"] == first["id"]
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("1")


async def test_batch_number_taken_before_and_repeated_names_the_real_cause(api: ApiClient) -> None:
    """A number that already exists is reported as taken for every invoice that asks for it —
    not as a race to retry."""
    number = (await api.create_account())["accountNumber"]
    await api.ok("POST", "/v1/invoices", invoice_body(number, "1", invoiceNumber="OLD-1"))
    body = {
        "invoices": [
            invoice_body(number, "2", invoiceNumber="OLD-1"),
            invoice_body(number, "3", invoiceNumber="OLD-1"),
            invoice_body(number, "4", invoiceNumber="NEW-1"),
        ],
        "useSingleTransaction": False,
    }
    payload = (await api.call("POST", "/v1/invoices/batch", body))[1]
    results = payload["invoices"]
    assert [r["success"] for r in results] == [False, False, True]
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("5")
    assert "already exists" in results[0]["reasons"][0]["message"], results[0]


async def test_batch_across_two_accounts(api: ApiClient) -> None:
    first = (await api.create_account())["accountNumber"]
    second_account = await api.create_account(currency="EUR")
    second = second_account["accountNumber"]
    body = {
        "invoices": [
            invoice_body(first, "10", invoice_date="2026-02-01"),
            invoice_body(second, "20", invoice_date="2026-02-02"),
            invoice_body(first, "1.5", invoice_date="2026-02-03"),
            {
                **invoice_body(second, "2.5", invoice_date="2026-01-01"),
                "accountNumber": None,
                "accountId": second_account["accountId"],
            },
        ],
        "useSingleTransaction": True,
    }
    result = await api.ok("POST", "/v1/invoices/batch", body)
    assert [i["accountNumber"] for i in result["invoices"]] == [first, second, first, second]
    assert [i["currency"] for i in result["invoices"]] == ["USD", "EUR", "USD", "EUR"]
    assert (await api.metrics(first))["totalInvoiceBalance"] == Decimal("11.5")
    assert (await api.metrics(second))["totalInvoiceBalance"] == Decimal("22.5")
    assert (await summary(api, first))["basicInfo"]["lastInvoiceDate"] == "2026-02-03"
    assert (await summary(api, second))["basicInfo"]["lastInvoiceDate"] == "2026-02-02"


async def test_batch_metrics_partner_deferred_non_partner_immediate(api: ApiClient) -> None:
    partner = (await api.create_account(partner=True))["accountNumber"]
    plain = (await api.create_account(partner=False))["accountNumber"]
    body = {
        "invoices": [
            invoice_body(partner, "100.01", invoice_date="2026-03-03"),
            invoice_body(plain, "7.07", invoice_date="2026-03-04"),
            invoice_body(partner, "0.99", invoice_date="2026-03-05"),
            invoice_body(partner, "5", status="Draft", invoice_date="2026-03-06"),
        ],
        "useSingleTransaction": False,
    }
    result = await api.ok("POST", "/v1/invoices/batch", body)
    assert len(result["invoices"]) == 4

    assert (await api.metrics(plain))["totalInvoiceBalance"] == Decimal("7.07")
    assert (await api.metrics(plain))["balance"] == Decimal("7.07")
    assert (await summary(api, plain))["basicInfo"]["lastInvoiceDate"] == "2026-03-04"

    stale = await api.ok("GET", f"/v1/accounts/{partner}")
    assert stale["metrics"]["totalInvoiceBalance"] == Decimal("0")
    assert stale["metrics"]["balance"] == Decimal("0")
    assert stale["metricsFreshness"]["pendingChanges"] >= 1
    assert (await summary(api, partner))["basicInfo"]["lastInvoiceDate"] is None

    await api.refresh(partner)
    fresh = await api.ok("GET", f"/v1/accounts/{partner}")
    assert fresh["metrics"]["totalInvoiceBalance"] == Decimal("101.00")
    assert fresh["metrics"]["balance"] == Decimal("101.00")
    assert fresh["metricsFreshness"]["pendingChanges"] == 0
    assert (await summary(api, partner))["basicInfo"]["lastInvoiceDate"] == "2026-03-05"
    # The refresh of one account leaves the other exact.
    assert (await api.metrics(plain))["totalInvoiceBalance"] == Decimal("7.07")


async def test_empty_batch_is_rejected(api: ApiClient) -> None:
    status, payload = await api.call("POST", "/v1/invoices/batch", {"invoices": []}, expect=None)
    assert status == 400
    assert payload["success"] is False


async def test_money_is_rendered_with_its_exact_digits(api: ApiClient) -> None:
    """17 significant digits and trailing zeros survive the round trip (no float on the way)."""
    number = (await api.create_account())["accountNumber"]
    body = invoice_body(number, "999999999999999.99", "0.10")
    created = await api.http.post(
        "/v1/invoices",
        content=dumps(body),
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"},
    )
    assert '"amount":1000000000000000.09' in created.text, created.text
    account = await api.http.get(
        f"/v1/accounts/{number}", headers={"Authorization": f"Bearer {api.token}"}
    )
    assert '"totalInvoiceBalance":1000000000000000.09' in account.text, account.text
    invoice_id = created.json()["id"]
    items = await api.http.get(
        f"/v1/invoices/{invoice_id}/items", headers={"Authorization": f"Bearer {api.token}"}
    )
    assert '"chargeAmount":"0.10"' in items.text, items.text
