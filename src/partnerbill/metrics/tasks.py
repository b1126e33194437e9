"""The periodic metrics refresh.

procrastinate's periodic tasks have one-minute resolution, so one tick a minute refreshes every
partner account whose tenant interval has elapsed and that has pending changes; intervals from a
minute up are served, anything faster by the on-demand refresh. Each account is refreshed in a
short transaction of its own; `SKIP LOCKED` lets several workers tick at once safely.
"""

import structlog
from procrastinate import Blueprint

from partnerbill.core.db import transaction
from partnerbill.metrics.service import (
    REFRESH_ACCOUNTS_PER_TICK,
    due_partner_accounts,
    refresh_account,
)

log = structlog.get_logger(__name__)
metrics_tasks = Blueprint()


async def refresh_due_partner_accounts(limit: int = REFRESH_ACCOUNTS_PER_TICK) -> int:
    """Refresh the due partner accounts; returns how many were refreshed."""
    async with transaction() as conn:
        due = await due_partner_accounts(conn, limit)
    refreshed = 0
    for tenant, account_id in due:
        async with transaction() as conn:
            result = await refresh_account(conn, tenant, account_id, wait=False)
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
