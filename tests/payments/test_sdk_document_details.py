"""Application parts of payments, credit memos, invoices and debit memos through the official
Zuora Python SDK (zuora-sdk) against the live server over real HTTP."""

from datetime import date
from decimal import Decimal

import pytest
from zuora_sdk import (
    ApplyCreditMemoRequest,
    ApplyCreditMemoToInvoice,
    ApplyPaymentInvoiceApplication,
    ApplyPaymentRequest,
    CreateCreditMemoFromInvoiceRequest,
    CreateDebitMemoFromInvoiceRequest,
    CreatePaymentInvoiceApplication,
    CreatePaymentRequest,
    CreateRefundRequest,
    CreditMemoItemFromInvoiceItem,
    DebitMemoItemFromInvoiceItemRequest,
    UnapplyPaymentInvoiceApplication,
    UnapplyPaymentRequest,
    UpdateCreditMemoRequest,
    UpdateDebitMemoRequest,
    UpdateInvoiceRequest,
    UpdatePaymentRequest,
    UpdateRefundRequest,
)
from zuora_sdk.exceptions import ApiException
from zuora_sdk.zuora_client import ZuoraClient

from tests.sdk_payment_support import money, new_account, posted_invoice

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:zuora_sdk")


def test_parts_follow_applies_and_unapplies(zc: ZuoraClient) -> None:
    account_id, _ = new_account(zc, partner=False)
    first = posted_invoice(zc, account_id, "100.00")
    second = posted_invoice(zc, account_id, "30.00")
    payments = zc.payments_api()
    payment = payments.create_payment(
        CreatePaymentRequest(
            account_id=account_id,
            amount=70.0,
            currency="USD",
            type="External",
            invoices=[CreatePaymentInvoiceApplication(invoice_id=first.id, amount=40.0)],
        )
    )
    assert payment.success is True, payment
    # A second apply to the same invoice grows the same part; one to another invoice adds one.
    payments.apply_payment(
        payment.id,
        ApplyPaymentRequest(
            invoices=[
                ApplyPaymentInvoiceApplication(invoice_id=first.id, amount=10.0),
                ApplyPaymentInvoiceApplication(invoice_id=second.id, amount=20.0),
            ]
        ),
    )
    listed = payments.get_payment_parts(payment.number)
    assert listed.success is True
    by_invoice = {part.invoice_id: part for part in listed.parts}
    assert set(by_invoice) == {first.id, second.id}
    assert money(by_invoice[first.id].amount) == Decimal("50")
    assert money(by_invoice[second.id].amount) == Decimal("20")
    assert all(part.debit_memo_id is None for part in listed.parts)

    one = payments.get_payment_part(by_invoice[second.id].id, payment.id)
    assert one.success is True
    assert one.payment_part.invoice_id == second.id
    assert money(one.payment_part.amount) == Decimal("20")

    # Unapplied in full, the part is gone; the other part keeps its id.
    payments.unapply_payment(
        payment.id,
        UnapplyPaymentRequest(
            invoices=[UnapplyPaymentInvoiceApplication(invoice_id=second.id, amount=20.0)]
        ),
    )
    after = payments.get_payment_parts(payment.id).parts
    assert [(part.id, part.invoice_id) for part in after] == [(by_invoice[first.id].id, first.id)]
    with pytest.raises(ApiException) as missing:
        payments.get_payment_part(by_invoice[second.id].id, payment.id)
    assert "Cannot find part" in str(missing.value.body)

    # The invoice's side: what each source has on it.
    items = zc.invoices_api().get_invoice_items(first.id)
    memos = zc.credit_memos_api()
    memo = memos.create_credit_memo_from_invoice(
        first.id,
        CreateCreditMemoFromInvoiceRequest(
            items=[
                CreditMemoItemFromInvoiceItem(
                    invoice_item_id=items.invoice_items[0].id, amount=8.0, sku_name="Credit"
                )
            ]
        ),
    )
    memos.post_credit_memo(memo.id)
    memos.apply_credit_memo(
        memo.number,
        ApplyCreditMemoRequest(
            invoices=[ApplyCreditMemoToInvoice(invoice_id=first.id, amount=8.0)]
        ),
    )
    memo_parts = memos.get_credit_memo_parts(memo.number)
    assert [(part.invoice_id, money(part.amount)) for part in memo_parts.parts] == [
        (first.id, Decimal("8"))
    ]
    memo_part = memos.get_credit_memo_part(memo_parts.parts[0].id, memo.id)
    assert memo_part.invoice_id == first.id
    assert money(memo_part.amount) == Decimal("8")

    applied = zc.invoices_api().get_invoice_application_parts(first.invoice_number)
    assert applied.success is True
    found = {
        (part.payment_id, part.credit_memo_id): money(part.applied_amount)
        for part in applied.application_parts
    }
    assert found == {(payment.id, None): Decimal("50"), (None, memo.id): Decimal("8")}
    untouched = zc.invoices_api().get_invoice_application_parts(second.id)
    assert untouched.application_parts == []


