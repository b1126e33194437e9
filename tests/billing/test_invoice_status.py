"""Standalone invoices over the v1 API: post, unpost and cancel, and how each moves the account
metrics (synchronous accounts now, partner accounts on refresh)."""

from decimal import Decimal

from tests.billing.invoice_support import business_error, category, put, summary
from tests.helpers import ApiClient, invoice_body

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
