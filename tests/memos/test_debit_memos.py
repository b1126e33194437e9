"""Debit memos over the v1 API: from an invoice and standalone, unpost only while unpaid, how each
moves the account metrics; and an invoice with memos that cannot be unposted."""

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import (
    ApiClient,
)
from tests.memos.memo_support import (
    D,
    Watch,
    a_charge,
    apply_body,
    credit_from_invoice,
    delta,
    new_account,
    partner_or_not,
    posted_invoice,
    refused,
    standalone,
)

# --- debit memos ------------------------------------------------------------------------------


@partner_or_not
async def test_debit_memo_from_invoice_lifecycle(
    api: ApiClient, engine: AsyncEngine, partner: bool
) -> None:
    account = await new_account(api, partner, paymentTerm="Net 30")
    invoice = await posted_invoice(api, account, "100.00")
    watch = Watch(api, engine, account)
    await watch.start()
    memo = await api.ok(
        "POST",
        f"/v1/debit-memos/invoice/{invoice['invoiceNumber']}",
        {
            "effectiveDate": "2026-11-10",
            "items": [
                {"amount": "12.00", "invoiceItemId": invoice["itemIds"][0], "skuName": "late"},
                {"amount": "3.00", "description": "fee"},
            ],
        },
    )
    assert memo["number"] == "DM00000001" and memo["status"] == "Draft"
    assert (memo["amount"], memo["balance"], memo["beAppliedAmount"]) == (D(15), D(15), D(0))
    assert (memo["debitMemoDate"], memo["dueDate"]) == ("2026-11-10", "2026-12-10")
    assert memo["referredInvoiceId"] == invoice["id"]
    await watch.moved(delta())

    await api.ok("PUT", f"/v1/debit-memos/{memo['id']}/post")
    await watch.moved(delta(tdmb="15"))
    assert (await api.ok("GET", f"/v1/debit-memos/{memo['number']}"))["status"] == "Posted"
    await api.ok("PUT", f"/v1/debit-memos/{memo['id']}/unpost")
    await watch.moved(delta(tdmb="-15"))
    await api.ok("PUT", f"/v1/debit-memos/{memo['id']}/cancel")
    await watch.moved(delta())
    for action in ("post", "unpost", "cancel"):
        await refused(api, "PUT", f"/v1/debit-memos/{memo['id']}/{action}", category=30)

    items = await api.ok("GET", f"/v1/debit-memos/{memo['id']}/items?pageSize=1")
    assert items["items"][0]["skuName"] == "late" and "nextPage" in items
    assert items["items"][0]["serviceStartDate"] == "2026-11-01"
    listed = await api.ok("GET", f"/v1/debit-memos?accountNumber={account.number}")
    assert [m["id"] for m in listed["debitmemos"]] == [memo["id"]]


@partner_or_not
async def test_standalone_debit_memo(api: ApiClient, engine: AsyncEngine, partner: bool) -> None:
    account = await new_account(api, partner)  # Due Upon Receipt
    charge = await a_charge(api)
    watch = Watch(api, engine, account)
    await watch.start()
    memo = await standalone(
        api, "debit", account, charge, "9.99", autoPost=True, effectiveDate="2026-05-05"
    )
    assert memo["dueDate"] == "2026-05-05" and memo["status"] == "Posted"
    await watch.moved(delta(tdmb="9.99"))
    later = await standalone(
        api, "debit", account, charge, "1", dueDate="2026-06-30", effectiveDate="2026-06-01"
    )
    assert later["dueDate"] == "2026-06-30" and later["number"] == "DM00000002"
    await refused(
        api, "POST", "/v1/debit-memos",
        {"accountNumber": account.number, "charges": [{"chargeId": charge, "amount": "1"}],
         "effectiveDate": "2026-06-01", "dueDate": "2026-05-01"},
        status=400, category=20,
    )  # fmt: skip


async def test_debit_memo_unpost_only_while_unpaid(api: ApiClient) -> None:
    account = await new_account(api)
    charge = await a_charge(api)
    debit = await standalone(api, "debit", account, charge, "40", autoPost=True)
    memo = await standalone(api, "credit", account, charge, "10", autoPost=True)
    await api.ok(
        "PUT", f"/v1/credit-memos/{memo['id']}/apply", apply_body(debit={debit["id"]: "10"})
    )
    message = await refused(api, "PUT", f"/v1/debit-memos/{debit['id']}/unpost", category=30)
    assert "unapply" in message
    await refused(api, "GET", "/v1/debit-memos/DM404", status=404, category=40)
    await refused(api, "PUT", "/v1/debit-memos/DM404/post", status=404, category=40)
    await refused(api, "GET", "/v1/credit-memos/CM404/items", status=404, category=40)


# --- invoices with memos ----------------------------------------------------------------------


async def test_invoice_with_memos_cannot_be_unposted(api: ApiClient) -> None:
    account = await new_account(api)
    invoice = await posted_invoice(api, account, "100")
    credit = await credit_from_invoice(api, invoice, "10", autoPost=True)
    debit = await api.ok(
        "POST", f"/v1/debit-memos/invoice/{invoice['id']}", {"items": [{"amount": "5"}]}
    )
    unpost = f"/v1/invoices/{invoice['id']}/unpost"
    message = await refused(api, "PUT", unpost, category=30)
    assert credit["number"] in message
    await api.ok("PUT", f"/v1/credit-memos/{credit['id']}/unpost")
    await refused(api, "PUT", unpost, category=30)  # a draft memo still refers to it
    await api.ok("PUT", f"/v1/credit-memos/{credit['id']}/cancel")
    message = await refused(api, "PUT", unpost, category=30)
    assert debit["number"] in message
    await api.ok("PUT", f"/v1/debit-memos/{debit['id']}/cancel")
    assert (await api.ok("PUT", unpost))["invoice"]["status"] == "Draft"
    # And a memo needs a posted invoice.
    await refused(
        api, "POST", f"/v1/debit-memos/invoice/{invoice['id']}", {"items": [{"amount": "5"}]},
        category=30,
    )  # fmt: skip