def test_parts_of_an_unknown_document_are_not_found(zc: ZuoraClient) -> None:
    for call in (
        lambda: zc.payments_api().get_payment_parts("P-none"),
        lambda: zc.credit_memos_api().get_credit_memo_parts("CM-none"),
        lambda: zc.invoices_api().get_invoice_application_parts("INV-none"),
        lambda: zc.debit_memos_api().get_debit_memo_application_parts("DM-none"),
    ):
        with pytest.raises(ApiException) as failed:
            call()
        assert "Cannot find" in str(failed.value.body)


def test_one_memo_item_by_its_id(zc: ZuoraClient) -> None:
    account_id, _ = new_account(zc, partner=False)
    invoice = posted_invoice(zc, account_id, "40.00")
    items = zc.invoices_api().get_invoice_items(invoice.id)
    memos = zc.credit_memos_api()
    memo = memos.create_credit_memo_from_invoice(
        invoice.id,
        CreateCreditMemoFromInvoiceRequest(
            items=[
                CreditMemoItemFromInvoiceItem(
                    invoice_item_id=items.invoice_items[0].id, amount=12.5, sku_name="Credit"
                )
            ]
        ),
    )
    listed = memos.get_credit_memo_items(memo.id)
    item = memos.get_credit_memo_item(memo.number, listed.items[0].id)
    assert item.success is True
    assert item.id == listed.items[0].id
    assert money(item.amount) == Decimal("12.5")
    assert item.source_item_id == items.invoice_items[0].id
    with pytest.raises(ApiException) as missing:
        memos.get_credit_memo_item(memo.id, "no-such-item")
    assert "Cannot find credit memo item" in str(missing.value.body)

    debit = zc.debit_memos_api()
    debit_memo = debit.create_debit_memo_from_invoice(
        invoice.id,
        CreateDebitMemoFromInvoiceRequest(
            items=[
                DebitMemoItemFromInvoiceItemRequest(
                    invoice_item_id=items.invoice_items[0].id, amount=7.0, sku_name="Debit"
                )
            ]
        ),
    )
    debit_items = debit.get_debit_memo_items(debit_memo.id)
    one = debit.get_debit_memo_item(debit_memo.number, debit_items.items[0].id)
    assert money(one.amount) == Decimal("7")
    # An item of another memo is not this memo's item.
    with pytest.raises(ApiException) as elsewhere:
        debit.get_debit_memo_item(debit_memo.id, listed.items[0].id)
    assert "Cannot find debit memo item" in str(elsewhere.value.body)


