"""Accounts over the v1 API: create, read (by id and number), the requests refused, update."""

import re
import uuid
from decimal import Decimal
from typing import Any

import httpx

from partnerbill.core import auth
from partnerbill.core.tenants import create_tenant
from tests.accounts.account_support import (
    BILL_TO,
    ID,
    METRIC_FIELDS,
    SOLD_TO,
    code_category,
    full_account_body,
    get_account,
    summary,
)
from tests.helpers import ApiClient, TenantCredentials, tenant_rows

# --- create and read back -------------------------------------------------------------------


async def test_create_with_every_field_reads_back_by_id_and_by_number(api: ApiClient) -> None:
    created = await api.ok("POST", "/v1/accounts", full_account_body())
    assert ID.match(created["accountId"])
    assert created["accountNumber"] == "ACME-0001"
    assert ID.match(created["billToContactId"])
    assert ID.match(created["soldToContactId"])
    assert created["billToContactId"] != created["soldToContactId"]

    by_id = await get_account(api, created["accountId"])
    by_number = await get_account(api, "ACME-0001")
    assert by_id == by_number
    for account in (by_id, by_number):
        basic = account["basicInfo"]
        assert basic["id"] == created["accountId"]
        assert basic["accountNumber"] == "ACME-0001"
        assert basic["name"] == "Acme Reseller GmbH"
        assert basic["status"] == "Active"
        assert basic["batch"] == "Batch7"
        assert basic["crmId"] == "0015g00000XyZabAAB"
        assert basic["notes"] == "Migrated from the legacy system"
        assert basic["salesRep"] == "Jane Seller"
        assert basic["partnerAccount"] is True
        assert basic["region__c"] == "EMEA"

        billing = account["billingAndPayment"]
        assert billing["billCycleDay"] == 15
        assert billing["bcdSettingOption"] == "ManualSet"
        assert billing["currency"] == "EUR"
        assert billing["paymentTerm"] == "Net 30"
        assert billing["autoPay"] is False
        assert billing["invoiceDeliveryPrefsEmail"] is True
        assert billing["invoiceDeliveryPrefsPrint"] is False

        assert account["billToContact"] == {"id": created["billToContactId"], **BILL_TO}
        assert account["soldToContact"] == {"id": created["soldToContactId"], **SOLD_TO}


async def test_new_account_has_all_nine_metrics_at_zero(api: ApiClient) -> None:
    created = await api.create_account(currency="GBP")
    metrics = (await get_account(api, created["accountId"]))["metrics"]
    assert set(metrics) == METRIC_FIELDS
    assert metrics["currency"] == "GBP"
    for name in METRIC_FIELDS - {"currency"}:
        # A JSON number (never a string or a float), exactly zero.
        assert isinstance(metrics[name], int | Decimal), (name, metrics[name])
        assert not isinstance(metrics[name], bool), name
        assert Decimal(metrics[name]) == Decimal("0"), name
    freshness = (await get_account(api, created["accountId"]))["metricsFreshness"]
    assert freshness["pendingChanges"] == 0
    assert freshness["pendingChangesCapped"] is False
    assert freshness["oldestPendingChange"] is None


async def test_account_number_is_generated_in_sequence(api: ApiClient) -> None:
    first = await api.create_account()
    second = await api.create_account()
    assert re.fullmatch(r"A\d{8}", first["accountNumber"])
    assert re.fullmatch(r"A\d{8}", second["accountNumber"])
    assert first["accountNumber"] == "A00000001"  # a fresh tenant numbers from 1
    assert second["accountNumber"] == "A00000002"
    assert (await get_account(api, "A00000002"))["basicInfo"]["id"] == second["accountId"]


async def test_minimal_account_gets_documented_defaults(api: ApiClient) -> None:
    created = await api.create_account()
    account = await get_account(api, created["accountNumber"])
    assert account["basicInfo"]["partnerAccount"] is False
    assert account["basicInfo"]["lastMetricsUpdate"] is None
    assert account["billingAndPayment"]["billCycleDay"] == 0
    assert account["billingAndPayment"]["bcdSettingOption"] == "AutoSet"
    assert account["billingAndPayment"]["paymentTerm"] == "Due Upon Receipt"
    assert account["billingAndPayment"]["autoPay"] is False
    assert account["basicInfo"]["batch"] == "Batch1"


