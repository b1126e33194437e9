"""Accounts, posted invoices and account metrics through the official zuora-sdk, shared by the
SDK payment, document-detail and write-off tests."""

from datetime import date
from decimal import Decimal

from zuora_sdk import (
    CreateAccountContact,
    CreateAccountRequest,
    CreateInvoiceItem,
    CreateInvoiceRequest,
)
from zuora_sdk.zuora_client import ZuoraClient


def money(value: object) -> Decimal:
    """An SDK amount (float or str) as the exact Decimal it was on the wire."""
    return Decimal(str(value))


def new_account(zc: ZuoraClient, *, partner: bool) -> tuple[str, str]:
    created = zc.accounts_api().create_account(
        CreateAccountRequest(
            name="Payer",
            currency="USD",
            bill_to_contact=CreateAccountContact(first_name="Ada", last_name="Lovelace"),
            partner_account=partner,
        )
    )
    assert created.success is True, created
    return created.account_id, created.account_number


def posted_invoice(zc: ZuoraClient, account_id: str, amount: str) -> object:
    invoice = zc.invoices_api().create_standalone_invoice(
        CreateInvoiceRequest(
            account_id=account_id,
            invoice_date=date(2026, 11, 1),
            status="Posted",
            invoice_items=[
                CreateInvoiceItem(
                    amount=Decimal(amount), service_start_date=date(2026, 11, 1), charge_name="Fee"
                )
            ],
        )
    )
    assert invoice.success is True, invoice
    assert invoice.status == "Posted"
    return invoice


def metrics_of(zc: ZuoraClient, account_key: str) -> dict[str, Decimal]:
    m = zc.accounts_api().get_account(account_key).metrics
    return {
        "tib": money(m.total_invoice_balance),
        "tdmb": money(m.total_debit_memo_balance),
        "upa": money(m.unapplied_payment_amount),
        "ucma": money(m.unapplied_credit_memo_amount),
        "balance": money(m.balance),
    }
