"""Accounts over the v1 API: create, read (by id and number), update, summary, metrics freshness."""

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import text

from partnerbill.core import auth, db
from partnerbill.core.tenants import create_tenant
from partnerbill.metrics.service import PENDING_COUNT_CAP
from tests.catalog_fixtures import new_account, plan_charge_ids, rate_plan, recurring_charge
from tests.helpers import ApiClient, TenantCredentials, invoice_body, tenant_rows

ID = re.compile(r"^[0-9a-f]{32}$")
V1_DATETIME = "%Y-%m-%d %H:%M:%S"
METRIC_FIELDS = {
    "balance",
    "currency",
    "contractedMrr",
    "creditBalance",
    "reservedPaymentAmount",
    "totalDebitMemoBalance",
    "totalInvoiceBalance",
    "unappliedCreditMemoAmount",
    "unappliedPaymentAmount",
}

BILL_TO = {
    "firstName": "Grace",
    "lastName": "Hopper",
    "address1": "1 Navy Way",
    "address2": "Suite 7",
    "city": "Arlington",
    "state": "VA",
    "zipCode": "22202",
    "country": "United States",
    "workEmail": "grace@example.com",
    "workPhone": "+1 555 0100",
}
SOLD_TO = {
    "firstName": "Alan",
    "lastName": "Turing",
    "address1": "Bletchley Park",
    "city": "Milton Keynes",
    "zipCode": "MK3 6EB",
    "country": "United Kingdom",
    "workEmail": "alan@example.com",
}


def full_account_body(**fields: Any) -> dict[str, Any]:
    """Everything a real integration sends when it creates a reseller's customer."""
    return {
        "name": "Acme Reseller GmbH",
        "accountNumber": "ACME-0001",
        "currency": "EUR",
        "billCycleDay": 15,
        "paymentTerm": "Net 30",
        "autoPay": False,
        "batch": "Batch7",
        "notes": "Migrated from the legacy system",
        "crmId": "0015g00000XyZabAAB",
        "salesRep": "Jane Seller",
        "invoiceDeliveryPrefsEmail": True,
        "partnerAccount": True,
        "region__c": "EMEA",
        "billToContact": dict(BILL_TO),
        "soldToContact": dict(SOLD_TO),
        **fields,
    }


def code_category(payload: dict[str, Any]) -> int:
    return int(payload["reasons"][0]["code"]) % 100


async def get_account(api: ApiClient, key: str) -> dict[str, Any]:
    return await api.ok("GET", f"/v1/accounts/{key}")


async def summary(api: ApiClient, key: str) -> dict[str, Any]:
    return await api.ok("GET", f"/v1/accounts/{key}/summary")


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


# --- summary --------------------------------------------------------------------------------


async def test_summary_of_new_account(api: ApiClient) -> None:
    created = await api.ok("POST", "/v1/accounts", full_account_body(partnerAccount=False))
    result = await summary(api, created["accountId"])
    basic = result["basicInfo"]
    assert basic["id"] == created["accountId"]
    assert basic["accountNumber"] == "ACME-0001"
    assert basic["currency"] == "EUR"
    assert basic["billCycleDay"] == 15
    assert basic["balance"] == "0"
    assert basic["lastInvoiceDate"] is None
    assert basic["partnerAccount"] is False
    assert basic["lastMetricsUpdate"] is None
    assert result["invoices"] == []
    assert result["subscriptions"] == []
    assert result["payments"] == []
    assert result["billToContact"]["id"] == created["billToContactId"]
    assert result["soldToContact"]["id"] == created["soldToContactId"]


async def test_summary_balance_is_a_string_and_lists_last_six_posted_newest_first(
    api: ApiClient,
) -> None:
    number = (await api.create_account())["accountNumber"]
    posted = []
    for month in range(1, 9):
        invoice = await api.ok(
            "POST",
            "/v1/invoices",
            invoice_body(number, f"{month}.10", invoice_date=f"2026-{month:02d}-05"),
        )
        posted.append(invoice)
    # A later Draft does not show and does not move lastInvoiceDate.
    await api.ok(
        "POST",
        "/v1/invoices",
        invoice_body(number, "99", status="Draft", invoice_date="2026-12-01"),
    )
    result = await summary(api, number)
    basic = result["basicInfo"]
    assert isinstance(basic["balance"], str)
    assert Decimal(basic["balance"]) == sum(Decimal(f"{m}.10") for m in range(1, 9))
    assert basic["lastInvoiceDate"] == "2026-08-05"
    listed = result["invoices"]
    assert [i["invoiceNumber"] for i in listed] == [
        p["invoiceNumber"] for p in reversed(posted[2:])
    ]
    newest = listed[0]
    assert newest["id"] == posted[-1]["id"]
    assert newest["invoiceDate"] == "2026-08-05"
    assert newest["dueDate"] == "2026-08-05"  # Due Upon Receipt
    assert newest["amount"] == Decimal("8.10")
    assert newest["balance"] == Decimal("8.10")
    assert newest["status"] == "Posted"