def test_update_payment_and_refund_and_refund_parts(zc: ZuoraClient) -> None:
    account_id, _ = new_account(zc, partner=False)
    payments = zc.payments_api()
    payment = payments.create_payment(
        CreatePaymentRequest(
            account_id=account_id,
            amount=25.0,
            currency="USD",
            type="External",
            comment="first",
            reference_id="REF-1",
        )
    )
    updated = payments.update_payment(payment.id, UpdatePaymentRequest(comment="checked"))
    assert updated.success is True, updated
    assert updated.comment == "checked"
    assert updated.reference_id == "REF-1"  # not sent, so kept
    assert money(updated.amount) == Decimal("25")
    assert payments.get_payment(payment.number).comment == "checked"

    refund = payments.create_refund_payment(
        payment.id, CreateRefundRequest(type="External", total_amount=10.0, method_type="Check")
    )
    refunds = zc.refunds_api()
    changed = refunds.update_refund(
        refund.id, UpdateRefundRequest(reference_id="BANK-7", reason_code="Standard Refund")
    )
    assert changed.success is True, changed
    assert changed.reference_id == "BANK-7"
    assert refunds.get_refund(refund.number).reason_code == "Standard Refund"

    refund_parts = refunds.get_refund_parts(refund.number)
    ((part_id, paid_from, amount),) = [
        (part.id, part.payment_id, money(part.amount)) for part in refund_parts.parts
    ]
    assert (paid_from, amount) == (payment.id, Decimal("10"))
    one = refunds.get_refund_part(part_id, refund.id)
    assert one.payment_id == payment.id and one.credit_memo_id is None

    # A value beyond the field's limit is refused and writes nothing.
    with pytest.raises(ApiException) as too_long:
        payments.update_payment(payment.id, UpdatePaymentRequest(reference_id="x" * 101))
    assert "referenceId" in str(too_long.value.body)
    assert payments.get_payment(payment.id).reference_id == "REF-1"


def test_update_invoice_and_memos(zc: ZuoraClient) -> None:
    account_id, _ = new_account(zc, partner=False)
    invoice = posted_invoice(zc, account_id, "60.00")
    invoices = zc.invoices_api()
    updated = invoices.update_invoice(
        invoice.id, UpdateInvoiceRequest(comments="net 45", due_date=date(2026, 12, 16))
    )
    assert updated.success is True, updated
    assert str(updated.due_date) == "2026-12-16"
    assert invoices.get_invoice(invoice.invoice_number).comments == "net 45"
    assert money(invoices.get_invoice(invoice.id).balance) == Decimal("60")

    # Posted: the invoice date stays; a due date before it is refused; neither writes anything.
    # (A business rule is answered with HTTP 200 and `success: false`, an invalid value with 400.)
    dated = invoices.update_invoice(
        invoice.id, UpdateInvoiceRequest(invoice_date=date(2026, 11, 2))
    )
    assert dated.success is False
    assert "invoiceDate" in dated.reasons[0].message
    with pytest.raises(ApiException) as early:
        invoices.update_invoice(invoice.id, UpdateInvoiceRequest(due_date=date(2026, 10, 1)))
    assert "dueDate" in str(early.value.body)
    assert str(invoices.get_invoice(invoice.id).due_date) == "2026-12-16"

    items = invoices.get_invoice_items(invoice.id)
    memos = zc.credit_memos_api()
    memo = memos.create_credit_memo_from_invoice(
        invoice.id,
        CreateCreditMemoFromInvoiceRequest(
            items=[
                CreditMemoItemFromInvoiceItem(
                    invoice_item_id=items.invoice_items[0].id, amount=5.0, sku_name="Credit"
                )
            ]
        ),
    )
    changed = memos.update_credit_memo(
        memo.number, UpdateCreditMemoRequest(comment="goodwill", reason_code="Correcting invoice")
    )
    assert changed.success is True, changed
    assert changed.comment == "goodwill"
    assert memos.get_credit_memo(memo.id).reason_code == "Correcting invoice"
    assert money(changed.amount) == Decimal("5")

    debit = zc.debit_memos_api()
    debit_memo = debit.create_debit_memo_from_invoice(
        invoice.id,
        CreateDebitMemoFromInvoiceRequest(
            items=[
                DebitMemoItemFromInvoiceItemRequest(
                    invoice_item_id=items.invoice_items[0].id, amount=3.0, sku_name="Debit"
                )
            ]
        ),
    )
    moved = debit.update_debit_memo(
        debit_memo.id, UpdateDebitMemoRequest(due_date=date(2027, 1, 31), comment="later")
    )
    assert moved.success is True, moved
    assert str(moved.due_date) == "2027-01-31"
    assert debit.get_debit_memo(debit_memo.number).comment == "later"
