"""The refresh of partner accounts (docs/architecture.md): the watermark race forced step by step
with open transactions, the partner-flag switch both ways (and against in-flight writers), and the
scheduler's choice of which accounts are due."""

import asyncio
from datetime import date
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from partnerbill.accounts import service as accounts_service
from partnerbill.accounts.schemas import UpdateAccountRequest
from partnerbill.billing import creation as invoice_creation
from partnerbill.core.tenants import Tenant
from partnerbill.metrics import refresh as metric_refresh
from partnerbill.metrics import service as metrics
from partnerbill.metrics.tasks import refresh_due_partner_accounts
from tests.helpers import ApiClient, invoice_body, one_item_invoice


async def account_id(api: ApiClient, number: str) -> str:
    return str((await api.ok("GET", f"/v1/accounts/{number}"))["basicInfo"]["id"])


async def create_posted(
    conn: AsyncConnection, tenant: Tenant, account: str, amount: str, day: date
) -> str:
    request = one_item_invoice(amount, day, account_id=account)
    (outcome,) = await invoice_creation.create_invoices(
        conn, tenant, [request], all_or_nothing=True
    )
    assert outcome.invoice is not None
    return str(outcome.invoice["id"])


async def own_change_ids(conn: AsyncConnection, tenant: Tenant, account: str) -> list[int]:
    """The change-log ids this connection can see for the account."""
    rows = await conn.scalars(
        text("SELECT id FROM metrics_changes WHERE tenant_id = :t AND account_id = :a ORDER BY id"),
        {"t": tenant.id, "a": account},
    )
    return list(rows)


async def snapshot(engine: AsyncEngine, tenant: Tenant, account: str) -> metrics.MetricsSnapshot:
    async with engine.begin() as conn:
        return await metrics.read_metrics(conn, tenant, account)


async def recomputed(engine: AsyncEngine, tenant: Tenant, account: str) -> metrics.AccountMetrics:
    async with engine.begin() as conn:
        return await metrics.recompute(conn, tenant, account)


async def refresh(
    engine: AsyncEngine, tenant: Tenant, account: str
) -> metric_refresh.RefreshResult:
    async with engine.begin() as conn:
        result = await metric_refresh.refresh_account(conn, tenant, account, wait=True)
    assert result is not None
    return result


# -- the watermark race ----------------------------------------------------------------------------


async def test_change_with_lower_id_committing_after_a_refresh_stays_pending(
    api: ApiClient, engine: AsyncEngine
) -> None:
    number = (await api.create_account(partner=True))["accountNumber"]
    account = await account_id(api, number)
    tenant = api.tenant

    async with engine.connect() as w1:
        w1_transaction = await w1.begin()
        # W1 writes first (takes the lower change id) but does not commit yet.
        await create_posted(w1, tenant, account, "100.00", date(2026, 9, 30))
        (w1_change,) = await own_change_ids(w1, tenant, account)

        # W2 writes later and commits.
        async with engine.begin() as w2:
            await create_posted(w2, tenant, account, "7.25", date(2026, 9, 1))
        async with engine.connect() as reader:
            (w2_change,) = await own_change_ids(reader, tenant, account)
        assert w2_change > w1_change  # the race's premise: the higher id committed first

        # The refresh sees only W2's change and folds only it.
        first = await refresh(engine, tenant, account)
        assert first.folded_changes == 1
        assert first.metrics.total_invoice_balance == Decimal("7.25")
        assert first.metrics.last_invoice_date == date(2026, 9, 1)

        await w1_transaction.commit()

    # W1's change committed after the refresh: it is pending, not lost behind a watermark.
    after_first = await snapshot(engine, tenant, account)
    assert after_first.pending_changes == 1
    assert after_first.metrics.total_invoice_balance == Decimal("7.25")
    assert after_first.metrics.last_invoice_date == date(2026, 9, 1)
    api_view = await api.ok("GET", f"/v1/accounts/{number}")
    assert api_view["metricsFreshness"]["pendingChanges"] == 1
    assert api_view["metrics"]["totalInvoiceBalance"] == Decimal("7.25")

    second = await refresh(engine, tenant, account)
    assert second.folded_changes == 1
    after_second = await snapshot(engine, tenant, account)
    assert after_second.pending_changes == 0
    assert after_second.metrics == await recomputed(engine, tenant, account)
    assert after_second.metrics.total_invoice_balance == Decimal("107.25")
    assert after_second.metrics.last_invoice_date == date(2026, 9, 30)
    assert after_second.last_metrics_update == second.refreshed_at
    assert after_second.last_metrics_update > first.refreshed_at


