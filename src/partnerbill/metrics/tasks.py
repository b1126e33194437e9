"""The periodic metrics refresh.

procrastinate's periodic tasks have one-minute resolution, so one tick a minute refreshes every
partner account whose tenant interval has elapsed and that has pending changes; intervals from a
minute up are served, anything faster by the on-demand refresh. Each account is refreshed in
short transactions of its own, at most `FOLD_CHUNK_CHANGES` changes each, so a backlog of any
size holds no transaction long; `SKIP LOCKED` lets several workers tick at once safely. After a
large fold the change log's index is rebuilt and the table vacuumed at once: dead rows would slow
every account read.
"""

import time
from datetime import datetime

import structlog
from procrastinate import Blueprint
from sqlalchemy.exc import DBAPIError

from partnerbill.core.db import autocommit, transaction
from partnerbill.core.tenants import Tenant
from partnerbill.metrics.service import (
    REFRESH_ACCOUNTS_PER_TICK,
    VACUUM_AFTER_FOLDED_CHANGES,
    RefreshResult,
    due_partner_accounts,
    fold_changes,
    observe_refresh,
    vacuum_change_log,
)

log = structlog.get_logger(__name__)
metrics_tasks = Blueprint()


async def refresh_partner_account(
    tenant: Tenant, account_id: str, *, wait: bool = False
) -> RefreshResult | None:
    """Fold the account's pending changes a chunk per transaction, then recompute (in the
    transaction of the last chunk). None when another refresh holds the account."""
    started = time.perf_counter()
    folded = 0
    oldest: datetime | None = None
    while True:
        async with transaction() as conn:
            step = await fold_changes(conn, tenant, account_id, wait=wait)
        if step is None:
            return None  # another refresh has it (and folds the rest)
        folded += step.folded_changes
        oldest = oldest or step.oldest_change
        if step.result is not None:
            break
    result = RefreshResult(
        account_id,
        folded,
        step.result.metrics,
        step.result.refreshed_at,
        time.perf_counter() - started,
    )
    observe_refresh(result, oldest)
    if folded >= VACUUM_AFTER_FOLDED_CHANGES:
        await clean_change_log()
    return result


async def clean_change_log() -> None:
    """`vacuum_change_log` on a connection of its own; a failure leaves the refresh committed and
    the dead rows to autovacuum (migration 0005's thresholds)."""
    try:
        async with autocommit() as conn:
            await vacuum_change_log(conn)
    except DBAPIError:
        log.warning("change_log_vacuum_failed", exc_info=True)


@metrics_tasks.task(queue="metrics", name="vacuum_change_log")
async def vacuum_change_log_after_fold() -> None:
    """Deferred by a large fold in a request's transaction (the on-demand refresh)."""
    await clean_change_log()


async def refresh_due_partner_accounts(limit: int = REFRESH_ACCOUNTS_PER_TICK) -> int:
    """Refresh the due partner accounts; returns how many were refreshed."""
    async with transaction() as conn:
        due = await due_partner_accounts(conn, limit)
    refreshed = 0
    for tenant, account_id in due:
        result = await refresh_partner_account(tenant, account_id)
        if result is not None:
            refreshed += 1
            log.info(
                "metrics_refreshed",
                tenant_id=tenant.id,
                account_id=account_id,
                folded_changes=result.folded_changes,
                duration_ms=round(result.duration_seconds * 1000, 3),
            )
    return refreshed


@metrics_tasks.periodic(cron="* * * * *", periodic_id="refresh-partner-metrics")
@metrics_tasks.task(queue="metrics", name="refresh_partner_metrics")
async def refresh_partner_metrics(timestamp: int) -> int:
    return await refresh_due_partner_accounts()
