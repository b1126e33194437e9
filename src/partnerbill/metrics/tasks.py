"""The metrics refresh loop.

The worker that serves the `metrics` queue runs `refresh_loop` beside its jobs: every
`REFRESH_POLL_SECONDS` it refreshes each partner account that has pending changes and whose
tenant interval (1 s and up) has elapsed since its last refresh. procrastinate's periodic tasks
tick once a minute, too coarse for an interval of seconds, hence a loop of its own.

It polls instead of waiting for a NOTIFY from the writers: a transaction that notifies takes a
database-wide lock at commit, which would queue every partner write behind the others, while the
poll is one indexed query over the partner accounts. A fold costs what the folded change rows
carry, not the account's size, so polling this often is cheap even on a 200,000-document account.

Each account is refreshed in short transactions of its own, at most `FOLD_CHUNK_CHANGES` changes
each, so a backlog of any size holds no transaction long; `SKIP LOCKED` lets several workers
poll at once safely (each account is folded by one of them). After a large fold the change log's
index is rebuilt and the table vacuumed at once: dead rows would slow every account read.
"""

import asyncio
import contextlib
import time
from datetime import datetime

import structlog
from procrastinate import Blueprint
from sqlalchemy.exc import DBAPIError

from partnerbill.core.db import autocommit, transaction
from partnerbill.core.jobs import DATABASE_ERRORS
from partnerbill.core.processes import Backoff
from partnerbill.core.tenants import Tenant
from partnerbill.metrics.refresh import (
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


# How often the loop looks for due accounts: a 1 s interval is then served within 1.25 s.
REFRESH_POLL_SECONDS = 0.25


async def refresh_loop(stopping: asyncio.Event) -> None:
    """Refresh due partner accounts until `stopping` is set. A lost database is waited out
    (`Backoff`: 1 s, doubling up to 30 s) and the loop goes on; nothing is lost meanwhile, as
    the changes wait in the change log."""
    backoff = Backoff()
    while not stopping.is_set():
        try:
            refreshed = await refresh_due_partner_accounts()
        except DATABASE_ERRORS as error:
            delay = backoff.next_delay()
            log.warning("metrics_refresh_lost_database", error=repr(error), in_seconds=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
            continue
        backoff.started()
        if refreshed < REFRESH_ACCOUNTS_PER_TICK:  # a full round: more may be due at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), REFRESH_POLL_SECONDS)
