"""Accounts over the v1 API: the summary, the partner flag and metrics freshness."""

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import text

from partnerbill.core import db
from partnerbill.metrics.service import PENDING_COUNT_CAP
from tests.accounts.account_support import V1_DATETIME, full_account_body, get_account, summary
from tests.catalog_fixtures import new_account, plan_charge_ids, rate_plan, recurring_charge
from tests.helpers import ApiClient, invoice_body

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
