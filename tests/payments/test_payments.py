"""Payments and refunds (API doc §3.11, §4.3), by example.

One test per payment row of §4.3, each run on a non-partner account (the metrics move by the
row's exact deltas at once) and on a partner account (the metrics stay as they were until
`refresh-metrics`, then move by the same deltas and equal `recompute`). Then the last payment on
the summary, reads and lists (the rules are in `test_payment_refusals.py`). Every payment read is
checked for applied + unapplied + refunded = amount.
"""

import asyncio
from datetime import date
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.payments import service as payments_service
from partnerbill.payments.schemas import CreatePaymentRequest
from tests.helpers import ApiClient, assert_envelope
from tests.payments.payment_support import (
    PARTNER,
    Account,
    apply,
    assert_exact,
    assert_moved,
    baseline,
    checked,
    debit_memo_balance,
    delta,
    get_payment,
    invoice_balance,
    new_account,
    pay,
    payment_body,
    post_debit_memo,
    post_invoice,
    read_metrics,
)

# -- §4.3 rows -------------------------------------------------------------------------------------


@PARTNER
async def test_create_payment_with_applications_to_invoices(
    api: ApiClient, engine: AsyncEngine, partner: bool
) -> None:
    account = await new_account(api, partner=partner)
    first = await post_invoice(api, account, "100.00")
    second = await post_invoice(api, account, "50.00")
    before = await baseline(api, engine, account)

    body = payment_body(account, "120.00", (first["id"], "80.00"))
    body["invoices"].append({"invoiceNumber": second["invoiceNumber"], "amount": "30.00"})
    payment = checked(await api.ok("POST", "/v1/payments", {**body, "effectiveDate": "2026-11-15"}))

    assert payment["amount"] == Decimal("120.00")
    assert payment["appliedAmount"] == Decimal("110.00")
    assert payment["unappliedAmount"] == Decimal("10.00")
    assert payment["refundAmount"] == 0
    assert payment["status"] == "Processed"
    assert payment["type"] == "External"
    assert payment["currency"] == "USD"
    assert payment["accountId"] == account.id
    assert payment["accountNumber"] == account.number
    assert payment["effectiveDate"] == "2026-11-15"
    assert payment["number"].startswith("P-")
    assert await invoice_balance(api, first["id"]) == Decimal("20.00")
    assert await invoice_balance(api, second["invoiceNumber"]) == Decimal("20.00")
    # TIB -applied, UPA +unapplied part, balance -amount.
    await assert_moved(api, engine, account, before, delta(tib="-110.00", upa="10.00"))
    assert before["balance"] - Decimal("120.00") == (await read_metrics(api, account))["balance"]


@PARTNER
async def test_create_payment_with_applications_to_debit_memos(
    api: ApiClient, engine: AsyncEngine, partner: bool
) -> None:
    account = await new_account(api, partner=partner)
    invoice = await post_invoice(api, account, "100.00")
    memo = await post_debit_memo(api, invoice, "40.00")
    before = await baseline(api, engine, account)

    body = payment_body(account, "70.00", (invoice["id"], "30.00"))
    body["debitMemos"] = [{"debitMemoId": memo["id"], "amount": "25.00"}]
    payment = checked(await api.ok("POST", "/v1/payments", body))

    assert payment["appliedAmount"] == Decimal("55.00")
    assert payment["unappliedAmount"] == Decimal("15.00")
    assert await invoice_balance(api, invoice["id"]) == Decimal("70.00")
    assert await debit_memo_balance(api, memo["id"]) == Decimal("15.00")
    # TIB -applied (invoices), TDMB -applied (debit memos), UPA +unapplied part.
    await assert_moved(
        api, engine, account, before, delta(tib="-30.00", tdmb="-25.00", upa="15.00")
    )


@PARTNER
async def test_apply_unapply_and_cancel_with_a_debit_memo(
    api: ApiClient, engine: AsyncEngine, partner: bool
) -> None:
    account = await new_account(api, partner=partner)
    invoice = await post_invoice(api, account, "100.00")
    memo = await post_debit_memo(api, invoice, "40.00")
    payment = await pay(api, account, "50.00")
    key = f"/v1/payments/{payment['id']}"

    before = await baseline(api, engine, account)
    body = {"debitMemos": [{"debitMemoNumber": memo["number"], "amount": "20.00"}]}
    applied = checked(await api.ok("PUT", f"{key}/apply", body))
    assert applied["appliedAmount"] == Decimal("20.00")
    assert await debit_memo_balance(api, memo["id"]) == Decimal("20.00")
    await assert_moved(api, engine, account, before, delta(tdmb="-20.00", upa="-20.00"))

    # Unposting a debit memo with a payment applied is refused.
    _, refused = await api.call("PUT", f"/v1/debit-memos/{memo['id']}/unpost")
    assert_envelope(refused, 30)

    before = await baseline(api, engine, account)
    body = {"debitMemos": [{"debitMemoId": memo["id"], "amount": "5.00"}]}
    unapplied = checked(await api.ok("PUT", f"{key}/unapply", body))
    assert unapplied["appliedAmount"] == Decimal("15.00")
    assert await debit_memo_balance(api, memo["id"]) == Decimal("25.00")
    await assert_moved(api, engine, account, before, delta(tdmb="5.00", upa="5.00"))

    before = await baseline(api, engine, account)
    canceled = checked(await api.ok("PUT", f"{key}/cancel"))
    assert canceled["status"] == "Canceled" and canceled["appliedAmount"] == 0
    assert await debit_memo_balance(api, memo["id"]) == Decimal("40.00")
    # Reverse the 15.00 on the debit memo, remove the 35.00 unapplied.
    await assert_moved(api, engine, account, before, delta(tdmb="15.00", upa="-35.00"))


