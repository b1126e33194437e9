"""Concurrency of the metrics engine (docs/architecture.md) with real parallel connections: many
HTTP requests at once against the real server (uvicorn, two worker processes), and locks held open
on separate database connections to force the contended paths deterministically."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from partnerbill.billing import creation as invoice_creation
from partnerbill.billing import service as billing
from partnerbill.core.errors import LOCK_COMPETITION_MESSAGE
from partnerbill.core.tenants import Tenant
from partnerbill.metrics import refresh as metric_refresh
from partnerbill.metrics import service as metrics
from tests.helpers import ApiClient, invoice_body, one_item_invoice

PARALLEL = 32


def amounts_for(n: int) -> list[Decimal]:
    """Distinct amounts, so a lost or doubled invoice always changes the sum."""
    return [Decimal(1000 + 37 * i).scaleb(-2) + Decimal("0.01") * (i % 7) for i in range(n)]


def assert_lock_competition(payload: dict[str, Any]) -> None:
    assert payload["success"] is False, payload
    (reason,) = payload["reasons"]
    assert reason["code"] % 100 == 50, reason
    assert reason["message"] == LOCK_COMPETITION_MESSAGE, reason


async def account_id(api: ApiClient, number: str) -> str:
    return str((await api.ok("GET", f"/v1/accounts/{number}"))["basicInfo"]["id"])


async def invoice_rows(engine: AsyncEngine, tenant: Tenant, account: str) -> int:
    async with engine.connect() as conn:
        return int(
            await conn.scalar(
                text("SELECT count(*) FROM invoices WHERE tenant_id = :t AND account_id = :a"),
                {"t": tenant.id, "a": account},
            )
        )


async def stored_and_recomputed(
    engine: AsyncEngine, tenant: Tenant, account: str
) -> tuple[metrics.MetricsSnapshot, metrics.AccountMetrics]:
    async with engine.begin() as conn:
        return (
            await metrics.read_metrics(conn, tenant, account),
            await metrics.recompute(conn, tenant, account),
        )


@asynccontextmanager
async def holding_metrics_row(
    engine: AsyncEngine, tenant: Tenant, account: str
) -> AsyncIterator[AsyncConnection]:
    """The account's metrics row locked FOR UPDATE by an open transaction, until the block ends."""
    async with engine.connect() as conn:
        transaction = await conn.begin()
        locked = await conn.scalar(
            text(
                "SELECT account_id FROM account_metrics "
                "WHERE tenant_id = :t AND account_id = :a FOR UPDATE"
            ),
            {"t": tenant.id, "a": account},
        )
        assert locked == account
        try:
            yield conn
        finally:
            await transaction.rollback()


# -- (a) partner account: parallel writers never compete ------------------------------------------


async def test_parallel_invoices_on_partner_account_never_compete(
    live_api: ApiClient, engine: AsyncEngine
) -> None:
    number = (await live_api.create_account(partner=True))["accountNumber"]
    account = await account_id(live_api, number)
    amounts = amounts_for(PARALLEL)

    results = await asyncio.gather(
        *(
            live_api.call("POST", "/v1/invoices", invoice_body(number, amount, "0.01"))
            for amount in amounts
        )
    )

    for status, payload in results:
        assert status == 200, payload
        assert payload["success"] is True, payload
    assert len({payload["invoiceNumber"] for _, payload in results}) == PARALLEL
    expected_total = sum(amounts, Decimal(0)) + Decimal("0.01") * PARALLEL
    assert await invoice_rows(engine, live_api.tenant, account) == PARALLEL

    before = await live_api.ok("GET", f"/v1/accounts/{number}")
    assert before["metrics"]["totalInvoiceBalance"] == 0  # deferred until the refresh
    assert before["metricsFreshness"]["pendingChanges"] == PARALLEL

    refreshed = await live_api.refresh(number)
    assert refreshed["foldedChanges"] == PARALLEL

    after = await live_api.ok("GET", f"/v1/accounts/{number}")
    assert after["metrics"]["totalInvoiceBalance"] == expected_total
    assert after["metrics"]["balance"] == expected_total
    assert after["metricsFreshness"]["pendingChanges"] == 0
    assert after["basicInfo"]["lastMetricsUpdate"] == refreshed["lastMetricsUpdate"]
    stored, recomputed = await stored_and_recomputed(engine, live_api.tenant, account)
    assert stored.metrics == recomputed
    assert recomputed.total_invoice_balance == expected_total


