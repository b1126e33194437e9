"""Payments, refunds and credit memos through the official Zuora Python SDK (zuora-sdk) against
the live server over real HTTP, read back as account metrics through the SDK."""

from decimal import Decimal

import httpx
import pytest
from zuora_sdk import (
    ApplyCreditMemoRequest,
    ApplyCreditMemoToInvoice,
    ApplyPaymentInvoiceApplication,
    ApplyPaymentRequest,
    CreateCreditMemoFromInvoiceRequest,
    CreatePaymentInvoiceApplication,
    CreatePaymentRequest,
    CreateRefundRequest,
    CreditMemoItemFromInvoiceItem,
    UnapplyPaymentInvoiceApplication,
    UnapplyPaymentRequest,
)
from zuora_sdk.exceptions import ApiException
from zuora_sdk.zuora_client import ZuoraClient

from tests.sdk_payment_support import metrics_of, money, new_account, posted_invoice

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:zuora_sdk")


def assert_payment(payment: object) -> None:
    applied = money(payment.applied_amount)  # type: ignore[attr-defined]
    unapplied = money(payment.unapplied_amount)  # type: ignore[attr-defined]
    refunded = money(payment.refund_amount)  # type: ignore[attr-defined]
    assert applied + unapplied + refunded == money(payment.amount)  # type: ignore[attr-defined]