async def test_summary_balance_keeps_exact_decimals(api: ApiClient) -> None:
    number = (await api.create_account())["accountNumber"]
    await api.ok("POST", "/v1/invoices", invoice_body(number, "0.10", "0.20"))
    basic = (await summary(api, number))["basicInfo"]
    assert Decimal(basic["balance"]) == Decimal("0.30")
    assert basic["balance"] in ("0.30", "0.3")


async def test_last_metrics_update_is_null_for_non_partner_and_set_after_refresh(
    api: ApiClient,
) -> None:
    plain = (await api.create_account(partner=False))["accountNumber"]
    partner = (await api.create_account(partner=True))["accountNumber"]
    await api.ok("POST", "/v1/invoices", invoice_body(plain, "5"))
    await api.ok("POST", "/v1/invoices", invoice_body(partner, "7"))

    refreshed_plain = await api.refresh(plain)
    assert refreshed_plain["accountNumber"] == plain
    assert (await get_account(api, plain))["basicInfo"]["lastMetricsUpdate"] is None
    assert (await summary(api, plain))["basicInfo"]["lastMetricsUpdate"] is None

    before = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    refreshed = await api.refresh(partner)
    assert refreshed["foldedChanges"] == 1
    stamp = refreshed["lastMetricsUpdate"]
    parsed = datetime.strptime(stamp, V1_DATETIME)
    assert abs((parsed - before).total_seconds()) < 120
    assert (await get_account(api, partner))["basicInfo"]["lastMetricsUpdate"] == stamp
    partner_summary = await summary(api, partner)
    assert partner_summary["basicInfo"]["lastMetricsUpdate"] == stamp
    assert partner_summary["basicInfo"]["balance"] == "7"
    assert partner_summary["basicInfo"]["lastInvoiceDate"] == "2026-11-01"


async def test_partner_summary_is_deferred_until_refresh(api: ApiClient) -> None:
    number = (await api.create_account(partner=True))["accountNumber"]
    invoice = await api.ok("POST", "/v1/invoices", invoice_body(number, "12.34"))
    basic = (await summary(api, number))["basicInfo"]
    assert Decimal(basic["balance"]) == Decimal("0")
    assert basic["lastInvoiceDate"] is None
    # The document list is not an aggregate: it shows the invoice right away.
    assert [i["id"] for i in (await summary(api, number))["invoices"]] == [invoice["id"]]
    await api.refresh(number)
    basic = (await summary(api, number))["basicInfo"]
    assert Decimal(basic["balance"]) == Decimal("12.34")
    assert basic["lastInvoiceDate"] == "2026-11-01"


# --- partner flag and metrics freshness -----------------------------------------------------


async def test_pending_changes_count_partner_writes(api: ApiClient) -> None:
    number = (await api.create_account(partner=True))["accountNumber"]
    before = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    for amount in ("1", "2", "3"):
        await api.ok("POST", "/v1/invoices", invoice_body(number, amount))
    # A Draft invoice changes no metric and logs no change.
    await api.ok("POST", "/v1/invoices", invoice_body(number, "4", status="Draft"))
    account = await get_account(api, number)
    freshness = account["metricsFreshness"]
    assert freshness["pendingChanges"] == 3
    assert freshness["pendingChangesCapped"] is False
    oldest = datetime.strptime(freshness["oldestPendingChange"], V1_DATETIME)
    assert abs((oldest - before).total_seconds()) < 120
    assert account["metrics"]["totalInvoiceBalance"] == Decimal("0")

    refreshed = await api.refresh(number)
    assert refreshed["foldedChanges"] == 3
    account = await get_account(api, number)
    assert account["metricsFreshness"] == {
        "pendingChanges": 0,
        "pendingChangesCapped": False,
        "oldestPendingChange": None,
    }
    assert account["metrics"]["totalInvoiceBalance"] == Decimal("6")
    assert account["metrics"]["balance"] == Decimal("6")