# -- (b) non-partner account: bounded waits, clean failures ---------------------------------------


async def test_parallel_invoices_on_non_partner_account_fail_cleanly_or_succeed(
    live_api: ApiClient, engine: AsyncEngine
) -> None:
    settings = await live_api.ok("PUT", "/v1/partnerbill/settings", {"lockWaitMs": 1})
    assert settings["lockWaitMs"] == 1
    number = (await live_api.create_account(partner=False))["accountNumber"]
    account = await account_id(live_api, number)
    amounts = amounts_for(PARALLEL)
    # Many items make each transaction longer, so the writers overlap on the metrics row.
    bodies = [
        invoice_body(
            number, *([amount] + [Decimal("0.01")] * 40), invoice_date=f"2026-03-{1 + i % 28:02d}"
        )
        for i, amount in enumerate(amounts)
    ]

    results = await asyncio.gather(*(live_api.call("POST", "/v1/invoices", b) for b in bodies))

    succeeded_total = Decimal(0)
    succeeded_dates: list[date] = []
    successes = failures = 0
    for status, payload in results:
        assert status == 200, payload
        if payload["success"]:
            successes += 1
            succeeded_total += payload["amount"]
            succeeded_dates.append(payload["invoiceDate"])
        else:
            failures += 1
            assert_lock_competition(payload)
    assert successes + failures == PARALLEL
    print(f"non-partner contention: {successes} succeeded, {failures} lock errors")
    assert successes >= 1  # the first writer to reach the row never waits
    # No failed request left an invoice behind; every successful one did.
    assert await invoice_rows(engine, live_api.tenant, account) == successes

    stored, recomputed = await stored_and_recomputed(engine, live_api.tenant, account)
    assert stored.metrics == recomputed
    assert recomputed.total_invoice_balance == succeeded_total
    assert stored.pending_changes == 0
    summary = await live_api.ok("GET", f"/v1/accounts/{number}/summary")
    assert summary["basicInfo"]["lastInvoiceDate"] == max(succeeded_dates)
    assert Decimal(summary["basicInfo"]["balance"]) == succeeded_total
    account_json = await live_api.ok("GET", f"/v1/accounts/{number}")
    assert account_json["metrics"]["totalInvoiceBalance"] == succeeded_total
    assert account_json["basicInfo"]["lastMetricsUpdate"] is None


async def test_held_metrics_lock_fails_non_partner_write_within_the_bound(
    live_api: ApiClient, engine: AsyncEngine
) -> None:
    lock_wait_ms = 300
    await live_api.ok("PUT", "/v1/partnerbill/settings", {"lockWaitMs": lock_wait_ms})
    number = (await live_api.create_account(partner=False))["accountNumber"]
    account = await account_id(live_api, number)
    posted = await live_api.ok("POST", "/v1/invoices", invoice_body(number, "40.00"))
    draft = await live_api.ok(
        "POST",
        "/v1/invoices",
        invoice_body(number, "7.00", status="Draft", invoice_date="2026-12-01"),
    )
    tenant = live_api.tenant

    async with holding_metrics_row(engine, tenant, account):
        for method, path, body in [
            ("POST", "/v1/invoices", invoice_body(number, "5.00", invoice_date="2026-12-24")),
            ("PUT", f"/v1/invoices/{draft['id']}/post", None),
            ("PUT", f"/v1/invoices/{posted['id']}/unpost", None),
        ]:
            started = time.monotonic()
            status, payload = await live_api.call(method, path, body)
            elapsed = time.monotonic() - started
            assert status == 200, payload
            assert_lock_competition(payload)
            assert elapsed >= lock_wait_ms / 1000, elapsed  # it did wait for the lock ...
            assert elapsed < lock_wait_ms / 1000 + 3, elapsed  # ... and no longer than the bound

    # Nothing of the failed writes stayed: one row each for the two invoices created before.
    assert await invoice_rows(engine, tenant, account) == 2
    assert (await live_api.ok("GET", f"/v1/invoices/{draft['id']}"))["status"] == "Draft"
    assert (await live_api.ok("GET", f"/v1/invoices/{posted['id']}"))["status"] == "Posted"
    stored, recomputed = await stored_and_recomputed(engine, tenant, account)
    assert stored.metrics == recomputed
    assert recomputed.total_invoice_balance == Decimal("40.00")
    assert recomputed.last_invoice_date == date(2026, 11, 1)

    # Lock released: the same writes now go through.
    await live_api.ok("PUT", f"/v1/invoices/{draft['id']}/post")
    await live_api.ok(
        "POST", "/v1/invoices", invoice_body(number, "5.00", invoice_date="2026-12-24")
    )
    stored, recomputed = await stored_and_recomputed(engine, tenant, account)
    assert stored.metrics == recomputed
    assert recomputed.total_invoice_balance == Decimal("52.00")
    assert recomputed.last_invoice_date == date(2026, 12, 24)


