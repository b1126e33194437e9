"""Standalone invoices over the v1 API in batches: request order, one transaction or separate
ones, the tenant's limit, invoice numbers, several accounts, and how a batch moves the account
metrics (synchronous accounts now, partner accounts on refresh)."""

from decimal import Decimal

from partnerbill.core.json import dumps
from tests.billing.invoice_support import (
    assert_invoice_absent,
    assert_no_invoices,
    category,
    message,
    summary,
)
from tests.helpers import ApiClient, invoice_body

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
