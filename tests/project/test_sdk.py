"""The official Zuora Python SDK (zuora-sdk 3.21.0) against the live server over real HTTP.

The SDK is synchronous, so these tests are too; their tenant is created with a short-lived engine
of their own (the session engine belongs to the event loop of the async tests).
"""

import uuid
from datetime import date
from decimal import Decimal

import httpx
import pytest
from zuora_sdk import (
    Configuration,
    CreateAccountContact,
    CreateAccountRequest,
    CreateInvoiceItem,
    CreateInvoiceRequest,
    PostAsyncInvoiceRequest,
)
from zuora_sdk.exceptions import ApiException, NotFoundException, UnauthorizedException
from zuora_sdk.zuora_client import ZuoraClient

from tests.helpers import TenantCredentials

# The SDK's generated models use pydantic APIs deprecated in v2; that is the SDK's business.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:zuora_sdk")


def _contact() -> CreateAccountContact:
    return CreateAccountContact(first_name="Ada", last_name="Lovelace")


def test_sdk_authenticates_against_our_token_endpoint(
    zc: ZuoraClient, live_server: str, sdk_credentials: TenantCredentials
) -> None:
    assert zc.configuration.host == live_server
    token = zc.token["access_token"]
    assert isinstance(token, str) and token
    assert zc.api_client.default_headers["Authorization"] == f"Bearer {token}"
    # The token names the SDK client's tenant.
    response = httpx.get(
        f"{live_server}/v1/partnerbill/settings", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    assert len(sdk_credentials.client_id) == 36
    assert len(sdk_credentials.client_secret) <= 42


def test_partner_account_and_invoice_lifecycle_through_the_sdk(
    zc: ZuoraClient, live_server: str
) -> None:
    accounts = zc.accounts_api()
    invoices = zc.invoices_api()
    key = f"sdk-create-{uuid.uuid4().hex}"
    request = CreateAccountRequest(
        name="Reseller One",
        currency="USD",
        bill_cycle_day=1,
        auto_pay=False,
        bill_to_contact=_contact(),
        partner_account=True,
    )
    created = accounts.create_account(request, idempotency_key=key)
    assert created.success is True, created
    assert created.account_id and created.account_number
    # The same idempotency key replays the same account.
    again = accounts.create_account(request, idempotency_key=key)
    assert again.account_id == created.account_id
    assert again.account_number == created.account_number

    account = accounts.get_account(created.account_number)
    assert account.success is True
    assert account.basic_info.id == created.account_id
    assert account.basic_info.name == "Reseller One"
    assert account.basic_info.partner_account is True
    assert account.billing_and_payment.bill_cycle_day == 1
    assert account.billing_and_payment.currency == "USD"
    assert Decimal(str(account.metrics.total_invoice_balance)) == 0
    assert Decimal(str(account.metrics.balance)) == 0

    summary = accounts.get_account_summary(created.account_id)
    assert summary.success is True
    assert summary.basic_info.id == created.account_id
    assert summary.basic_info.account_number == created.account_number
    assert summary.invoices == []

    invoice = invoices.create_standalone_invoice(
        CreateInvoiceRequest(
            account_number=created.account_number,
            invoice_date=date(2026, 11, 1),
            invoice_items=[
                CreateInvoiceItem(
                    amount=Decimal("12.50"),
                    service_start_date=date(2026, 11, 1),
                    charge_name="Seats",
                )
            ],
        )
    )
    assert invoice.success is True, invoice
    assert invoice.status == "Draft"
    assert Decimal(str(invoice.amount)) == Decimal("12.50")
    assert invoice.account_id == created.account_id
    assert invoice.invoice_number

    posted = invoices.post_invoice(invoice.invoice_number, PostAsyncInvoiceRequest())
    assert posted.success is True, posted

    fetched = invoices.get_invoice(invoice.id)
    assert fetched.success is True
    assert fetched.status == "Posted"
    assert fetched.invoice_number == invoice.invoice_number
    assert Decimal(str(fetched.amount)) == Decimal("12.50")
    assert Decimal(str(fetched.balance)) == Decimal("12.50")

    items = invoices.get_invoice_items(invoice.invoice_number)
    assert items.success is True
    assert len(items.invoice_items) == 1
    assert Decimal(str(items.invoice_items[0].charge_amount)) == Decimal("12.50")
    assert items.invoice_items[0].charge_name == "Seats"

    # A partner account's metrics wait for the refresh.
    before = accounts.get_account(created.account_number)
    assert Decimal(str(before.metrics.total_invoice_balance)) == 0

    token = zc.token["access_token"]
    refreshed = httpx.post(
        f"{live_server}/v1/partnerbill/accounts/{created.account_number}/refresh-metrics",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["success"] is True
    assert refreshed.json()["foldedChanges"] >= 1

    after = accounts.get_account(created.account_number)
    assert after.basic_info.last_metrics_update is not None
    assert after.metrics.total_invoice_balance == 12.5
    assert Decimal(str(after.metrics.total_invoice_balance)) == Decimal("12.5")
    assert Decimal(str(after.metrics.balance)) == Decimal("12.5")

    summary = accounts.get_account_summary(created.account_number)
    assert summary.basic_info.last_invoice_date is not None
    assert str(summary.basic_info.last_invoice_date).startswith("2026-11-01")
    assert [i.invoice_number for i in summary.invoices] == [invoice.invoice_number]


def test_non_partner_account_has_no_last_metrics_update(zc: ZuoraClient) -> None:
    accounts = zc.accounts_api()
    created = accounts.create_account(
        CreateAccountRequest(name="Direct", currency="EUR", bill_to_contact=_contact())
    )
    assert created.success is True, created
    account = accounts.get_account(created.account_id)
    assert account.basic_info.partner_account is False
    assert account.basic_info.last_metrics_update is None
    invoice = zc.invoices_api().create_standalone_invoice(
        CreateInvoiceRequest(
            account_id=created.account_id,
            invoice_date=date(2026, 10, 5),
            status="Posted",
            invoice_items=[
                CreateInvoiceItem(amount=Decimal("0.10"), service_start_date=date(2026, 10, 5)),
                CreateInvoiceItem(amount=Decimal("0.20"), service_start_date=date(2026, 10, 5)),
            ],
        )
    )
    assert invoice.success is True, invoice
    # Synchronous metrics: visible at once, summed exactly.
    account = accounts.get_account(created.account_number)
    assert Decimal(str(account.metrics.total_invoice_balance)) == Decimal("0.30")


def test_sdk_sees_not_found_and_validation_as_exceptions(zc: ZuoraClient) -> None:
    with pytest.raises(NotFoundException) as not_found:
        zc.accounts_api().get_account("A99999999")
    assert not_found.value.status == 404
    assert "A99999999" in str(not_found.value.body)

    with pytest.raises(ApiException) as bad:
        zc.accounts_api().create_account(
            CreateAccountRequest(name="No contact", currency="USD")  # billToContact missing
        )
    assert bad.value.status == 400
    assert "billToContact" in str(bad.value.body)


def test_sdk_reuse_of_idempotency_key_with_other_body_is_422(zc: ZuoraClient) -> None:
    key = f"sdk-{uuid.uuid4().hex}"
    first = zc.accounts_api().create_account(
        CreateAccountRequest(name="First", currency="USD", bill_to_contact=_contact()),
        idempotency_key=key,
    )
    assert first.success is True
    with pytest.raises(ApiException) as conflict:
        zc.accounts_api().create_account(
            CreateAccountRequest(name="Second", currency="USD", bill_to_contact=_contact()),
            idempotency_key=key,
        )
    assert conflict.value.status == 422


def test_sdk_with_wrong_secret_gets_json_401(
    live_server: str, sdk_credentials: TenantCredentials
) -> None:
    client = ZuoraClient(
        client_id=sdk_credentials.client_id,
        client_secret="wrong-secret",
        env=None,
        config=Configuration(host=live_server),
    )
    client.set_retry_config(1, 1)
    client.initialize()
    try:
        assert client.token["access_token"] is None  # the SDK swallows the failure
        with pytest.raises(UnauthorizedException) as unauthorized:
            client.accounts_api().get_account("A00000001")
        assert unauthorized.value.status == 401
        assert unauthorized.value.data is not None
        assert unauthorized.value.data.message
    finally:
        client.stop_auto_auth()