# -- (c) partner writes take no shared lock --------------------------------------------------------


async def test_partner_writes_do_not_wait_for_the_metrics_row_or_a_profile_edit(
    live_api: ApiClient, engine: AsyncEngine
) -> None:
    number = (await live_api.create_account(partner=True))["accountNumber"]
    account = await account_id(live_api, number)
    draft = await live_api.ok("POST", "/v1/invoices", invoice_body(number, "3.00", status="Draft"))
    plain_number = (await live_api.create_account(partner=False))["accountNumber"]
    plain = await account_id(live_api, plain_number)
    tenant = live_api.tenant

    async with holding_metrics_row(engine, tenant, account) as holder:
        # Profile edits in progress: the account rows FOR NO KEY UPDATE, as a plain UPDATE takes;
        # and a tenant settings change in progress, likewise on the tenant row.
        await holder.execute(
            text("UPDATE accounts SET notes = 'edited' WHERE tenant_id = :t AND id IN (:a, :p)"),
            {"t": tenant.id, "a": account, "p": plain},
        )
        await holder.execute(
            text("UPDATE tenants SET invoice_batch_limit = invoice_batch_limit WHERE id = :t"),
            {"t": tenant.id},
        )
        writes = [
            ("POST", "/v1/invoices", invoice_body(number, "11.00")),
            ("PUT", f"/v1/invoices/{draft['id']}/post", None),
            ("PUT", f"/v1/invoices/{draft['id']}/unpost", None),
            # A non-partner account whose metrics row is free is not held up by the edits either.
            ("POST", "/v1/invoices", invoice_body(plain_number, "2.00")),
        ]
        for method, path, body in writes:
            started = time.monotonic()
            status, payload = await asyncio.wait_for(live_api.call(method, path, body), timeout=5)
            elapsed = time.monotonic() - started
            assert status == 200, payload
            assert payload["success"] is True, payload
            assert elapsed < 2, elapsed
        # Parallel partner writes while both rows are held: none waits either.
        results = await asyncio.wait_for(
            asyncio.gather(
                *(
                    live_api.call("POST", "/v1/invoices", invoice_body(number, "1.00"))
                    for _ in range(8)
                )
            ),
            timeout=10,
        )
        assert all(payload["success"] is True for _, payload in results), results

    pending = (await live_api.ok("GET", f"/v1/accounts/{number}"))["metricsFreshness"]
    assert pending["pendingChanges"] == 11
    await live_api.refresh(number)
    stored, recomputed = await stored_and_recomputed(engine, tenant, account)
    assert stored.metrics == recomputed
    assert recomputed.total_invoice_balance == Decimal("19.00")
    stored, recomputed = await stored_and_recomputed(engine, tenant, plain)
    assert stored.metrics == recomputed
    assert recomputed.total_invoice_balance == Decimal("2.00")


# -- (d) two refreshes of one account at once ------------------------------------------------------