def refresh(zc: ZuoraClient, live_server: str, account_number: str) -> None:
    response = httpx.post(
        f"{live_server}/v1/partnerbill/accounts/{account_number}/refresh-metrics",
        headers={"Authorization": f"Bearer {zc.token['access_token']}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True


def test_payment_apply_refund_and_credit_memo_on_a_partner_account(
    zc: ZuoraClient, live_server: str
) -> None:
    account_id, account_number = new_account(zc, partner=True)
    invoice = posted_invoice(zc, account_id, "100.00")
    payments = zc.payments_api()

    payment = payments.create_payment(
        CreatePaymentRequest(
            account_id=account_id,
            amount=60.0,
            currency="USD",
            type="External",
            effective_date="2026-11-15",
            payment_method_type="Check",
            invoices=[CreatePaymentInvoiceApplication(invoice_id=invoice.id, amount=40.0)],
        )
    )
    assert payment.success is True, payment
    assert payment.status == "Processed"
    assert payment.account_id == account_id
    assert money(payment.applied_amount) == Decimal("40")
    assert money(payment.unapplied_amount) == Decimal("20")
    assert_payment(payment)

    applied = payments.apply_payment(
        payment.number,
        ApplyPaymentRequest(
            invoices=[
                ApplyPaymentInvoiceApplication(invoice_number=invoice.invoice_number, amount=15.0)
            ]
        ),
    )
    assert applied.success is True, applied
    assert money(applied.applied_amount) == Decimal("55")
    assert money(applied.unapplied_amount) == Decimal("5")
    assert_payment(applied)

    refund = payments.create_refund_payment(
        payment.id, CreateRefundRequest(type="External", total_amount=5.0, method_type="Check")
    )
    assert refund.success is True, refund
    assert refund.status == "Processed"
    assert refund.payment_id == payment.id
    assert money(refund.amount) == Decimal("5")

    read = payments.get_payment(payment.number)
    assert money(read.refund_amount) == Decimal("5")
    assert money(read.unapplied_amount) == 0
    assert_payment(read)

    # A credit memo from the invoice, posted, then applied to it.
    items = zc.invoices_api().get_invoice_items(invoice.id)
    memos = zc.credit_memos_api()
    memo = memos.create_credit_memo_from_invoice(
        invoice.id,
        CreateCreditMemoFromInvoiceRequest(
            items=[
                CreditMemoItemFromInvoiceItem(
                    invoice_item_id=items.invoice_items[0].id, amount=10.0, sku_name="Credit"
                )
            ]
        ),
    )
    assert memo.success is True, memo
    assert memo.status == "Draft"
    posted = memos.post_credit_memo(memo.id)
    assert posted.success is True and posted.status == "Posted", posted
    memo_applied = memos.apply_credit_memo(
        memo.id,
        ApplyCreditMemoRequest(
            invoices=[ApplyCreditMemoToInvoice(invoice_id=invoice.id, amount=10.0)]
        ),
    )
    assert memo_applied.success is True, memo_applied
    assert money(memo_applied.applied_amount) == Decimal("10")
    assert money(memo_applied.unapplied_amount) == 0

    fetched = zc.invoices_api().get_invoice(invoice.id)
    assert money(fetched.balance) == Decimal("35")
    # What settled it: 40 + 15 from the payment, 10 from the credit memo.
    assert money(fetched.payment_amount) == Decimal("55")
    assert money(fetched.credit_memo_amount) == Decimal("10")
    assert money(fetched.amount) == money(fetched.balance) + Decimal("65")

    # Partner account: the metrics wait for the refresh, then show every document exactly.
    assert metrics_of(zc, account_number)["tib"] == 0
    refresh(zc, live_server, account_number)
    assert metrics_of(zc, account_number) == {
        "tib": Decimal("35"),
        "tdmb": Decimal("0"),
        "upa": Decimal("0"),
        "ucma": Decimal("0"),
        "balance": Decimal("35"),
    }
    summary = zc.accounts_api().get_account_summary(account_number)
    assert str(summary.basic_info.last_payment_date).startswith("2026-11-15")
    assert money(summary.basic_info.last_payment_amount) == Decimal("60")


def test_unapply_and_cancel_on_a_non_partner_account(zc: ZuoraClient) -> None:
    account_id, account_number = new_account(zc, partner=False)
    invoice = posted_invoice(zc, account_id, "50.00")
    payments = zc.payments_api()

    payment = payments.create_payment(
        CreatePaymentRequest(
            account_number=account_number,
            amount=30.0,
            currency="USD",
            type="External",
            invoices=[CreatePaymentInvoiceApplication(invoice_id=invoice.id, amount=30.0)],
        )
    )
    assert payment.success is True, payment
    assert metrics_of(zc, account_id) == {
        "tib": Decimal("20"),
        "tdmb": Decimal("0"),
        "upa": Decimal("0"),
        "ucma": Decimal("0"),
        "balance": Decimal("20"),
    }

    unapplied = payments.unapply_payment(
        payment.id,
        UnapplyPaymentRequest(
            invoices=[UnapplyPaymentInvoiceApplication(invoice_id=invoice.id, amount=12.5)]
        ),
    )
    assert unapplied.success is True, unapplied
    assert money(unapplied.unapplied_amount) == Decimal("12.5")
    assert_payment(unapplied)
    found = metrics_of(zc, account_id)
    assert (found["tib"], found["upa"], found["balance"]) == (
        Decimal("32.5"),
        Decimal("12.5"),
        Decimal("20"),
    )
    assert money(zc.invoices_api().get_invoice(invoice.id).payment_amount) == Decimal("17.5")

    canceled = payments.cancel_payment(payment.number)
    assert canceled.success is True, canceled
    assert canceled.status == "Canceled"
    assert_payment(canceled)
    found = metrics_of(zc, account_id)
    assert (found["tib"], found["upa"], found["balance"]) == (Decimal("50"), 0, Decimal("50"))
    assert money(zc.invoices_api().get_invoice(invoice.id).payment_amount) == 0

    # Refused in the envelope: an Electronic payment (no gateway), HTTP 200 and success false.
    refused = payments.create_payment(
        CreatePaymentRequest(account_id=account_id, amount=1.0, currency="USD", type="Electronic")
    )
    assert refused.success is False
    # A zero amount is a request error: HTTP 400.
    with pytest.raises(ApiException) as bad:
        payments.create_payment(
            CreatePaymentRequest(account_id=account_id, amount=0, currency="USD", type="External")
        )
    assert bad.value.status == 400