async def test_change_committing_while_the_refresh_consumes_the_log_stays_pending(
    api: ApiClient, engine: AsyncEngine
) -> None:
    """Pause the refresh inside its consumption of the log (a row it must delete is locked),
    commit a lower-numbered change meanwhile, then let the refresh finish."""
    number = (await api.create_account(partner=True))["accountNumber"]
    account = await account_id(api, number)
    tenant = api.tenant

    async with engine.connect() as w1, engine.connect() as pauser:
        w1_transaction = await w1.begin()
        await create_posted(w1, tenant, account, "100.00", date(2026, 9, 30))
        (w1_change,) = await own_change_ids(w1, tenant, account)
        async with engine.begin() as w2:
            await create_posted(w2, tenant, account, "7.25", date(2026, 9, 1))
        pause_transaction = await pauser.begin()
        (w2_change,) = await own_change_ids(pauser, tenant, account)
        assert w2_change > w1_change
        await pauser.execute(
            text("SELECT id FROM metrics_changes WHERE id = :id FOR UPDATE"), {"id": w2_change}
        )
        refreshing = asyncio.create_task(refresh(engine, tenant, account))
        await asyncio.sleep(0.3)
        assert not refreshing.done()  # held up while consuming W2's change row
        await w1_transaction.commit()  # W1 commits during the refresh
        await pause_transaction.rollback()
        result = await asyncio.wait_for(refreshing, timeout=10)

    assert result.folded_changes == 1
    during = await snapshot(engine, tenant, account)
    assert during.pending_changes == 1  # W1's change was not consumed: the next refresh sees it
    second = await refresh(engine, tenant, account)
    assert second.folded_changes == 1
    final = await snapshot(engine, tenant, account)
    assert final.pending_changes == 0
    assert final.metrics == await recomputed(engine, tenant, account)
    assert final.metrics.total_invoice_balance == Decimal("107.25")
    assert final.metrics.last_invoice_date == date(2026, 9, 30)


async def test_refresh_does_not_wait_for_an_uncommitted_partner_writer(
    api: ApiClient, engine: AsyncEngine
) -> None:
    """The refresh neither blocks on nor consumes an in-flight writer's change row."""
    number = (await api.create_account(partner=True))["accountNumber"]
    account = await account_id(api, number)
    tenant = api.tenant
    async with engine.begin() as conn:
        await create_posted(conn, tenant, account, "1.00", date(2026, 1, 1))

    async with engine.connect() as writer:
        writer_transaction = await writer.begin()
        await create_posted(writer, tenant, account, "2.00", date(2026, 2, 1))
        result = await asyncio.wait_for(refresh(engine, tenant, account), timeout=5)
        assert result.folded_changes == 1
        # The writer's own row survived the refresh's delete.
        assert len(await own_change_ids(writer, tenant, account)) == 1
        await writer_transaction.commit()

    assert (await snapshot(engine, tenant, account)).pending_changes == 1
    await refresh(engine, tenant, account)
    final = await snapshot(engine, tenant, account)
    assert final.metrics == await recomputed(engine, tenant, account)
    assert final.metrics.total_invoice_balance == Decimal("3.00")


# -- switching the partner flag --------------------------------------------------------------------