@PARTNER
async def test_apply_payment(api: ApiClient, engine: AsyncEngine, partner: bool) -> None:
    account = await new_account(api, partner=partner)
    invoice = await post_invoice(api, account, "100.00")
    payment = await pay(api, account, "50.00")
    assert payment["unappliedAmount"] == Decimal("50.00")
    before = await baseline(api, engine, account)

    applied = await apply(api, payment["number"], (invoice["invoiceNumber"], "30.00"))

    assert applied["id"] == payment["id"]
    assert applied["appliedAmount"] == Decimal("30.00")
    assert applied["unappliedAmount"] == Decimal("20.00")
    assert await invoice_balance(api, invoice["id"]) == Decimal("70.00")
    # TIB -x, UPA -x, balance unchanged.
    await assert_moved(api, engine, account, before, delta(tib="-30.00", upa="-30.00"))


@PARTNER
async def test_unapply_payment(api: ApiClient, engine: AsyncEngine, partner: bool) -> None:
    account = await new_account(api, partner=partner)
    invoice = await post_invoice(api, account, "100.00")
    payment = await pay(api, account, "40.00", (invoice["id"], "40.00"))
    before = await baseline(api, engine, account)

    unapplied = await apply(api, payment["id"], (invoice["id"], "15.00"), unapply=True)

    assert unapplied["appliedAmount"] == Decimal("25.00")
    assert unapplied["unappliedAmount"] == Decimal("15.00")
    assert await invoice_balance(api, invoice["id"]) == Decimal("75.00")
    # TIB +x, UPA +x, balance unchanged.
    await assert_moved(api, engine, account, before, delta(tib="15.00", upa="15.00"))

    before = await baseline(api, engine, account)
    rest = await apply(api, payment["number"], (invoice["invoiceNumber"], "25.00"), unapply=True)
    assert rest["appliedAmount"] == 0
    assert rest["unappliedAmount"] == Decimal("40.00")
    assert await invoice_balance(api, invoice["id"]) == Decimal("100.00")
    await assert_moved(api, engine, account, before, delta(tib="25.00", upa="25.00"))


@PARTNER
async def test_refund_payment_from_unapplied(
    api: ApiClient, engine: AsyncEngine, partner: bool
) -> None:
    account = await new_account(api, partner=partner)
    invoice = await post_invoice(api, account, "100.00")
    payment = await pay(api, account, "50.00", (invoice["id"], "20.00"))
    before = await baseline(api, engine, account)

    refund = await api.ok(
        "POST",
        f"/v1/payments/{payment['number']}/refunds",
        {
            "type": "External",
            "totalAmount": "20.00",
            "refundDate": "2026-11-20",
            "methodType": "Check",
            "referenceId": "chk-1",
            "comment": "partial refund",
        },
    )

    assert refund["amount"] == Decimal("20.00")
    assert refund["status"] == "Processed"
    assert refund["type"] == "External"
    assert refund["methodType"] == "Check"
    assert refund["paymentId"] == payment["id"]
    assert refund["paymentNumber"] == payment["number"]
    assert refund["accountId"] == account.id
    assert refund["refundDate"] == "2026-11-20"
    assert refund["number"].startswith("R-")
    # A refund carries its createdDate, as a credit memo's refund does (RefundResponse).
    assert refund["createdDate"] == refund["refundTransactionTime"]
    refreshed_payment = await get_payment(api, payment["id"])
    assert refreshed_payment["refundAmount"] == Decimal("20.00")
    assert refreshed_payment["appliedAmount"] == Decimal("20.00")
    assert refreshed_payment["unappliedAmount"] == Decimal("10.00")
    assert await invoice_balance(api, invoice["id"]) == Decimal("80.00")
    # UPA -r, balance +r.
    await assert_moved(api, engine, account, before, delta(upa="-20.00"))

    for key in (refund["id"], refund["number"]):
        fetched = await api.ok("GET", f"/v1/refunds/{key}")
        assert {k: fetched[k] for k in refund if k != "success"} == {
            k: v for k, v in refund.items() if k != "success"
        }
    _, missing = await api.call("GET", "/v1/refunds/R-99999999", expect=404)
    assert_envelope(missing, 40)

    # The rest of the unapplied amount can be refunded too, to exactly zero.
    before = await baseline(api, engine, account)
    await api.ok(
        "POST", f"/v1/payments/{payment['id']}/refunds", {"type": "External", "totalAmount": 10}
    )
    emptied = await get_payment(api, payment["id"])
    assert emptied["unappliedAmount"] == 0
    assert emptied["refundAmount"] == Decimal("30.00")
    await assert_moved(api, engine, account, before, delta(upa="-10.00"))


