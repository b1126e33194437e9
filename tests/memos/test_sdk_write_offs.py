"""Invoice and debit-memo write-offs through the official Zuora Python SDK (zuora-sdk) against
the live server over real HTTP: the credit memo each creates, the balances and metrics it moves,
and the refusals that write nothing."""

from datetime import date
from decimal import Decimal

import pytest
from zuora_sdk import (
    CreateDebitMemoFromInvoiceRequest,
    CreateInvoiceItem,
    CreateInvoiceRequest,
    CreatePaymentInvoiceApplication,
    CreatePaymentRequest,
    DebitMemoItemFromInvoiceItemRequest,
    UnapplyCreditMemoRequest,
    UnapplyCreditMemoToInvoice,
    WriteOffDebitMemoRequest,
    WriteOffInvoiceRequest,
)
from zuora_sdk.exceptions import ApiException
from zuora_sdk.zuora_client import ZuoraClient

from tests.sdk_payment_support import metrics_of, money, new_account, posted_invoice

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:zuora_sdk")


def test_an_invoice_is_written_off_by_a_posted_applied_credit_memo(zc: ZuoraClient) -> None:
    account_id, account_number = new_account(zc, partner=False)
    invoice = posted_invoice(zc, account_id, "100.00")
    paid = zc.payments_api().create_payment(
        CreatePaymentRequest(
            account_id=account_id,
            amount=30.0,
            currency="USD",
            type="External",
            invoices=[CreatePaymentInvoiceApplication(invoice_id=invoice.id, amount=30.0)],
        )
    )
    assert paid.success is True, paid
    invoices = zc.invoices_api()

    written = invoices.write_off_invoice(
        invoice.invoice_number,
        WriteOffInvoiceRequest(comment="uncollectable", memo_date=date(2026, 11, 20)),
    )
    assert written.success is True, written
    memo = zc.credit_memos_api().get_credit_memo(written.credit_memo.id)
    assert memo.status == "Posted"
    assert memo.reason_code == "Write-off"
    assert memo.comment == "uncollectable"
    assert str(memo.credit_memo_date) == "2026-11-20"
    assert memo.referred_invoice_id == invoice.id
    assert money(memo.amount) == Decimal("70")
    assert money(memo.applied_amount) == Decimal("70")
    assert money(memo.unapplied_amount) == Decimal("0")

    after = invoices.get_invoice(invoice.id)
    assert money(after.balance) == Decimal("0")
    assert money(after.credit_memo_amount) == Decimal("70")
    assert metrics_of(zc, account_number) == {
        "tib": Decimal("0"),
        "tdmb": Decimal("0"),
        "upa": Decimal("0"),
        "ucma": Decimal("0"),
        "balance": Decimal("0"),
    }

    # Nothing is left to write off; the refusal writes no second memo.
    again = invoices.write_off_invoice(invoice.id, WriteOffInvoiceRequest())
    assert again.success is False
    assert "no balance to write off" in again.reasons[0].message
    listed = zc.credit_memos_api().get_credit_memos(account_id=account_id)
    assert [m.id for m in listed.creditmemos] == [memo.id]

    # Unapplying the write-off memo brings the balance back.
    zc.credit_memos_api().unapply_credit_memo(
        memo.id,
        UnapplyCreditMemoRequest(
            invoices=[UnapplyCreditMemoToInvoice(invoice_id=invoice.id, amount=70.0)]
        ),
    )
    assert money(invoices.get_invoice(invoice.id).balance) == Decimal("70")


def test_part_of_an_invoice_is_written_off_across_its_items(zc: ZuoraClient) -> None:
    account_id, account_number = new_account(zc, partner=True)
    invoice = zc.invoices_api().create_standalone_invoice(
        CreateInvoiceRequest(
            account_id=account_id,
            invoice_date=date(2026, 11, 1),
            status="Posted",
            invoice_items=[
                CreateInvoiceItem(
                    amount=Decimal(amount), service_start_date=date(2026, 11, 1), charge_name=name
                )
                for name, amount in (("Seats", "10.00"), ("Support", "20.00"))
            ],
        )
    )
    written = zc.invoices_api().write_off_invoice(invoice.id, WriteOffInvoiceRequest(amount=15.5))
    assert written.success is True, written
    items = zc.credit_memos_api().get_credit_memo_items(written.credit_memo.id).items
    credited = sorted(money(item.amount) for item in items)
    # Items are credited in line order, each up to its own amount.
    assert credited == [Decimal("5.5"), Decimal("10")]
    assert money(zc.invoices_api().get_invoice(invoice.id).balance) == Decimal("14.5")
    account = zc.accounts_api().get_account(account_number)
    assert account.basic_info.partner_account is True


def test_a_debit_memo_is_written_off(zc: ZuoraClient) -> None:
    account_id, account_number = new_account(zc, partner=False)
    invoice = posted_invoice(zc, account_id, "40.00")
    items = zc.invoices_api().get_invoice_items(invoice.id)
    debit = zc.debit_memos_api()
    debit_memo = debit.create_debit_memo_from_invoice(
        invoice.id,
        CreateDebitMemoFromInvoiceRequest(
            auto_post=True,
            items=[
                DebitMemoItemFromInvoiceItemRequest(
                    invoice_item_id=items.invoice_items[0].id, amount=12.0, sku_name="Late fee"
                )
            ],
        ),
    )
    assert debit_memo.success is True, debit_memo
    written = debit.write_off_debit_memo(
        debit_memo.number, WriteOffDebitMemoRequest(reason_code="Bad debt")
    )
    assert written.success is True, written
    memo = zc.credit_memos_api().get_credit_memo(written.credit_memo.id)
    assert memo.status == "Posted"
    assert memo.reason_code == "Bad debt"
    assert money(memo.applied_amount) == Decimal("12")
    assert money(debit.get_debit_memo(debit_memo.id).balance) == Decimal("0")
    assert metrics_of(zc, account_number)["tdmb"] == Decimal("0")
    assert metrics_of(zc, account_number)["balance"] == Decimal("40")


def test_refused_write_offs_write_nothing(zc: ZuoraClient) -> None:
    account_id, _ = new_account(zc, partner=False)
    invoice = posted_invoice(zc, account_id, "25.00")
    invoices = zc.invoices_api()
    too_much = invoices.write_off_invoice(invoice.id, WriteOffInvoiceRequest(amount=25.01))
    assert too_much.success is False
    assert "exceeds the balance" in too_much.reasons[0].message
    for bad, field in ((WriteOffInvoiceRequest(amount=-1.0), "amount"),):
        with pytest.raises(ApiException) as refused:
            invoices.write_off_invoice(invoice.id, bad)
        assert field in str(refused.value.body)
    with pytest.raises(ApiException) as unknown:
        invoices.write_off_invoice("INV-none", WriteOffInvoiceRequest())
    assert "Cannot find" in str(unknown.value.body)
    with pytest.raises(ApiException) as unknown_memo:
        zc.debit_memos_api().write_off_debit_memo("DM-none", WriteOffDebitMemoRequest())
    assert "Cannot find" in str(unknown_memo.value.body)
    assert zc.credit_memos_api().get_credit_memos(account_id=account_id).creditmemos == []
    assert money(invoices.get_invoice(invoice.id).balance) == Decimal("25")
