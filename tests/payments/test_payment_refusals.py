"""Payments and refunds (API doc §3.11, §4.3): the rules. Every refused request answers in the
envelope and writes nothing, on a ledger of documents in every state a rule needs."""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import ApiClient, assert_envelope
from tests.payments.payment_support import (
    PARTNER,
    Account,
    apply,
    assert_exact,
    checked,
    get_payment,
    invoice_balance,
    new_account,
    pay,
    payment_body,
    post_debit_memo,
    post_invoice,
)

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