async def test_switching_partner_flag_both_ways(api: ApiClient, engine: AsyncEngine) -> None:
    number = (await api.create_account(partner=True))["accountNumber"]
    tenant = api.tenant
    account = await account_id(api, number)
    await api.ok("POST", "/v1/invoices", invoice_body(number, "20.00", invoice_date="2026-04-02"))
    await api.ok("POST", "/v1/invoices", invoice_body(number, "5.50", invoice_date="2026-04-09"))
    deferred = await api.ok("GET", f"/v1/accounts/{number}")
    assert deferred["metrics"]["totalInvoiceBalance"] == 0
    assert deferred["metricsFreshness"]["pendingChanges"] == 2

    # To false: recomputed now, synchronous from here on, lastMetricsUpdate null, log dropped.
    await api.ok("PUT", f"/v1/accounts/{number}", {"partnerAccount": False})
    synchronous = await api.ok("GET", f"/v1/accounts/{number}")
    assert synchronous["basicInfo"]["partnerAccount"] is False
    assert synchronous["basicInfo"]["lastMetricsUpdate"] is None
    assert synchronous["metricsFreshness"]["pendingChanges"] == 0
    assert synchronous["metrics"]["totalInvoiceBalance"] == Decimal("25.50")
    assert synchronous["metrics"]["balance"] == Decimal("25.50")
    summary = await api.ok("GET", f"/v1/accounts/{number}/summary")
    assert summary["basicInfo"]["lastInvoiceDate"] == "2026-04-09"
    assert summary["basicInfo"]["lastMetricsUpdate"] is None
    stored = await snapshot(engine, tenant, account)
    assert stored.metrics == await recomputed(engine, tenant, account)
    assert stored.last_metrics_update is None
    # Synchronous now: a write shows at once, with no change row.
    await api.ok("POST", "/v1/invoices", invoice_body(number, "4.50", invoice_date="2026-04-20"))
    now_exact = await api.ok("GET", f"/v1/accounts/{number}")
    assert now_exact["metrics"]["totalInvoiceBalance"] == Decimal("30.00")
    assert now_exact["metricsFreshness"]["pendingChanges"] == 0

    # To true: metrics unchanged, lastMetricsUpdate set, deferral starts.
    await api.ok("PUT", f"/v1/accounts/{number}", {"partnerAccount": True})
    partner = await api.ok("GET", f"/v1/accounts/{number}")
    assert partner["basicInfo"]["partnerAccount"] is True
    assert partner["basicInfo"]["lastMetricsUpdate"] is not None
    assert partner["metrics"] == now_exact["metrics"]
    assert partner["metricsFreshness"]["pendingChanges"] == 0
    await api.ok("POST", "/v1/invoices", invoice_body(number, "1.00", invoice_date="2026-05-01"))
    later = await api.ok("GET", f"/v1/accounts/{number}")
    assert later["metrics"]["totalInvoiceBalance"] == Decimal("30.00")
    assert later["metricsFreshness"]["pendingChanges"] == 1
    summary = await api.ok("GET", f"/v1/accounts/{number}/summary")
    assert summary["basicInfo"]["lastInvoiceDate"] == "2026-04-20"

    # Setting the flag to the value it has changes nothing.
    await api.ok("PUT", f"/v1/accounts/{number}", {"partnerAccount": True})
    again = await api.ok("GET", f"/v1/accounts/{number}")
    assert again["basicInfo"]["lastMetricsUpdate"] == partner["basicInfo"]["lastMetricsUpdate"]
    assert again["metricsFreshness"]["pendingChanges"] == 1

    await api.refresh(number)
    refreshed = await api.ok("GET", f"/v1/accounts/{number}")
    assert refreshed["metrics"]["totalInvoiceBalance"] == Decimal("31.00")
    summary = await api.ok("GET", f"/v1/accounts/{number}/summary")
    assert summary["basicInfo"]["lastInvoiceDate"] == "2026-05-01"


async def test_switch_to_synchronous_waits_out_an_in_flight_partner_write(
    api: ApiClient, engine: AsyncEngine
) -> None:
    number = (await api.create_account(partner=True))["accountNumber"]
    account = await account_id(api, number)
    tenant = api.tenant

    async def switch(partner: bool) -> None:
        async with engine.begin() as conn:
            await accounts_service.update_account(
                conn, tenant, account, UpdateAccountRequest(partner_account=partner)
            )

    async with engine.connect() as writer:
        writer_transaction = await writer.begin()
        await create_posted(writer, tenant, account, "60.00", date(2026, 7, 1))
        switching = asyncio.create_task(switch(False))
        await asyncio.sleep(0.3)
        assert not switching.done()  # the switch waits for the writer acting on the old flag
        await writer_transaction.commit()
    await asyncio.wait_for(switching, timeout=10)

    # The in-flight write is in the recomputed metrics and its change row is gone.
    stored = await snapshot(engine, tenant, account)
    assert stored.pending_changes == 0
    assert stored.last_metrics_update is None
    assert stored.metrics == await recomputed(engine, tenant, account)
    assert stored.metrics.total_invoice_balance == Decimal("60.00")