async def _post_partner_invoice(
    engine: AsyncEngine, tenant: Tenant, account: str, amount: str
) -> None:
    request = one_item_invoice(amount, date(2026, 5, 1), account_id=account)
    async with engine.begin() as conn:
        await invoice_creation.create_invoices(conn, tenant, [request], all_or_nothing=True)


async def test_concurrent_refresh_skips_the_claimed_account(
    api: ApiClient, engine: AsyncEngine
) -> None:
    number = (await api.create_account(partner=True))["accountNumber"]
    account = await account_id(api, number)
    tenant = api.tenant
    await _post_partner_invoice(engine, tenant, account, "8.00")

    async with engine.connect() as first:
        transaction = await first.begin()
        claimed = await metric_refresh.refresh_account(first, tenant, account, wait=True)
        assert claimed is not None and claimed.folded_changes == 1
        # Meanwhile another change commits; the first refresh still holds its claim.
        await _post_partner_invoice(engine, tenant, account, "2.50")

        async with engine.begin() as second:
            started = time.monotonic()
            skipped = await asyncio.wait_for(
                metric_refresh.refresh_account(second, tenant, account, wait=False), timeout=5
            )
            assert skipped is None
            assert time.monotonic() - started < 1  # SKIP LOCKED: it did not wait
        # The skipping refresh consumed nothing: both change rows are still there for an
        # outside reader (the first refresh's delete of its own is not committed yet).
        async with engine.begin() as conn:
            assert (await metrics.read_metrics(conn, tenant, account)).pending_changes == 2

        # A waiting refresh queues behind the claim and runs once it is released.
        async def waiting_refresh() -> metric_refresh.RefreshResult | None:
            async with engine.begin() as conn:
                return await metric_refresh.refresh_account(conn, tenant, account, wait=True)

        waiter = asyncio.create_task(waiting_refresh())
        await asyncio.sleep(0.3)
        assert not waiter.done()
        await transaction.commit()

    result = await asyncio.wait_for(waiter, timeout=10)
    assert result is not None
    assert result.folded_changes == 1
    assert result.metrics.total_invoice_balance == Decimal("10.50")
    stored, recomputed = await stored_and_recomputed(engine, tenant, account)
    assert stored.metrics == recomputed
    assert stored.pending_changes == 0


# -- (e) the statement timeout of the synchronous path is local to it -----------------------------


async def test_statement_timeout_is_restored_after_a_synchronous_touch(
    api: ApiClient, engine: AsyncEngine
) -> None:
    await api.ok("PUT", "/v1/partnerbill/settings", {"lockWaitMs": 50})
    number = (await api.create_account(partner=False))["accountNumber"]
    account = await account_id(api, number)
    tenant = api.tenant
    request = one_item_invoice("9.99", date(2026, 6, 1), account_id=account)

    async with engine.begin() as conn:
        before = await conn.scalar(text("SHOW statement_timeout"))
        await invoice_creation.create_invoices(conn, tenant, [request], all_or_nothing=True)
        assert await conn.scalar(text("SHOW statement_timeout")) == before
        # A statement longer than the lock bound still runs to the end in the same transaction.
        await conn.execute(text("SELECT pg_sleep(0.2)"))

    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL statement_timeout = '7s'"))
        await billing.post_invoice(conn, tenant, await _new_draft(conn, tenant, account), None)
        assert await conn.scalar(text("SHOW statement_timeout")) == "7s"
        await conn.execute(text("SELECT pg_sleep(0.2)"))

    stored, recomputed = await stored_and_recomputed(engine, tenant, account)
    assert stored.metrics == recomputed
    assert recomputed.total_invoice_balance == Decimal("19.98")


async def _new_draft(conn: AsyncConnection, tenant: Tenant, account: str) -> str:
    request = one_item_invoice("9.99", date(2026, 6, 2), "Draft", account_id=account)
    (outcome,) = await invoice_creation.create_invoices(
        conn, tenant, [request], all_or_nothing=True
    )
    assert outcome.invoice is not None
    return str(outcome.invoice["id"])