async def test_sold_to_defaults_to_bill_to(api: ApiClient) -> None:
    created = await api.ok("POST", "/v1/accounts", full_account_body(soldToContact=None))
    account = await get_account(api, created["accountId"])
    assert account["soldToContact"] == account["billToContact"]
    assert account["billToContact"] == {"id": created["billToContactId"], **BILL_TO}
    assert created["soldToContactId"] == created["billToContactId"]
    assert account["soldToContact"]["id"] == created["soldToContactId"]


async def test_custom_field_reads_back_on_summary_too(api: ApiClient) -> None:
    created = await api.ok("POST", "/v1/accounts", full_account_body(region__c="APAC"))
    assert (await summary(api, created["accountId"]))["basicInfo"]["region__c"] == "APAC"


async def test_unknown_account_is_not_found(api: ApiClient) -> None:
    status, payload = await api.call("GET", "/v1/accounts/NOPE-1", expect=None)
    assert status == 404
    assert payload["success"] is False
    assert code_category(payload) == 40
    status, payload = await api.call("GET", f"/v1/accounts/{'0' * 32}", expect=None)
    assert status == 404


async def test_accounts_of_another_tenant_are_invisible(
    api: ApiClient, app: Any, engine: Any
) -> None:
    created = await api.create_account(accountNumber="PRIVATE-1")
    async with engine.begin() as conn:
        tenant = await create_tenant(conn, f"t-{uuid.uuid4().hex[:16]}")
        credentials = await auth.create_client(conn, tenant, "other")
    other_credentials = TenantCredentials(tenant, credentials.client_id, credentials.client_secret)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://partnerbill.test"
    ) as http:
        other = ApiClient(http, other_credentials)
        await other.authenticate()
        for key in ("PRIVATE-1", created["accountId"]):
            status, _ = await other.call("GET", f"/v1/accounts/{key}", expect=None)
            assert status == 404
        # The same number is free in the other tenant.
        again = await other.create_account(accountNumber="PRIVATE-1")
        assert again["accountId"] != created["accountId"]


# --- create: rejected requests --------------------------------------------------------------


async def test_duplicate_account_number_is_a_business_error_and_writes_nothing(
    api: ApiClient,
) -> None:
    first = await api.create_account(accountNumber="DUP-1", name="Original")
    before = await tenant_rows(api)
    assert before["accounts"] == 1
    assert before["account_metrics"] == 1
    status, payload = await api.call(
        "POST",
        "/v1/accounts",
        full_account_body(accountNumber="DUP-1", name="Impostor"),
        expect=None,
    )
    assert status == 200
    assert payload["success"] is False
    assert code_category(payload) == 30
    assert "DUP-1" in payload["reasons"][0]["message"]
    assert "accountId" not in payload
    account = await get_account(api, "DUP-1")
    assert account["basicInfo"]["id"] == first["accountId"]
    assert account["basicInfo"]["name"] == "Original"
    assert account["billingAndPayment"]["currency"] == "USD"
    assert await tenant_rows(api) == before


async def test_invalid_values_are_rejected_with_400(api: ApiClient) -> None:
    cases = [
        ("paymentTerm", "Net thirty"),
        ("paymentTerm", "Net 30 days"),
        ("batch", "Batch51"),
        ("batch", "Batch0"),
        ("currency", "XXX"),
        ("currency", "usd"),
        ("billCycleDay", 32),
    ]
    for field, value in cases:
        status, payload = await api.call(
            "POST",
            "/v1/accounts",
            full_account_body(accountNumber=f"BAD-{field}", **{field: value}),
            expect=None,
        )
        assert status == 400, (field, value, payload)
        assert payload["success"] is False
        assert code_category(payload) == 20, (field, value, payload)
        assert field in payload["reasons"][0]["message"], (field, payload)
        status, _ = await api.call("GET", f"/v1/accounts/BAD-{field}", expect=None)
        assert status == 404, field
    assert (await tenant_rows(api))["accounts"] == 0


async def test_missing_required_fields_are_rejected(api: ApiClient) -> None:
    for missing in ("name", "currency", "billToContact"):
        body = full_account_body(accountNumber=f"MISSING-{missing}")
        del body[missing]
        status, payload = await api.call("POST", "/v1/accounts", body, expect=None)
        assert status == 400, (missing, payload)
        assert code_category(payload) == 22, (missing, payload)
        assert missing in payload["reasons"][0]["message"]


