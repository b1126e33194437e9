"""`BillingDocumentsApi.get_billing_documents` through the official zuora-sdk against the live
server: an account's invoices, credit memos and debit memos in one list, sorted, filtered and
paged as Zuora does."""

from datetime import date
from decimal import Decimal

import httpx
import pytest
from zuora_sdk import (
    CreateAccountContact,
    CreateAccountRequest,
    CreateCreditMemoFromInvoiceRequest,
    CreateDebitMemoFromInvoiceRequest,
    CreateInvoiceItem,
    CreateInvoiceRequest,
    CreditMemoItemFromInvoiceItem,
    DebitMemoItemFromInvoiceItemRequest,
)
from zuora_sdk.exceptions import ApiException
from zuora_sdk.zuora_client import ZuoraClient

from tests.helpers import TenantCredentials

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:zuora_sdk")


def _invoice(zc: ZuoraClient, account_id: str, day: date, amount: str) -> object:
    invoice = zc.invoices_api().create_standalone_invoice(
        CreateInvoiceRequest(
            account_id=account_id,
            invoice_date=day,
            status="Posted",
            invoice_items=[
                CreateInvoiceItem(amount=amount, service_start_date=day, charge_name="Seat")
            ],
        )
    )
    assert invoice.success is True, invoice
    return invoice


def test_an_accounts_invoices_and_memos_in_one_sorted_filtered_paged_list(
    zc: ZuoraClient, live_server: str, sdk_credentials: TenantCredentials
) -> None:
    account = zc.accounts_api().create_account(
        CreateAccountRequest(
            name="Documents",
            currency="USD",
            bill_to_contact=CreateAccountContact(first_name="Ada", last_name="Lovelace"),
        )
    )
    assert account.success is True, account
    first = _invoice(zc, account.account_id, date(2026, 3, 1), "100.00")
    second = _invoice(zc, account.account_id, date(2026, 4, 1), "50.00")
    item_id = zc.invoices_api().get_invoice_items(first.id).invoice_items[0].id
    credit = zc.credit_memos_api().create_credit_memo_from_invoice(
        first.id,
        CreateCreditMemoFromInvoiceRequest(
            effective_date=date(2026, 3, 15),
            items=[CreditMemoItemFromInvoiceItem(invoice_item_id=item_id, amount=10.0)],
        ),
    )
    assert credit.success is True, credit
    debit = zc.debit_memos_api().create_debit_memo_from_invoice(
        second.id,
        CreateDebitMemoFromInvoiceRequest(
            effective_date=date(2026, 5, 1),
            items=[DebitMemoItemFromInvoiceItemRequest(amount=5.0, sku_name="fee")],
        ),
    )
    assert debit.success is True, debit
    documents = zc.billing_documents_api()

    # Default: documentDate descending.
    listed = documents.get_billing_documents(account_id=account.account_id)
    assert listed.success is True, listed
    assert [(d.document_type, d.document_number) for d in listed.documents] == [
        ("DebitMemo", debit.number),
        ("Invoice", second.invoice_number),
        ("CreditMemo", credit.number),
        ("Invoice", first.invoice_number),
    ]
    by_number = {d.document_number: d for d in listed.documents}
    assert str(by_number[first.invoice_number].document_date) == "2026-03-01"
    assert Decimal(str(by_number[first.invoice_number].amount)) == Decimal("100")
    assert Decimal(str(by_number[credit.number].balance)) == Decimal("10")
    assert by_number[credit.number].status == "Draft"
    assert all(d.account_id == account.account_id and d.currency == "USD" for d in listed.documents)
    assert listed.next_page is None

    # Ascending by date, by account number; then by type first.
    ascending = documents.get_billing_documents(
        account_number=account.account_number, sort="-documentDate"
    )
    assert [d.document_number for d in ascending.documents] == [
        first.invoice_number,
        credit.number,
        second.invoice_number,
        debit.number,
    ]
    by_type = documents.get_billing_documents(
        account_id=account.account_id, sort="-documentType,-documentDate"
    )
    assert [d.document_type for d in by_type.documents] == [
        "CreditMemo",
        "DebitMemo",
        "Invoice",
        "Invoice",
    ]
    assert by_type.documents[2].document_number == first.invoice_number

    # Filters: status and date.
    # (The SDK cannot send `status`: it calls `.value` on the string its validation made of the
    # enum it asks for, so this one filter goes over plain HTTP.)
    token = httpx.post(
        f"{live_server}/oauth/token",
        data={
            "client_id": sdk_credentials.client_id,
            "client_secret": sdk_credentials.client_secret,
            "grant_type": "client_credentials",
        },
    ).json()["access_token"]
    posted = httpx.get(
        f"{live_server}/v1/billing-documents",
        params={"accountId": account.account_id, "status": "Posted"},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert [d["documentNumber"] for d in posted["documents"]] == [
        second.invoice_number,
        first.invoice_number,
    ]
    on_day = documents.get_billing_documents(
        account_id=account.account_id, document_date=date(2026, 3, 15)
    )
    assert [d.document_number for d in on_day.documents] == [credit.number]

    # Paging: two pages of two, never overlapping.
    page_1 = documents.get_billing_documents(account_id=account.account_id, page_size=2)
    assert page_1.next_page and "page=2" in page_1.next_page
    page_2 = documents.get_billing_documents(account_id=account.account_id, page=2, page_size=2)
    assert [d.document_number for d in page_1.documents + page_2.documents] == [
        d.document_number for d in listed.documents
    ]
    assert page_2.next_page is None

    # The account is required; an unknown one lists nothing; a bad sort names the parameter.
    with pytest.raises(ApiException) as missing:
        documents.get_billing_documents()
    assert missing.value.status == 400 and "accountId" in str(missing.value.body)
    assert documents.get_billing_documents(account_number="A99999999").documents == []
    with pytest.raises(ApiException) as bad_sort:
        documents.get_billing_documents(account_id=account.account_id, sort="amount")
    assert bad_sort.value.status == 400 and "sort" in str(bad_sort.value.body)
