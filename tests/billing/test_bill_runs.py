"""Bill runs through the HTTP API on real PostgreSQL: posting and cancelling a bill run, and an
invoice owner apart from the subscription owner (the reseller case)."""

from tests.catalog_fixtures import (
    new_account,
    one_time_charge,
    order_body,
    rate_plan,
    recurring_charge,
)
from tests.helpers import ApiClient, assert_envelope
from tests.subscription_billing import (
    D,
    bill_run,
    charges,
    invoice,
    items,
    only_invoice_of_run,
    place,
    subscribe,
    subscription,
)

# --- bill run post and cancel -------------------------------------------------------------------


async def test_posting_a_completed_bill_run_posts_its_invoices_and_moves_metrics(
    api: ApiClient,
) -> None:
    account = await new_account(api, paymentTerm="Net 30")
    plan = await rate_plan(api, recurring_charge("10"))
    await subscribe(api, account, plan, "2026-01-01")
    run = await bill_run(api, account["accountId"], "2026-02-01")
    assert run["status"] == "Completed" and run["autoPost"] is False
    inv = await only_invoice_of_run(api, run)
    assert inv["status"] == "Draft" and D(str(inv["amount"])) == D("20.00")
    metrics = await api.metrics(account["accountNumber"])
    assert D(str(metrics["totalInvoiceBalance"])) == 0 and D(str(metrics["balance"])) == 0
    posted = await api.ok("PUT", f"/v1/bill-runs/{run['id']}/post", {"invoiceDate": "2026-02-02"})
    assert posted["status"] == "Posted"
    assert (await api.ok("GET", f"/v1/bill-runs/{run['billRunNumber']}"))["status"] == "Posted"
    inv = await invoice(api, inv["id"])
    assert inv["status"] == "Posted" and str(inv["invoiceDate"]) == "2026-02-02"
    # The due date keeps the payment term's distance from the new invoice date (as
    # `PUT /v1/invoices/{key}/post` with an invoiceDate does).
    assert str(inv["dueDate"]) == "2026-03-04", inv
    metrics = await api.metrics(account["accountNumber"])
    assert D(str(metrics["totalInvoiceBalance"])) == D("20.00")
    assert D(str(metrics["balance"])) == D("20.00")
    # Only a Completed run can be posted or canceled.
    _, payload = await api.call("PUT", f"/v1/bill-runs/{run['id']}/post", {}, expect=None)
    assert_envelope(payload, 30)
    _, payload = await api.call("PUT", f"/v1/bill-runs/{run['id']}/cancel", {}, expect=None)
    assert_envelope(payload, 30)


async def test_canceling_a_bill_run_cancels_its_drafts_and_the_period_is_billable_again(
    api: ApiClient,
) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"), one_time_charge("100"))
    order = await subscribe(api, account, plan, "2026-01-01")
    run = await bill_run(api, account["accountId"], "2026-02-01")
    inv = await only_invoice_of_run(api, run)
    assert D(str(inv["amount"])) == D("120.00")
    canceled = await api.ok("PUT", f"/v1/bill-runs/{run['id']}/cancel", {"cancelOnce": True})
    assert canceled["status"] == "Canceled"
    assert (await invoice(api, inv["id"]))["status"] == "Canceled"
    sub = await subscription(api, order["subscriptionNumbers"][0])
    assert all(c["chargedThroughDate"] is None for c in charges(sub)), charges(sub)
    metrics = await api.metrics(account["accountNumber"])
    assert D(str(metrics["totalInvoiceBalance"])) == 0
    again = await bill_run(api, account["accountId"], "2026-02-01", autoPost=True)
    inv = await only_invoice_of_run(api, again)
    assert D(str(inv["amount"])) == D("120.00")
    assert sorted(await items(api, inv["invoiceNumber"])) == [
        ("2026-01-01", "2026-01-01", D("100.00")),
        ("2026-01-01", "2026-01-31", D("10.00")),
        ("2026-02-01", "2026-02-28", D("10.00")),
    ]


async def test_canceling_a_later_bill_run_keeps_what_an_earlier_one_billed(
    api: ApiClient,
) -> None:
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    order = await subscribe(api, account, plan, "2026-01-01")
    await bill_run(api, account["accountId"], "2026-01-01", autoPost=True)
    second = await bill_run(api, account["accountId"], "2026-03-01")
    assert D(str((await only_invoice_of_run(api, second))["amount"])) == D("20.00")
    await api.ok("PUT", f"/v1/bill-runs/{second['id']}/cancel", {})
    sub = await subscription(api, order["subscriptionNumbers"][0])
    assert str(charges(sub)[0]["chargedThroughDate"]) == "2026-02-01"
    third = await bill_run(api, account["accountId"], "2026-03-01")
    inv = await only_invoice_of_run(api, third)
    assert await items(api, inv["invoiceNumber"]) == [
        ("2026-02-01", "2026-02-28", D("10.00")),
        ("2026-03-01", "2026-03-31", D("10.00")),
    ]


# --- reseller: invoice owner differs from subscription owner ------------------------------------


async def test_the_invoice_owner_is_billed_and_the_subscription_owner_carries_the_mrr(
    api: ApiClient,
) -> None:
    reseller = await new_account(api, name="Reseller")
    customer = await new_account(api, name="End customer")
    plan = await rate_plan(api, recurring_charge("10"))
    body = order_body(
        customer["accountNumber"],
        plan,
        "2026-01-01",
        run_billing=True,
        invoiceOwnerAccountNumber=reseller["accountNumber"],
    )
    order = await place(api, body)
    (number,) = order["subscriptionNumbers"]
    assert order["subscriptions"][0]["subscriptionOwnerNumber"] == customer["accountNumber"]
    inv = await invoice(api, order["invoiceNumbers"][0])
    assert inv["accountNumber"] == reseller["accountNumber"]
    sub = await subscription(api, number)
    assert sub["accountNumber"] == customer["accountNumber"]
    assert sub["invoiceOwnerAccountNumber"] == reseller["accountNumber"]
    reseller_metrics = await api.metrics(reseller["accountNumber"])
    customer_metrics = await api.metrics(customer["accountNumber"])
    assert D(str(reseller_metrics["totalInvoiceBalance"])) == D("10.00")
    assert D(str(customer_metrics["totalInvoiceBalance"])) == 0
    assert D(str(customer_metrics["contractedMrr"])) == D("10")
    assert D(str(reseller_metrics["contractedMrr"])) == 0
    # A bill run for the subscription owner finds nothing; one for the invoice owner bills.
    assert (await bill_run(api, customer["accountId"], "2026-02-01"))["invoiceCount"] == 0
    run = await bill_run(api, reseller["accountId"], "2026-02-01")
    inv = await only_invoice_of_run(api, run)
    assert inv["accountId"] == reseller["accountId"]
    assert await items(api, inv["invoiceNumber"]) == [("2026-02-01", "2026-02-28", D("10.00"))]
