"""Payments and refunds (API doc §3.11, §4.3), by example.

One test per payment row of §4.3, each run on a non-partner account (the metrics move by the
row's exact deltas at once) and on a partner account (the metrics stay as they were until
`refresh-metrics`, then move by the same deltas and equal `recompute`). Then the last payment on
the summary, reads and lists, and the rules: every refused request answers in the envelope and
writes nothing. Every payment read is checked for applied + unapplied + refunded = amount.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.metrics import service as metrics
from partnerbill.payments import service as payments_service
from partnerbill.payments.schemas import CreatePaymentRequest
from tests.helpers import ApiClient, assert_envelope, invoice_body

METRICS = (
    "totalInvoiceBalance",
    "totalDebitMemoBalance",
    "unappliedPaymentAmount",
    "unappliedCreditMemoAmount",
    "balance",
)
PARTNER = pytest.mark.parametrize("partner", [False, True], ids=["non-partner", "partner"])


@dataclass(frozen=True)
class Account:
    number: str
    id: str
    partner: bool


async def new_account(api: ApiClient, *, partner: bool, currency: str = "USD") -> Account:
    created = await api.create_account(partner=partner, currency=currency)
    return Account(created["accountNumber"], created["accountId"], partner)


async def post_invoice(
    api: ApiClient, account: Account, amount: str = "100.00", **fields: Any
) -> dict[str, Any]:
    return await api.ok("POST", "/v1/invoices", invoice_body(account.number, amount, **fields))


async def post_debit_memo(api: ApiClient, invoice: dict[str, Any], amount: str) -> dict[str, Any]:
    """A posted debit memo from the invoice, on the invoice's account."""
    memo = await api.ok(
        "POST",
        f"/v1/debit-memos/invoice/{invoice['id']}",
        {"items": [{"amount": amount, "skuName": "Late fee"}], "autoPost": True},
    )
    assert memo["status"] == "Posted" and memo["balance"] == Decimal(amount), memo
    return memo


async def debit_memo_balance(api: ApiClient, memo_key: str) -> Decimal:
    return Decimal((await api.ok("GET", f"/v1/debit-memos/{memo_key}"))["balance"])


def checked(payment: dict[str, Any]) -> dict[str, Any]:
    """A payment as read: applied + unapplied + refunded is always its amount."""
    total = payment["appliedAmount"] + payment["unappliedAmount"] + payment["refundAmount"]
    assert total == payment["amount"], payment
    assert payment["appliedAmount"] >= 0 and payment["refundAmount"] >= 0, payment
    assert payment["unappliedAmount"] >= 0, payment
    return payment


def payment_body(
    account: Account, amount: str, *invoices: tuple[str, str], **fields: Any
) -> dict[str, Any]:
    return {
        "accountId": account.id,
        "amount": amount,
        "currency": "USD",
        "type": "External",
        "invoices": [{"invoiceId": key, "amount": value} for key, value in invoices],
        **fields,
    }


async def pay(
    api: ApiClient, account: Account, amount: str, *invoices: tuple[str, str], **fields: Any
) -> dict[str, Any]:
    return checked(
        await api.ok("POST", "/v1/payments", payment_body(account, amount, *invoices, **fields))
    )


async def get_payment(api: ApiClient, key: str) -> dict[str, Any]:
    return checked(await api.ok("GET", f"/v1/payments/{key}"))


async def apply(
    api: ApiClient, payment_key: str, *invoices: tuple[str, str], unapply: bool = False
) -> dict[str, Any]:
    body = {"invoices": [{"invoiceId": key, "amount": value} for key, value in invoices]}
    action = "unapply" if unapply else "apply"
    return checked(await api.ok("PUT", f"/v1/payments/{payment_key}/{action}", body))


async def invoice_balance(api: ApiClient, invoice_key: str) -> Decimal:
    return Decimal((await api.ok("GET", f"/v1/invoices/{invoice_key}"))["balance"])


async def read_metrics(api: ApiClient, account: Account) -> dict[str, Decimal]:
    found = await api.metrics(account.number)
    return {name: Decimal(found[name]) for name in METRICS}