async def test_payment_term_variants_are_accepted(api: ApiClient) -> None:
    for term in ("Due Upon Receipt", "Net 0", "Net 45", "Net 120"):
        created = await api.create_account(paymentTerm=term)
        account = await get_account(api, created["accountId"])
        assert account["billingAndPayment"]["paymentTerm"] == term


# --- update ---------------------------------------------------------------------------------


async def test_update_name_terms_bill_cycle_day_and_custom_fields(api: ApiClient) -> None:
    created = await api.ok("POST", "/v1/accounts", full_account_body(other__c="keep me"))
    key = created["accountId"]
    updated = await api.ok(
        "PUT",
        f"/v1/accounts/{key}",
        {"name": "Acme Renamed", "billCycleDay": 1, "paymentTerm": "Net 60", "region__c": "NA"},
    )
    assert updated["success"] is True
    account = await get_account(api, key)
    assert account["basicInfo"]["name"] == "Acme Renamed"
    assert account["basicInfo"]["region__c"] == "NA"
    assert account["basicInfo"]["other__c"] == "keep me"
    assert account["billingAndPayment"]["billCycleDay"] == 1
    assert account["billingAndPayment"]["bcdSettingOption"] == "ManualSet"
    assert account["billingAndPayment"]["paymentTerm"] == "Net 60"
    # Untouched fields stay.
    assert account["basicInfo"]["batch"] == "Batch7"
    assert account["basicInfo"]["crmId"] == "0015g00000XyZabAAB"
    assert account["billingAndPayment"]["currency"] == "EUR"

    await api.ok("PUT", "/v1/accounts/ACME-0001", {"billCycleDay": 0})
    account = await get_account(api, key)
    assert account["billingAndPayment"]["billCycleDay"] == 0
    assert account["billingAndPayment"]["bcdSettingOption"] == "AutoSet"


async def test_update_contacts_merges_partially_and_keeps_ids(api: ApiClient) -> None:
    created = await api.ok("POST", "/v1/accounts", full_account_body())
    key = created["accountNumber"]
    await api.ok(
        "PUT",
        f"/v1/accounts/{key}",
        {
            "billToContact": {"city": "Washington", "zipCode": "20001"},
            "soldToContact": {"workEmail": "turing@example.org"},
        },
    )
    account = await get_account(api, key)
    assert account["billToContact"] == {
        **BILL_TO,
        "id": created["billToContactId"],
        "city": "Washington",
        "zipCode": "20001",
    }
    assert account["soldToContact"] == {
        **SOLD_TO,
        "id": created["soldToContactId"],
        "workEmail": "turing@example.org",
    }


async def test_update_of_shared_bill_to_contact_shows_on_sold_to(api: ApiClient) -> None:
    """Without a soldToContact the account has one contact for both roles (same id). Editing it
    through billToContact must not leave two different versions of one contact id."""
    created = await api.ok("POST", "/v1/accounts", full_account_body(soldToContact=None))
    await api.ok(
        "PUT", f"/v1/accounts/{created['accountId']}", {"billToContact": {"city": "Richmond"}}
    )
    account = await get_account(api, created["accountId"])
    assert account["billToContact"]["city"] == "Richmond"
    assert account["soldToContact"]["id"] == account["billToContact"]["id"]
    assert account["soldToContact"] == account["billToContact"]


async def test_invalid_update_values_are_rejected_and_change_nothing(api: ApiClient) -> None:
    created = await api.ok("POST", "/v1/accounts", full_account_body())
    key = created["accountId"]
    for body in (
        {"name": "Changed", "paymentTerm": "Net -1"},
        {"name": "Changed", "batch": "batch7"},
        {"name": "Changed", "billCycleDay": "15"},
        {"name": "Changed", "billToContact": {"firstName": ""}},
    ):
        status, payload = await api.call("PUT", f"/v1/accounts/{key}", body, expect=None)
        assert status == 400, (body, payload)
        assert payload["success"] is False
    account = await get_account(api, key)
    assert account["basicInfo"]["name"] == "Acme Reseller GmbH"
    assert account["billingAndPayment"]["paymentTerm"] == "Net 30"
    assert account["billToContact"]["firstName"] == "Grace"


async def test_update_unknown_account_is_not_found(api: ApiClient) -> None:
    status, payload = await api.call("PUT", "/v1/accounts/NOPE-2", {"name": "x"}, expect=None)
    assert status == 404
    assert code_category(payload) == 40
