"""Standalone invoices over the v1 API: create and read (by id and number, items paging), and how
a create moves the account metrics (synchronous accounts now, partner accounts on refresh)."""

from decimal import Decimal

from tests.billing.invoice_support import (
    ID,
    assert_invoice_absent,
    assert_no_invoices,
    business_error,
    category,
    message,
    summary,
)
from tests.helpers import ApiClient, invoice_body, tenant_rows

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