def delta(tib: str = "0", tdmb: str = "0", upa: str = "0", ucma: str = "0") -> dict[str, Decimal]:
    moved = {
        "totalInvoiceBalance": Decimal(tib),
        "totalDebitMemoBalance": Decimal(tdmb),
        "unappliedPaymentAmount": Decimal(upa),
        "unappliedCreditMemoAmount": Decimal(ucma),
    }
    moved["balance"] = (
        moved["totalInvoiceBalance"]
        + moved["totalDebitMemoBalance"]
        - moved["unappliedPaymentAmount"]
        - moved["unappliedCreditMemoAmount"]
    )
    return moved


async def assert_exact(api: ApiClient, engine: AsyncEngine, account: Account) -> None:
    async with engine.begin() as conn:
        stored = await metrics.read_metrics(conn, api.tenant, account.id)
        recomputed = await metrics.recompute(conn, api.tenant, account.id)
    assert stored.metrics == recomputed
    assert stored.pending_changes == 0


async def baseline(api: ApiClient, engine: AsyncEngine, account: Account) -> dict[str, Decimal]:
    """The account's exact metrics before an operation (a partner account is refreshed first)."""
    if account.partner:
        await api.refresh(account.number)
    await assert_exact(api, engine, account)
    return await read_metrics(api, account)


async def assert_moved(
    api: ApiClient,
    engine: AsyncEngine,
    account: Account,
    before: dict[str, Decimal],
    moved: dict[str, Decimal],
) -> None:
    """Non-partner: moved by `moved` at once. Partner: unmoved until the refresh, then moved by
    exactly `moved`. Either way the stored metrics equal `recompute` afterwards."""
    after = await read_metrics(api, account)
    if account.partner:
        assert after == before
        freshness = (await api.ok("GET", f"/v1/accounts/{account.number}"))["metricsFreshness"]
        assert freshness["pendingChanges"] >= 1
        refreshed = await api.refresh(account.number)
        assert refreshed["foldedChanges"] >= 1
        after = await read_metrics(api, account)
    assert after == {name: before[name] + moved[name] for name in METRICS}
    await assert_exact(api, engine, account)


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


# -- rules: refused, in the envelope, nothing written ----------------------------------------------


@dataclass
class Ledger:
    """One account's documents in every state a rule needs."""

    account: Account
    posted: dict[str, Any]  # 100.00, 30.00 of it paid by `applied`
    small: dict[str, Any]  # 20.00, nothing paid
    draft: dict[str, Any]
    canceled_invoice: dict[str, Any]
    foreign: dict[str, Any]  # another account's posted invoice
    unapplied: dict[str, Any]  # 50.00, all unapplied
    applied: dict[str, Any]  # 40.00, 30.00 applied to `posted`
    canceled: dict[str, Any]
    refunded: dict[str, Any]  # 25.00, 5.00 refunded
    debit: dict[str, Any]  # posted debit memo of 30.00 from `small`
    draft_debit: dict[str, Any]
    foreign_debit: dict[str, Any]  # another account's posted debit memo


async def make_ledger(api: ApiClient, *, partner: bool) -> Ledger:
    account = await new_account(api, partner=partner)
    posted = await post_invoice(api, account, "100.00")
    small = await post_invoice(api, account, "20.00")
    draft = await post_invoice(api, account, "10.00", status="Draft")
    canceled_invoice = await post_invoice(api, account, "10.00", status="Draft")
    await api.ok("PUT", f"/v1/invoices/{canceled_invoice['id']}/cancel")
    other = await new_account(api, partner=partner)
    foreign = await post_invoice(api, other, "100.00")
    unapplied = await pay(api, account, "50.00")
    applied = await pay(api, account, "40.00", (posted["id"], "30.00"))
    canceled = await pay(api, account, "10.00")
    await api.ok("PUT", f"/v1/payments/{canceled['id']}/cancel")
    refunded = await pay(api, account, "25.00")
    await api.ok(
        "POST", f"/v1/payments/{refunded['id']}/refunds", {"type": "External", "totalAmount": 5}
    )
    debit = await post_debit_memo(api, small, "30.00")
    draft_debit = await api.ok(
        "POST",
        f"/v1/debit-memos/invoice/{small['id']}",
        {"items": [{"amount": "10.00", "skuName": "Fee"}]},
    )
    foreign_debit = await post_debit_memo(api, foreign, "30.00")
    if partner:
        await api.refresh(account.number)
    return Ledger(
        account,
        posted,
        small,
        draft,
        canceled_invoice,
        foreign,
        unapplied,
        applied,
        canceled,
        refunded,
        debit,
        draft_debit,
        foreign_debit,
    )