@PARTNER
async def test_cancel_payment_reverses_applications_and_removes_unapplied(
    api: ApiClient, engine: AsyncEngine, partner: bool
) -> None:
    account = await new_account(api, partner=partner)
    first = await post_invoice(api, account, "100.00")
    second = await post_invoice(api, account, "30.00")
    payment = await pay(api, account, "100.00", (first["id"], "45.00"), (second["id"], "15.00"))
    # An apply and a partial unapply later: the cancel reverses what is applied *now*.
    await apply(api, payment["id"], (first["id"], "5.00"))
    await apply(api, payment["id"], (second["id"], "5.00"), unapply=True)
    assert (await get_payment(api, payment["id"]))["appliedAmount"] == Decimal("60.00")
    before = await baseline(api, engine, account)

    canceled = checked(await api.ok("PUT", f"/v1/payments/{payment['number']}/cancel"))

    assert canceled["status"] == "Canceled"
    assert canceled["appliedAmount"] == 0
    assert canceled["refundAmount"] == 0
    assert await invoice_balance(api, first["id"]) == Decimal("100.00")
    assert await invoice_balance(api, second["id"]) == Decimal("30.00")
    assert (await get_payment(api, payment["id"]))["status"] == "Canceled"
    # Reverse its applications (TIB +60), remove its unapplied amount (UPA -40): balance +100.
    await assert_moved(api, engine, account, before, delta(tib="60.00", upa="-40.00"))
    async with engine.connect() as conn:
        left = await conn.scalar(
            text(
                "SELECT coalesce(sum(amount), 0) FROM applications "
                "WHERE tenant_id = :t AND source_id = :p"
            ),
            {"t": api.tenant.id, "p": payment["id"]},
        )
    assert left == 0
    # Nothing applied any more: the invoice can be unposted.
    await api.ok("PUT", f"/v1/invoices/{first['id']}/unpost")


# -- last payment on the summary -------------------------------------------------------------------


async def last_payment(api: ApiClient, account: Account) -> tuple[str | None, Decimal | None]:
    info = (await api.ok("GET", f"/v1/accounts/{account.number}/summary"))["basicInfo"]
    amount = info["lastPaymentAmount"]
    return info["lastPaymentDate"], None if amount is None else Decimal(amount)


async def expect_last_payment(
    api: ApiClient,
    account: Account,
    previous: tuple[str | None, Decimal | None],
    expected: tuple[str | None, Decimal | None],
) -> None:
    if account.partner:
        assert await last_payment(api, account) == previous
        await api.refresh(account.number)
    assert await last_payment(api, account) == expected


@PARTNER
async def test_summary_last_payment(api: ApiClient, engine: AsyncEngine, partner: bool) -> None:
    account = await new_account(api, partner=partner)
    assert await last_payment(api, account) == (None, None)

    await pay(api, account, "10.00", effectiveDate="2026-11-10")
    await expect_last_payment(api, account, (None, None), ("2026-11-10", Decimal("10.00")))
    later = await pay(api, account, "20.00", effectiveDate="2026-11-20")
    await expect_last_payment(
        api, account, ("2026-11-10", Decimal("10.00")), ("2026-11-20", Decimal("20.00"))
    )
    # An earlier-dated payment created later does not move them.
    await pay(api, account, "30.00", effectiveDate="2026-11-05")
    await expect_last_payment(
        api, account, ("2026-11-20", Decimal("20.00")), ("2026-11-20", Decimal("20.00"))
    )
    # Canceling the last payment recomputes them from the remaining ones.
    await api.ok("PUT", f"/v1/payments/{later['id']}/cancel")
    await expect_last_payment(
        api, account, ("2026-11-20", Decimal("20.00")), ("2026-11-10", Decimal("10.00"))
    )
    summary = await api.ok("GET", f"/v1/accounts/{account.number}/summary")
    assert [p["effectiveDate"] for p in summary["payments"]] == [
        "2026-11-20",
        "2026-11-10",
        "2026-11-05",
    ]
    assert Decimal(summary["basicInfo"]["balance"]) == Decimal("-40.00")
    await assert_exact(api, engine, account)