async def test_write_queued_behind_a_switch_uses_the_new_flag(
    api: ApiClient, engine: AsyncEngine
) -> None:
    number = (await api.create_account(partner=True))["accountNumber"]
    account = await account_id(api, number)
    tenant = api.tenant

    async def write() -> None:
        async with engine.begin() as conn:
            await create_posted(conn, tenant, account, "12.34", date(2026, 8, 1))

    async with engine.connect() as switcher:
        switch_transaction = await switcher.begin()
        await accounts_service.update_account(
            switcher, tenant, account, UpdateAccountRequest(partner_account=False)
        )
        writing = asyncio.create_task(write())
        await asyncio.sleep(0.3)
        assert not writing.done()  # the writer waits for the flag to settle
        await switch_transaction.commit()
    await asyncio.wait_for(writing, timeout=10)

    # It saw partnerAccount = false: metrics updated synchronously, no change row.
    stored = await snapshot(engine, tenant, account)
    assert stored.pending_changes == 0
    assert stored.metrics.total_invoice_balance == Decimal("12.34")
    assert stored.metrics == await recomputed(engine, tenant, account)


async def test_single_invoice_raced_by_a_switch_takes_the_general_way(
    api: ApiClient, engine: AsyncEngine
) -> None:
    """`POST /v1/invoices` on a partner account reads the account unlocked, then writes in one
    guarded statement: a switch committed in between leaves the guard nothing to insert, and the
    request runs in a transaction on the new flag."""
    number = (await api.create_account(partner=True))["accountNumber"]
    account = await account_id(api, number)
    tenant = api.tenant
    request = one_item_invoice("43.21", date(2026, 8, 1), account_number=number)

    async with engine.connect() as switcher:
        switch_transaction = await switcher.begin()
        await accounts_service.update_account(
            switcher, tenant, account, UpdateAccountRequest(partner_account=False)
        )
        # The unlocked read still sees the committed flag (partner); the statement waits.
        writing = asyncio.create_task(invoice_creation.create_invoice(tenant, request))
        await asyncio.sleep(0.3)
        assert not writing.done()
        await switch_transaction.commit()
    invoice = await asyncio.wait_for(writing, timeout=10)

    assert invoice["status"] == "Posted" and invoice["invoiceNumber"].startswith("INV")
    stored = await snapshot(engine, tenant, account)
    assert stored.pending_changes == 0  # no change row: the write was synchronous
    assert stored.metrics.total_invoice_balance == Decimal("43.21")
    assert stored.metrics == await recomputed(engine, tenant, account)
    async with engine.connect() as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM invoices WHERE tenant_id = :t AND account_id = :a"),
            {"t": tenant.id, "a": account},
        )
    assert count == 1


async def test_single_invoice_on_a_canceled_partner_account_writes_nothing(
    api: ApiClient, engine: AsyncEngine
) -> None:
    number = (await api.create_account(partner=True))["accountNumber"]
    account = await account_id(api, number)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE accounts SET status = 'Canceled' WHERE tenant_id = :t AND id = :a"),
            {"t": api.tenant.id, "a": account},
        )
    status, payload = await api.call("POST", "/v1/invoices", invoice_body(number, "5.00"))
    assert status == 200 and payload["success"] is False, (
        payload
    )  # Zuora: business rules answer 200
    assert payload["reasons"][0]["code"] % 100 == 30
    assert "canceled" in payload["reasons"][0]["message"]
    stored = await snapshot(engine, api.tenant, account)
    assert stored.pending_changes == 0
    assert stored.metrics.total_invoice_balance == 0