async def ledger_state(api: ApiClient, engine: AsyncEngine) -> dict[str, Any]:
    """Everything a settlement request could write, for the tenant, straight from PostgreSQL."""
    queries = {
        "payments": "SELECT id, status, amount, applied_amount, refund_amount FROM payments",
        "applications": "SELECT id, source_id, target_id, amount FROM applications",
        "refunds": "SELECT id, payment_id, amount FROM refunds",
        "invoices": "SELECT id, status, balance FROM invoices",
        "debit_memos": "SELECT id, status, balance FROM debit_memos",
        "credit_memos": "SELECT id, status, applied_amount, refund_amount FROM credit_memos",
        "metrics_changes": "SELECT id, account_id FROM metrics_changes",
        "account_metrics": "SELECT * FROM account_metrics",
    }
    state: dict[str, Any] = {}
    async with engine.connect() as conn:
        for name, query in queries.items():
            rows = await conn.execute(
                text(f"{query} WHERE tenant_id = :t ORDER BY 1, 2"), {"t": api.tenant.id}
            )
            state[name] = [tuple(row) for row in rows]
    return state


Request = tuple[str, str, dict[str, Any] | None]


def _create(s: Ledger, amount: str = "10.00", *invoices: tuple[str, str], **fields: Any) -> Request:
    return "POST", "/v1/payments", payment_body(s.account, amount, *invoices, **fields)


def _apply(s: Ledger, payment: dict[str, Any], invoice: str, amount: str) -> Request:
    body = {"invoices": [{"invoiceId": invoice, "amount": amount}]}
    return "PUT", f"/v1/payments/{payment['id']}/apply", body


def _unapply(s: Ledger, payment: dict[str, Any], invoice: str, amount: str) -> Request:
    body = {"invoices": [{"invoiceId": invoice, "amount": amount}]}
    return "PUT", f"/v1/payments/{payment['id']}/unapply", body


def _apply_debit(s: Ledger, payment: dict[str, Any], memo: str, amount: str) -> Request:
    body = {"debitMemos": [{"debitMemoId": memo, "amount": amount}]}
    return "PUT", f"/v1/payments/{payment['id']}/apply", body


def _refund(payment: dict[str, Any], amount: str, kind: str = "External") -> Request:
    return "POST", f"/v1/payments/{payment['id']}/refunds", {"type": kind, "totalAmount": amount}