async def test_last_payment_of_same_day_payments_equals_recompute(
    api: ApiClient, engine: AsyncEngine
) -> None:
    """Two same-day payments on a non-partner account whose transactions take the metrics lock
    in the other order than they started: the stored last payment must still equal `recompute`
    (which breaks the tie by creation time)."""
    account = await new_account(api, partner=False)

    def request(amount: str) -> CreatePaymentRequest:
        return CreatePaymentRequest(
            account_id=account.id,
            amount=Decimal(amount),
            currency="USD",
            type="External",
            effective_date=date(2026, 11, 10),
        )

    async with engine.connect() as early:
        transaction = await early.begin()
        await early.execute(text("SELECT now()"))  # its transaction (and created_at) starts here
        await asyncio.sleep(0.05)
        async with engine.begin() as late:
            await payments_service.create_payment(late, api.tenant, request("2.00"))
        await payments_service.create_payment(early, api.tenant, request("1.00"))
        await transaction.commit()

    await assert_exact(api, engine, account)


# -- reads -----------------------------------------------------------------------------------------


async def test_get_payment_by_id_and_number(api: ApiClient) -> None:
    account = await new_account(api, partner=False)
    invoice = await post_invoice(api, account, "70.00")
    created = await pay(
        api,
        account,
        "75.50",
        (invoice["id"], "70.00"),
        number="PAY-CUSTOM-1",
        referenceId="wire-42",
        comment="by wire",
        paymentMethodType="WireTransfer",
    )
    assert created["number"] == "PAY-CUSTOM-1"

    by_id = await get_payment(api, created["id"])
    by_number = await get_payment(api, "PAY-CUSTOM-1")
    assert by_id == by_number
    for name in ("id", "number", "accountId", "accountNumber", "amount", "appliedAmount"):
        assert by_id[name] == created[name], name
    assert by_id["unappliedAmount"] == Decimal("5.50")
    assert by_id["referenceId"] == "wire-42"
    assert by_id["comment"] == "by wire"
    assert by_id["paymentMethodType"] == "WireTransfer"
    assert by_id["standalone"] is False

    _, missing = await api.call("GET", "/v1/payments/P-99999999", expect=404)
    assert_envelope(missing, 40)
    # A number is unique per tenant.
    _, duplicate = await api.call(
        "POST", "/v1/payments", payment_body(account, "1.00", number="PAY-CUSTOM-1")
    )
    assert_envelope(duplicate, 30)


async def test_list_payments_with_filters_and_paging(api: ApiClient) -> None:
    account = await new_account(api, partner=False)
    other = await new_account(api, partner=True)
    mine = [await pay(api, account, f"{i}.00") for i in range(1, 6)]
    theirs = await pay(api, other, "9.00")
    await api.ok("PUT", f"/v1/payments/{mine[1]['id']}/cancel")

    listed = await api.ok("GET", f"/v1/payments?accountId={account.id}")
    assert [p["id"] for p in listed["payments"]] == [p["id"] for p in reversed(mine)]
    assert "nextPage" not in listed
    for payment in listed["payments"]:
        checked(payment)
        assert "success" not in payment

    canceled = await api.ok("GET", "/v1/payments?status=Canceled")
    assert [p["id"] for p in canceled["payments"]] == [mine[1]["id"]]
    processed = await api.ok("GET", f"/v1/payments?accountId={account.id}&status=Processed")
    assert len(processed["payments"]) == 4
    external = await api.ok("GET", "/v1/payments?type=External")
    assert {p["id"] for p in external["payments"]} == {p["id"] for p in [*mine, theirs]}
    assert (await api.ok("GET", "/v1/payments?type=Electronic"))["payments"] == []

    seen: list[str] = []
    url = f"/v1/payments?accountId={account.id}&pageSize=2"
    pages = 0
    while url:
        page = await api.ok("GET", url)
        pages += 1
        assert len(page["payments"]) <= 2
        seen += [checked(p)["id"] for p in page["payments"]]
        url = page.get("nextPage", "")
    assert pages == 3
    assert seen == [p["id"] for p in reversed(mine)]


async def test_list_refunds(api: ApiClient) -> None:
    """API doc §3.11: `GET /v1/refunds` → `{refunds: [...], nextPage}`."""
    account = await new_account(api, partner=False)
    payment = await pay(api, account, "10.00")
    ids = set()
    for amount in ("1.00", "2.00"):
        refund = await api.ok(
            "POST",
            f"/v1/payments/{payment['id']}/refunds",
            {"type": "External", "totalAmount": amount},
        )
        ids.add(refund["id"])
    listed = await api.ok("GET", "/v1/refunds")
    assert {r["id"] for r in listed["refunds"]} == ids