async def test_a_remembered_partner_account_is_checked_by_every_write(
    api: ApiClient, engine: AsyncEngine
) -> None:
    """`POST /v1/invoices` remembers the partner accounts it wrote to and skips reading them next
    time; a write prepared on a stale memory must not land on it."""
    number = (await api.create_account(partner=True))["accountNumber"]
    account = await account_id(api, number)
    tenant = api.tenant
    first = await api.ok("POST", "/v1/invoices", invoice_body(number, "1.00"))
    assert first["dueDate"] == "2026-11-01"
    assert accounts_service.RECENT_PARTNER_ACCOUNTS.get(tenant, number) is not None

    # A profile edit: the next invoice follows the new payment term.
    await api.ok("PUT", f"/v1/accounts/{number}", {"paymentTerm": "Net 30"})
    second = await api.ok("POST", "/v1/invoices", invoice_body(number, "2.00"))
    assert second["dueDate"] == "2026-12-01" and second["paymentTerm"] == "Net 30"

    # A switch to synchronous metrics: the next invoice moves them at once, logs no change.
    await api.ok("POST", f"/v1/partnerbill/accounts/{number}/refresh-metrics")
    await api.ok("PUT", f"/v1/accounts/{number}", {"partnerAccount": False})
    await api.ok("POST", "/v1/invoices", invoice_body(number, "4.00"))
    stored = await snapshot(engine, tenant, account)
    assert stored.pending_changes == 0
    assert stored.metrics.total_invoice_balance == Decimal("7.00")
    assert accounts_service.RECENT_PARTNER_ACCOUNTS.get(tenant, number) is None

    # Partner again and remembered again; then canceled behind the memory's back.
    await api.ok("PUT", f"/v1/accounts/{number}", {"partnerAccount": True})
    await api.ok("POST", "/v1/invoices", invoice_body(number, "8.00"))
    assert accounts_service.RECENT_PARTNER_ACCOUNTS.get(tenant, number) is not None
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE accounts SET status = 'Canceled' WHERE tenant_id = :t AND id = :a"),
            {"t": tenant.id, "a": account},
        )
    _status, payload = await api.call("POST", "/v1/invoices", invoice_body(number, "16.00"))
    assert payload["success"] is False and "canceled" in payload["reasons"][0]["message"]
    await api.refresh(number)
    stored = await snapshot(engine, tenant, account)
    assert stored.metrics.total_invoice_balance == Decimal("15.00")
    assert stored.metrics == await recomputed(engine, tenant, account)


async def test_bill_run_owner_locks_hold_off_a_switch(api: ApiClient, engine: AsyncEngine) -> None:
    """`lock_many_for_write` (bill runs lock their invoice owners in one statement) reads every
    account asked for, skips unknown ids, and holds each `FOR KEY SHARE` like `lock_for_write`."""
    partner = await account_id(api, (await api.create_account(partner=True))["accountNumber"])
    plain = await account_id(api, (await api.create_account(partner=False))["accountNumber"])
    tenant = api.tenant

    async def switch() -> None:
        async with engine.begin() as conn:
            await accounts_service.update_account(
                conn, tenant, partner, UpdateAccountRequest(partner_account=False)
            )

    async with engine.connect() as writer:
        writer_transaction = await writer.begin()
        locked = await accounts_service.lock_many_for_write(
            writer, tenant, [plain, partner, "f" * 32, plain]
        )
        assert set(locked) == {partner, plain}
        assert locked[partner].partner_account and not locked[plain].partner_account
        switching = asyncio.create_task(switch())
        await asyncio.sleep(0.3)
        assert not switching.done()
        await writer_transaction.commit()
    await asyncio.wait_for(switching, timeout=10)


# -- the scheduler ---------------------------------------------------------------------------------