async def test_non_partner_writes_leave_nothing_pending(api: ApiClient) -> None:
    number = (await api.create_account(partner=False))["accountNumber"]
    await api.ok("POST", "/v1/invoices", invoice_body(number, "10.50"))
    account = await get_account(api, number)
    assert account["metricsFreshness"]["pendingChanges"] == 0
    assert account["metricsFreshness"]["oldestPendingChange"] is None
    assert account["metrics"]["totalInvoiceBalance"] == Decimal("10.50")
    assert account["metrics"]["balance"] == Decimal("10.50")
    assert account["metrics"]["currency"] == "USD"


async def test_partner_account_false_makes_metrics_exact_and_last_update_null(
    api: ApiClient,
) -> None:
    number = (await api.create_account(partner=True))["accountNumber"]
    await api.refresh(number)
    await api.ok("POST", "/v1/invoices", invoice_body(number, "20", invoice_date="2026-10-10"))
    stale = await get_account(api, number)
    assert stale["metrics"]["totalInvoiceBalance"] == Decimal("0")
    assert stale["basicInfo"]["lastMetricsUpdate"] is not None

    await api.ok("PUT", f"/v1/accounts/{number}", {"partnerAccount": False})
    account = await get_account(api, number)
    assert account["basicInfo"]["partnerAccount"] is False
    assert account["basicInfo"]["lastMetricsUpdate"] is None
    assert account["metrics"]["totalInvoiceBalance"] == Decimal("20")
    assert account["metrics"]["balance"] == Decimal("20")
    assert account["metricsFreshness"]["pendingChanges"] == 0
    assert (await summary(api, number))["basicInfo"]["lastInvoiceDate"] == "2026-10-10"

    # Synchronous from now on.
    await api.ok("POST", "/v1/invoices", invoice_body(number, "1.25", invoice_date="2026-10-11"))
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("21.25")


async def test_switching_to_partner_stamps_last_metrics_update_and_defers(api: ApiClient) -> None:
    number = (await api.create_account(partner=False))["accountNumber"]
    await api.ok("POST", "/v1/invoices", invoice_body(number, "3"))
    before = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    await api.ok("PUT", f"/v1/accounts/{number}", {"partnerAccount": True})
    account = await get_account(api, number)
    assert account["basicInfo"]["partnerAccount"] is True
    stamp = datetime.strptime(account["basicInfo"]["lastMetricsUpdate"], V1_DATETIME)
    assert abs((stamp - before).total_seconds()) < 120
    assert account["metrics"]["totalInvoiceBalance"] == Decimal("3")

    await api.ok("POST", "/v1/invoices", invoice_body(number, "4"))
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("3")
    await api.refresh(number)
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("7")


async def test_pending_change_count_is_capped(api: ApiClient) -> None:
    """A hot partner account's pending changes are counted up to a cap, which is reported."""
    created = await api.create_account(partner=True)
    async with db.get_engine().begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO metrics_changes (tenant_id, account_id) "
                "SELECT :t, :a FROM generate_series(1, :n)"
            ),
            {"t": api.tenant.id, "a": created["accountId"], "n": PENDING_COUNT_CAP + 5},
        )
    freshness = (await get_account(api, created["accountNumber"]))["metricsFreshness"]
    assert freshness["pendingChanges"] == PENDING_COUNT_CAP
    assert freshness["pendingChangesCapped"] is True
    assert freshness["oldestPendingChange"] is not None


async def test_summary_lists_the_six_newest_subscriptions_with_their_rate_plans(
    api: ApiClient,
) -> None:
    number = (await new_account(api))["accountNumber"]
    plan = await rate_plan(api, recurring_charge("10"), name="Seat plan")
    (charge_id,) = await plan_charge_ids(api, plan)
    numbers = []
    for _ in range(7):
        created = await api.ok(
            "POST",
            "/v1/subscriptions",
            {
                "accountKey": number,
                "contractEffectiveDate": "2026-01-01",
                "termType": "EVERGREEN",
                "subscribeToRatePlans": [
                    {
                        "productRatePlanId": plan,
                        "chargeOverrides": [{"productRatePlanChargeId": charge_id, "quantity": 1}],
                    }
                ],
            },
        )
        numbers.append(created["subscriptionNumber"])
    listed = (await summary(api, number))["subscriptions"]
    assert [s["subscriptionNumber"] for s in listed] == numbers[:0:-1]
    assert all(s["termType"] == "EVERGREEN" and s["initialTerm"] is None for s in listed)
    assert all(
        s["ratePlans"]
        == [{"productName": s["ratePlans"][0]["productName"], "ratePlanName": "Seat plan"}]
        for s in listed
    )