# (id, request built from the ledger, HTTP status, error category)
RULES: list[tuple[str, Callable[[Ledger], Request], int, int]] = [
    # The application is more than the invoice's balance.
    (
        "create-above-invoice-balance",
        lambda s: _create(s, "200.00", (s.small["id"], "20.01")),
        200,
        30,
    ),
    (
        "apply-above-invoice-balance",
        lambda s: _apply(s, s.unapplied, s.small["id"], "20.01"),
        200,
        30,
    ),
    (
        "create-twice-same-invoice-above-balance",
        lambda s: _create(
            s, "30.00", (s.small["id"], "15.00"), (s.small["invoiceNumber"], "15.00")
        ),
        200,
        30,
    ),
    # The applications are more than the payment (its unapplied amount).
    (
        "create-applications-above-amount",
        lambda s: _create(s, "50.00", (s.posted["id"], "50.01")),
        200,
        30,
    ),
    ("apply-above-unapplied", lambda s: _apply(s, s.unapplied, s.posted["id"], "50.01"), 200, 30),
    (
        "apply-above-unapplied-after-refund",
        lambda s: _apply(s, s.refunded, s.posted["id"], "20.01"),
        200,
        30,
    ),
    # Another account's invoice.
    (
        "create-to-another-accounts-invoice",
        lambda s: _create(s, "10.00", (s.foreign["id"], "10.00")),
        200,
        30,
    ),
    (
        "apply-to-another-accounts-invoice",
        lambda s: _apply(s, s.unapplied, s.foreign["id"], "10.00"),
        200,
        30,
    ),
    # The payment's currency is not the account's (nor its invoices').
    (
        "currency-mismatch",
        lambda s: _create(s, "10.00", (s.posted["id"], "10.00"), currency="EUR"),
        200,
        30,
    ),
    # Draft or Canceled invoice.
    ("create-to-draft-invoice", lambda s: _create(s, "10.00", (s.draft["id"], "5.00")), 200, 30),
    ("apply-to-draft-invoice", lambda s: _apply(s, s.unapplied, s.draft["id"], "5.00"), 200, 30),
    (
        "apply-to-canceled-invoice",
        lambda s: _apply(s, s.unapplied, s.canceled_invoice["id"], "5.00"),
        200,
        30,
    ),
    # One bad application refuses the whole request, the good one included.
    (
        "create-good-and-draft",
        lambda s: _create(s, "20.00", (s.posted["id"], "5.00"), (s.draft["id"], "5.00")),
        200,
        30,
    ),
    # Debit memos: above the balance, Draft, another account's, unknown.
    (
        "apply-above-debit-memo-balance",
        lambda s: _apply_debit(s, s.unapplied, s.debit["id"], "30.01"),
        200,
        30,
    ),
    (
        "apply-to-draft-debit-memo",
        lambda s: _apply_debit(s, s.unapplied, s.draft_debit["id"], "1.00"),
        200,
        30,
    ),
    (
        "apply-to-another-accounts-debit-memo",
        lambda s: _apply_debit(s, s.unapplied, s.foreign_debit["id"], "1.00"),
        200,
        30,
    ),
    (
        "apply-unknown-debit-memo",
        lambda s: _apply_debit(s, s.unapplied, "DM99999999", "1.00"),
        404,
        40,
    ),
    (
        "create-debit-memo-above-unapplied",
        lambda s: (
            "POST",
            "/v1/payments",
            {
                **payment_body(s.account, "10.00"),
                "debitMemos": [{"debitMemoNumber": s.debit["number"], "amount": "10.01"}],
            },
        ),
        200,
        30,
    ),
    # Unapply more than applied.
    ("unapply-above-applied", lambda s: _unapply(s, s.applied, s.posted["id"], "30.01"), 200, 30),
    ("unapply-never-applied", lambda s: _unapply(s, s.unapplied, s.posted["id"], "0.01"), 200, 30),
    # Refund above the unapplied amount (10.00 of `applied` is unapplied).
    ("refund-above-unapplied", lambda s: _refund(s.applied, "10.01"), 200, 30),
    ("refund-above-unapplied-after-refund", lambda s: _refund(s.refunded, "20.01"), 200, 30),
    # A canceled payment takes no refund, no application, no second cancel.
    ("refund-canceled-payment", lambda s: _refund(s.canceled, "1.00"), 200, 30),
    ("apply-canceled-payment", lambda s: _apply(s, s.canceled, s.posted["id"], "1.00"), 200, 30),
    (
        "unapply-canceled-payment",
        lambda s: _unapply(s, s.canceled, s.posted["id"], "1.00"),
        200,
        30,
    ),
    (
        "cancel-canceled-payment",
        lambda s: ("PUT", f"/v1/payments/{s.canceled['id']}/cancel", None),
        200,
        30,
    ),
    # A refunded payment cannot be canceled.
    (
        "cancel-refunded-payment",
        lambda s: ("PUT", f"/v1/payments/{s.refunded['id']}/cancel", None),
        200,
        30,
    ),
    # No gateway: Electronic payments and refunds are refused.
    ("electronic-payment", lambda s: _create(s, "10.00", type="Electronic"), 200, 30),
    ("electronic-refund", lambda s: _refund(s.unapplied, "1.00", "Electronic"), 200, 30),
    # Amounts: zero, negative, more decimals than USD has.
    ("amount-zero", lambda s: _create(s, "0"), 400, 20),
    ("amount-negative", lambda s: _create(s, "-10.00"), 400, 20),
    ("amount-three-decimals", lambda s: _create(s, "10.001"), 400, 20),
    ("application-zero", lambda s: _apply(s, s.unapplied, s.posted["id"], "0"), 400, 20),
    ("application-negative", lambda s: _apply(s, s.unapplied, s.posted["id"], "-1.00"), 400, 20),
    (
        "application-three-decimals",
        lambda s: _create(s, "10.00", (s.posted["id"], "1.005")),
        400,
        20,
    ),
    ("unapply-negative", lambda s: _unapply(s, s.applied, s.posted["id"], "-1.00"), 400, 20),
    ("refund-zero", lambda s: _refund(s.unapplied, "0"), 400, 20),
    ("refund-three-decimals", lambda s: _refund(s.unapplied, "1.001"), 400, 20),
    # Unknown keys.
    ("create-unknown-invoice", lambda s: _create(s, "10.00", ("INV99999999", "1.00")), 404, 40),
    ("apply-unknown-invoice", lambda s: _apply(s, s.unapplied, "INV99999999", "1.00"), 404, 40),
    (
        "apply-unknown-payment",
        lambda s: (
            "PUT",
            "/v1/payments/P-99999999/apply",
            {"invoices": [{"invoiceId": s.posted["id"], "amount": "1.00"}]},
        ),
        404,
        40,
    ),
    (
        "refund-unknown-payment",
        lambda s: (
            "POST",
            "/v1/payments/P-99999999/refunds",
            {"type": "External", "totalAmount": "1.00"},
        ),
        404,
        40,
    ),
    ("cancel-unknown-payment", lambda s: ("PUT", "/v1/payments/P-99999999/cancel", None), 404, 40),
    (
        "create-unknown-account",
        lambda s: (
            "POST",
            "/v1/payments",
            {"accountNumber": "A99999999", "amount": "1.00", "currency": "USD", "type": "External"},
        ),
        404,
        40,
    ),
    # Missing fields.
    (
        "create-without-account",
        lambda s: (
            "POST",
            "/v1/payments",
            {"amount": "1.00", "currency": "USD", "type": "External"},
        ),
        400,
        22,
    ),
    ("apply-nothing", lambda s: ("PUT", f"/v1/payments/{s.unapplied['id']}/apply", {}), 400, 22),
]


