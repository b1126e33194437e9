"""Payments over the v1 API as the payment tests make and check them: accounts, posted invoices
and debit memos, payment bodies, applications, balances, and the account metrics each row of
§4.3 moves."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.metrics import service as metrics
from tests.helpers import ApiClient, invoice_body

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
