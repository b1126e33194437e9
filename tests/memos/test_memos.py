"""Credit memos over the v1 API: create (from an invoice, from charges), post, unpost, cancel,
read, list; the rules that refuse an operation with nothing written; how each operation moves
the account metrics (a synchronous account at once, a partner account at its refresh, then
equal to `recompute`)."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import (
    ApiClient,
    invoice_body,
)
from tests.memos.memo_support import (
    D,
    Watch,
    a_charge,
    apply_body,
    credit_body,
    credit_from_invoice,
    delta,
    new_account,
    partner_or_not,
    posted_invoice,
    refused,
    standalone,
)

# --- credit memos: create, post, unpost, cancel -----------------------------------------------


@partner_or_not
async def test_credit_memo_from_invoice_lifecycle(
    api: ApiClient, engine: AsyncEngine, partner: bool
) -> None:
    account = await new_account(api, partner)
    invoice = await posted_invoice(api, account, "100.00", "50.00")
    watch = Watch(api, engine, account)
    await watch.start()

    memo = await credit_from_invoice(
        api, invoice, "30.00", "20.50", effectiveDate="2026-11-03", reasonCode="Correction"
    )
    assert memo["number"] == "CM00000001"
    assert memo["status"] == "Draft"
    assert (memo["amount"], memo["unappliedAmount"], memo["appliedAmount"]) == (
        D("50.50"),
        D("50.50"),
        D(0),
    )
    assert memo["referredInvoiceId"] == invoice["id"]
    assert memo["creditMemoDate"] == "2026-11-03"
    assert memo["reasonCode"] == "Correction"
    assert memo["accountNumber"] == account.number
    await watch.moved(delta())  # a draft counts nowhere

    posted = await api.ok("PUT", f"/v1/credit-memos/{memo['id']}/post")
    assert posted["status"] == "Posted" and posted["postedOn"]
    await watch.moved(delta(ucma="50.50"))

    unposted = await api.ok("PUT", f"/v1/credit-memos/{memo['number']}/unpost")
    assert unposted["status"] == "Draft" and unposted["postedOn"] is None
    await watch.moved(delta(ucma="-50.50"))

    canceled = await api.ok("PUT", f"/v1/credit-memos/{memo['id']}/cancel")
    assert canceled["status"] == "Canceled"
    await watch.moved(delta())
    for action in ("post", "unpost", "cancel"):
        await refused(api, "PUT", f"/v1/credit-memos/{memo['id']}/{action}", category=30)
    await refused(
        api, "PUT", f"/v1/credit-memos/{memo['id']}/apply", apply_body({invoice["id"]: "1"}),
        category=30,
    )  # fmt: skip
    await refused(
        api, "POST", f"/v1/credit-memos/{memo['id']}/refund",
        {"type": "External", "totalAmount": "1"}, category=30,
    )  # fmt: skip


@partner_or_not
async def test_credit_memo_auto_post_and_read(
    api: ApiClient, engine: AsyncEngine, partner: bool
) -> None:
    account = await new_account(api, partner)
    invoice = await posted_invoice(api, account, "80.00")
    watch = Watch(api, engine, account)
    await watch.start()
    memo = await credit_from_invoice(api, invoice, "25", autoPost=True, comment="goodwill")
    assert memo["status"] == "Posted"
    await watch.moved(delta(ucma="25"))

    for key in (memo["id"], memo["number"]):
        got = await api.ok("GET", f"/v1/credit-memos/{key}")
        assert got["id"] == memo["id"] and got["comment"] == "goodwill"
        assert got["currency"] == "USD" and got["createdDate"] and got["updatedDate"]
    items = await api.ok("GET", f"/v1/credit-memos/{memo['id']}/items")
    (item,) = items["items"]
    assert item["amount"] == D(25) and item["sourceItemId"] == invoice["itemIds"][0]
    assert item["serviceStartDate"] == "2026-11-01"
    assert "nextPage" not in items


async def test_credit_memo_list_filters_and_pages(api: ApiClient) -> None:
    one = await new_account(api)
    other = await new_account(api)
    invoice = await posted_invoice(api, one, "100")
    charge = await a_charge(api)
    for _ in range(3):
        await credit_from_invoice(api, invoice, "1", autoPost=True)
    await credit_from_invoice(api, invoice, "1")
    await standalone(api, "credit", other, charge, "7")

    page = await api.ok("GET", f"/v1/credit-memos?accountNumber={one.number}&pageSize=2")
    assert [m["number"] for m in page["creditmemos"]] == ["CM00000001", "CM00000002"]
    assert "page=2" in page["nextPage"] and page["nextPage"].startswith("http")
    last = await api.ok("GET", page["nextPage"].split("partnerbill.test", 1)[1])
    assert len(last["creditmemos"]) == 2 and "nextPage" not in last
    drafts = await api.ok("GET", f"/v1/credit-memos?accountId={one.id}&status=Draft")
    assert [m["number"] for m in drafts["creditmemos"]] == ["CM00000004"]
    everything = await api.ok("GET", "/v1/credit-memos?pageSize=100")
    assert len(everything["creditmemos"]) == 5
    await refused(api, "GET", "/v1/credit-memos?status=Open", status=400, category=20)


async def test_credit_beyond_what_is_left_of_an_invoice_item(api: ApiClient) -> None:
    account = await new_account(api)
    invoice = await posted_invoice(api, account, "100.00", "10.00")
    first = await credit_from_invoice(api, invoice, "60.00")
    message = await refused(
        api,
        "POST",
        f"/v1/credit-memos/invoice/{invoice['id']}",
        credit_body(invoice, "40.01"),
        category=30,
    )
    assert "39.99" not in message and "40.00" in message, message
    # Twice the same item in one request counts both.
    body = credit_body(invoice, "30")
    body["items"].append({"invoiceItemId": invoice["itemIds"][0], "amount": "10.01"})
    await refused(api, "POST", f"/v1/credit-memos/invoice/{invoice['id']}", body, category=30)
    # A canceled memo frees what it credited.
    await api.ok("PUT", f"/v1/credit-memos/{first['id']}/cancel")
    assert (await credit_from_invoice(api, invoice, "100.00", "10.00"))["amount"] == D(110)


async def test_credit_from_invoice_rules(api: ApiClient) -> None:
    account = await new_account(api)
    invoice = await posted_invoice(api, account, "100")
    other = await posted_invoice(api, account, "100")
    draft = await api.ok(
        "POST", "/v1/invoices", invoice_body(account.number, "100", status="Draft")
    )
    await refused(
        api,
        "POST",
        f"/v1/credit-memos/invoice/{draft['id']}",
        {"items": [{"invoiceItemId": "x" * 32, "amount": "1"}]},
        category=30,
    )
    await refused(
        api, "POST", "/v1/credit-memos/invoice/INV99999999", credit_body(invoice, "1"),
        status=404, category=40,
    )  # fmt: skip
    message = await refused(
        api,
        "POST",
        f"/v1/credit-memos/invoice/{invoice['id']}",
        {"items": [{"invoiceItemId": other["itemIds"][0], "amount": "1"}]},
        status=400,
        category=20,
    )
    assert "items[0].invoiceItemId" in message
    for amount, category in (("0", 20), ("-5", 20), ("1.001", 20)):
        message = await refused(
            api,
            "POST",
            f"/v1/credit-memos/invoice/{invoice['id']}",
            credit_body(invoice, amount),
            status=400,
            category=category,
        )
        assert "items[0].amount" in message
    message = await refused(
        api,
        "POST",
        f"/v1/credit-memos/invoice/{invoice['id']}",
        {"items": [{"amount": "1"}]},
        status=400,
        category=22,
    )
    assert "items[0].invoiceItemId" in message
    await refused(
        api, "POST", f"/v1/credit-memos/invoice/{invoice['id']}", {"items": []},
        status=400, category=20,
    )  # fmt: skip


@partner_or_not
async def test_standalone_credit_memo_from_charges(
    api: ApiClient, engine: AsyncEngine, partner: bool
) -> None:
    account = await new_account(api, partner)
    charge = await a_charge(api)
    watch = Watch(api, engine, account)
    await watch.start()
    body = {
        "accountId": account.id,
        "charges": [
            {"chargeId": charge, "memoItemAmount": "12.34", "description": "refund of fee"},
            {"productRatePlanChargeId": charge, "amount": 5, "quantity": 2},
        ],
        "currency": "USD",
        "number": "MY-CM-1",
        "autoPost": True,
        "effectiveDate": "2026-10-10",
    }
    memo = await api.ok("POST", "/v1/credit-memos", body)
    assert memo["number"] == "MY-CM-1" and memo["amount"] == D("17.34")
    assert memo["referredInvoiceId"] is None and memo["status"] == "Posted"
    await watch.moved(delta(ucma="17.34"))
    items = (await api.ok("GET", "/v1/credit-memos/MY-CM-1/items"))["items"]
    assert [i["productRatePlanChargeId"] for i in items] == [charge, charge]
    assert items[0]["description"] == "refund of fee" and items[1]["quantity"] == D(2)
    generated = await standalone(api, "credit", account, charge, "1")
    assert generated["number"] == "CM00000001"


async def test_standalone_memo_rules(api: ApiClient) -> None:
    account = await new_account(api)
    charge = await a_charge(api)
    await standalone(api, "credit", account, charge, "1", number="TAKEN")

    def body(**fields: Any) -> dict[str, Any]:
        return {
            "accountNumber": account.number,
            "charges": [{"productRatePlanChargeId": charge, "amount": "10"}],
            **fields,
        }

    for kind in ("credit", "debit"):
        path = f"/v1/{kind}-memos"
        message = await refused(api, "POST", path, body(currency="EUR"), category=30)
        assert "currency" in message
        await refused(api, "POST", path, body(accountNumber="NOPE"), status=404, category=40)
        await refused(
            api, "POST", path, body(charges=[{"productRatePlanChargeId": "f" * 32, "amount": "1"}]),
            status=404, category=40,
        )  # fmt: skip
        message = await refused(
            api, "POST", path, body(charges=[{"amount": "1"}]), status=400, category=22
        )
        assert "charges[0].productRatePlanChargeId" in message
        message = await refused(
            api, "POST", path, body(charges=[{"chargeId": charge}]), status=400, category=22
        )
        assert "charges[0].amount" in message
        message = await refused(
            api, "POST", path,
            body(charges=[{"chargeId": charge, "amount": "1"},
                          {"chargeId": charge, "amount": "-1"}]),
            status=400, category=20,
        )  # fmt: skip
        assert "charges[1].amount" in message
        await refused(api, "POST", path, {"charges": body()["charges"]}, status=400, category=22)
    await refused(api, "POST", "/v1/credit-memos", body(number="TAKEN"), category=30)