@PARTNER
@pytest.mark.parametrize(
    ("build", "http_status", "category"), [r[1:] for r in RULES], ids=[r[0] for r in RULES]
)
async def test_refused_request_writes_nothing(
    api: ApiClient,
    engine: AsyncEngine,
    partner: bool,
    build: Callable[[Ledger], Request],
    http_status: int,
    category: int,
) -> None:
    ledger = await make_ledger(api, partner=partner)
    before = await ledger_state(api, engine)
    method, path, body = build(ledger)

    status, payload = await api.call(method, path, body, expect=None)

    assert status == http_status, payload
    reasons = assert_envelope(payload, category)
    assert reasons[0]["message"], reasons
    assert await ledger_state(api, engine) == before
    for payment in (ledger.unapplied, ledger.applied, ledger.canceled, ledger.refunded):
        checked(await get_payment(api, payment["id"]))
    assert await invoice_balance(api, ledger.posted["id"]) == Decimal("70.00")
    assert await invoice_balance(api, ledger.small["id"]) == Decimal("20.00")


async def test_unposting_an_invoice_with_a_payment_applied_is_refused(
    api: ApiClient, engine: AsyncEngine
) -> None:
    ledger = await make_ledger(api, partner=False)
    before = await ledger_state(api, engine)

    _, refused = await api.call("PUT", f"/v1/invoices/{ledger.posted['id']}/unpost")

    assert_envelope(refused, 30)
    assert await ledger_state(api, engine) == before
    assert (await api.ok("GET", f"/v1/invoices/{ledger.posted['id']}"))["status"] == "Posted"
    # Once the payment is unapplied, the invoice can be unposted.
    await apply(api, ledger.applied["id"], (ledger.posted["id"], "30.00"), unapply=True)
    unposted = await api.ok("PUT", f"/v1/invoices/{ledger.posted['id']}/unpost")
    assert unposted["invoice"]["status"] == "Draft"
    await assert_exact(api, engine, ledger.account)