async def set_last_update(
    engine: AsyncEngine, tenant: Tenant, account: str, ago: str | None
) -> None:
    """Backdate (or clear) an account's lastMetricsUpdate, as if refreshed `ago` in the past."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE account_metrics SET last_metrics_update = "
                "CASE WHEN CAST(:ago AS text) IS NULL THEN NULL "
                "ELSE now() - CAST(:ago AS interval) END "
                "WHERE tenant_id = :t AND account_id = :a"
            ),
            {"ago": ago, "t": tenant.id, "a": account},
        )


async def test_scheduler_refreshes_due_partner_accounts_only(
    api: ApiClient, engine: AsyncEngine
) -> None:
    tenant = api.tenant
    await api.ok("PUT", "/v1/partnerbill/settings", {"metricsRefreshIntervalSeconds": 600})

    async def partner_with_pending(amount: str) -> tuple[str, str]:
        number = (await api.create_account(partner=True))["accountNumber"]
        await api.ok("POST", "/v1/invoices", invoice_body(number, amount))
        return number, await account_id(api, number)

    due_number, due = await partner_with_pending("10.00")
    await set_last_update(engine, tenant, due, "11 minutes")
    never_number, never_refreshed = await partner_with_pending("20.00")
    await set_last_update(engine, tenant, never_refreshed, None)
    recent_number, recent = await partner_with_pending("30.00")
    await set_last_update(engine, tenant, recent, "5 minutes")
    idle_number = (await api.create_account(partner=True))["accountNumber"]
    idle = await account_id(api, idle_number)
    await set_last_update(engine, tenant, idle, "2 hours")  # due by time, but nothing pending

    plain_number = (await api.create_account(partner=False))["accountNumber"]
    plain = await account_id(api, plain_number)
    await api.ok("POST", "/v1/invoices", invoice_body(plain_number, "40.00"))
    # A stray change row on a non-partner account: only the partner flag keeps it unrefreshed.
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO metrics_changes (tenant_id, account_id) VALUES (:t, :a)"),
            {"t": tenant.id, "a": plain},
        )
    await set_last_update(engine, tenant, plain, "2 hours")
    plain_before = await snapshot(engine, tenant, plain)
    recent_before = await snapshot(engine, tenant, recent)
    idle_before = await snapshot(engine, tenant, idle)

    refreshed = await refresh_due_partner_accounts()
    assert refreshed >= 2

    for account, amount in ((due, "10.00"), (never_refreshed, "20.00")):
        state = await snapshot(engine, tenant, account)
        assert state.pending_changes == 0
        assert state.metrics.total_invoice_balance == Decimal(amount)
        assert state.metrics == await recomputed(engine, tenant, account)
        assert state.last_metrics_update is not None
    # Refreshed just now (the backdated stamp was replaced).
    assert (
        await snapshot(engine, tenant, due)
    ).last_metrics_update > recent_before.last_metrics_update

    # Refreshed 5 minutes ago with a 10-minute interval: not due, left alone.
    assert await snapshot(engine, tenant, recent) == recent_before
    assert recent_before.pending_changes == 1
    assert recent_before.metrics.total_invoice_balance == 0
    # Nothing pending: nothing to do.
    assert await snapshot(engine, tenant, idle) == idle_before
    # Non-partner: never touched by the scheduler.
    assert await snapshot(engine, tenant, plain) == plain_before
    assert plain_before.pending_changes == 1

    # The tenant interval is what decides: at 60 s, 5 minutes ago is due.
    await api.ok("PUT", "/v1/partnerbill/settings", {"metricsRefreshIntervalSeconds": 60})
    await refresh_due_partner_accounts()
    state = await snapshot(engine, tenant, recent)
    assert state.pending_changes == 0
    assert state.metrics.total_invoice_balance == Decimal("30.00")
    assert state.metrics == await recomputed(engine, tenant, recent)
    assert await snapshot(engine, tenant, plain) == plain_before
    assert (await api.ok("GET", f"/v1/accounts/{recent_number}"))["metrics"][
        "totalInvoiceBalance"
    ] == Decimal("30.00")
    assert (await api.ok("GET", f"/v1/accounts/{due_number}"))["metricsFreshness"][
        "pendingChanges"
    ] == 0
    assert (await api.ok("GET", f"/v1/accounts/{never_number}"))["basicInfo"][
        "lastMetricsUpdate"
    ] is not None


async def test_scheduler_skips_an_account_whose_refresh_is_in_progress(
    api: ApiClient, engine: AsyncEngine
) -> None:
    tenant = api.tenant
    number = (await api.create_account(partner=True))["accountNumber"]
    account = await account_id(api, number)
    await api.ok("POST", "/v1/invoices", invoice_body(number, "9.00"))
    await set_last_update(engine, tenant, account, "2 hours")  # due
    before = await snapshot(engine, tenant, account)

    async with engine.connect() as holder:
        transaction = await holder.begin()
        await holder.execute(
            text(
                "SELECT 1 FROM account_metrics WHERE tenant_id = :t AND account_id = :a FOR UPDATE"
            ),
            {"t": tenant.id, "a": account},
        )
        await asyncio.wait_for(refresh_due_partner_accounts(), timeout=10)
        await transaction.rollback()

    skipped = await snapshot(engine, tenant, account)
    assert skipped == before
    assert skipped.pending_changes == 1
    await refresh_due_partner_accounts()
    done = await snapshot(engine, tenant, account)
    assert done.pending_changes == 0
    assert done.last_metrics_update > before.last_metrics_update
    assert done.metrics.total_invoice_balance == Decimal("9.00")
