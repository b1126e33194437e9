"""A refresh that folds a large backlog leaves account reads as fast as before.

The backlog is seeded in SQL (as that many partner writes would leave it). The scheduler's
refresh folds it a chunk per transaction, then rebuilds the change log's index and vacuums it,
so the account read's pending count goes on using the index without walking dead entries.
`bench/refresh_backlog.py` measures the same at 1M changes.
"""

import time

from bench.refresh_backlog import change_log_scans, read_plan, seed_changes
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from partnerbill.core.ids import new_id
from partnerbill.metrics import refresh as metric_refresh
from partnerbill.metrics import service as metrics
from partnerbill.metrics.tasks import refresh_partner_account, vacuum_change_log_after_fold
from tests.helpers import ApiClient, invoice_body

BACKLOG = 200_000
# Other accounts' pending changes: a change log that is not all one account's, as in production.
NEIGHBOURS, NEIGHBOUR_CHANGES = 40, 500
FOLD_SECONDS_MAX = 60
# Buffers the pending count may read after the fold: a few index pages, not the dead backlog
# (about 1,000 index pages per 200,000 dead entries).
READ_BUFFERS_MAX = 50


async def _partner_account_with_invoices(api: ApiClient) -> str:
    number = (await api.create_account(partner=True))["accountNumber"]
    for amount in ("10.00", "2.50", "0.25"):
        await api.ok("POST", "/v1/invoices", invoice_body(number, amount))
    return str((await api.ok("GET", f"/v1/accounts/{number}"))["basicInfo"]["id"])


async def test_folding_a_large_backlog_leaves_the_account_read_on_the_index(
    api: ApiClient, engine: AsyncEngine
) -> None:
    tenant = api.tenant
    account = await _partner_account_with_invoices(api)
    for _ in range(NEIGHBOURS):
        await seed_changes(engine, tenant, new_id(), NEIGHBOUR_CHANGES)
    await seed_changes(engine, tenant, account, BACKLOG)

    started = time.monotonic()
    result = await refresh_partner_account(tenant, account, wait=True)
    assert time.monotonic() - started < FOLD_SECONDS_MAX
    assert result is not None
    assert result.folded_changes == BACKLOG + 3

    async with engine.connect() as conn:
        plan = await read_plan(conn, tenant, account)
        stored = await metrics.read_metrics(conn, tenant, account)
        exact = await metrics.recompute(conn, tenant, account)
    scans = change_log_scans(plan["Plan"])
    assert scans and all("Seq Scan" not in scan["Node Type"] for scan in scans), scans
    buffers = sum(s.get("Shared Hit Blocks", 0) + s.get("Shared Read Blocks", 0) for s in scans)
    assert buffers <= READ_BUFFERS_MAX, scans
    assert stored.pending_changes == 0
    assert stored.metrics == exact
    assert str(exact.total_invoice_balance) == "12.75"


async def test_a_refresh_cut_off_between_chunks_leaves_the_account_pending(
    api: ApiClient, engine: AsyncEngine
) -> None:
    tenant = api.tenant
    account = await _partner_account_with_invoices(api)
    await seed_changes(engine, tenant, account, 5_000)
    async with engine.connect() as conn:
        before = await metrics.read_metrics(conn, tenant, account)

    # One chunk commits, then the refresh dies: no recompute yet, and changes stay pending.
    async with engine.begin() as conn:
        step = await metric_refresh.fold_changes(conn, tenant, account, wait=True, chunk=1_000)
    assert step is not None and step.result is None and step.folded_changes == 1_000
    async with engine.connect() as conn:
        cut_off = await metrics.read_metrics(conn, tenant, account)
        remaining = await conn.scalar(
            text("SELECT count(*) FROM metrics_changes WHERE tenant_id = :t AND account_id = :a"),
            {"t": tenant.id, "a": account},
        )
    assert remaining == 5_003 - 1_000
    assert cut_off.pending_changes > 0
    assert cut_off.last_metrics_update == before.last_metrics_update

    # The next refresh folds the rest and recomputes.
    result = await refresh_partner_account(tenant, account)
    assert result is not None and result.folded_changes == 4_003
    async with engine.connect() as conn:
        stored = await metrics.read_metrics(conn, tenant, account)
        assert stored.metrics == await metrics.recompute(conn, tenant, account)
    assert stored.pending_changes == 0


async def test_a_large_on_demand_fold_has_the_worker_clean_the_change_log(
    api: ApiClient, engine: AsyncEngine
) -> None:
    tenant = api.tenant
    account = await _partner_account_with_invoices(api)
    for _ in range(NEIGHBOURS):
        await seed_changes(engine, tenant, new_id(), NEIGHBOUR_CHANGES)
    await seed_changes(engine, tenant, account, metric_refresh.VACUUM_AFTER_FOLDED_CHANGES)

    async with engine.connect() as conn:
        queued_before = await _queued_cleanups(conn)
    # The on-demand refresh folds in the request's transaction, where no VACUUM can run.
    refreshed = await api.refresh(account)
    assert refreshed["foldedChanges"] == metric_refresh.VACUUM_AFTER_FOLDED_CHANGES + 3
    async with engine.connect() as conn:
        assert await _queued_cleanups(conn) == queued_before + 1

    await vacuum_change_log_after_fold()  # the job, as the worker runs it
    async with engine.connect() as conn:
        scans = change_log_scans((await read_plan(conn, tenant, account))["Plan"])
    assert scans and all("Seq Scan" not in scan["Node Type"] for scan in scans), scans
    buffers = sum(s.get("Shared Hit Blocks", 0) + s.get("Shared Read Blocks", 0) for s in scans)
    assert buffers <= READ_BUFFERS_MAX, scans


async def _queued_cleanups(conn: AsyncConnection) -> int:
    return int(
        await conn.scalar(
            text(
                "SELECT count(*) FROM procrastinate_jobs "
                "WHERE task_name = 'metrics:vacuum_change_log' AND status = 'todo'"
            )
        )
        or 0
    )


async def test_the_lock_bound_limits_the_wait_not_the_fold(
    api: ApiClient, engine: AsyncEngine
) -> None:
    """An on-demand refresh waits at most `lockWaitMs` for the account's metrics row; the fold
    that follows, however large, is not cut at that bound (it is no lock wait)."""
    tenant = api.tenant
    account = await _partner_account_with_invoices(api)
    await seed_changes(engine, tenant, account, 100_000)
    await api.ok("PUT", "/v1/partnerbill/settings", {"lockWaitMs": 1})
    refreshed = await api.refresh(account)
    assert refreshed["foldedChanges"] == 100_003
    async with engine.connect() as conn:
        stored = await metrics.read_metrics(conn, tenant, account)
        assert stored.metrics == await metrics.recompute(conn, tenant, account)
