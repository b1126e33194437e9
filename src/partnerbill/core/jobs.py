"""The procrastinate app: background jobs on the same PostgreSQL.

Jobs that business rows need are deferred inside the same transaction as those rows (a rolled
back request leaves no job). Features register their tasks on blueprints; `build_app` gathers them.
"""

from typing import Any

import procrastinate
from procrastinate import Blueprint
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.db import libpq_url
from partnerbill.core.idempotency import purge_expired_keys

QUEUES = ["metrics", "maintenance", "orders", "billruns"]
# A worker that has not sent a heartbeat for this long is presumed dead; its jobs are retried.
STALLED_AFTER_SECONDS = 60
PURGED_KEYS_PER_RUN = 100_000

maintenance = Blueprint()


@maintenance.periodic(cron="* * * * *", periodic_id="retry-stalled-jobs")
@maintenance.task(queue="maintenance", pass_context=True, name="retry_stalled_jobs")
async def retry_stalled_jobs(context: procrastinate.JobContext, timestamp: int) -> int:
    """Jobs of a worker that died mid-job stay `doing`; put them back in the queue."""
    assert context.app is not None
    manager = context.app.job_manager
    stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER_SECONDS))
    for job in stalled:
        await manager.retry_job(job)
    return len(stalled)


@maintenance.periodic(cron="17 * * * *", periodic_id="purge-idempotency-keys")
@maintenance.task(queue="maintenance", name="purge_idempotency_keys")
async def purge_idempotency_keys(timestamp: int) -> int:
    """Drop expired Idempotency-Key records, a bounded batch an hour."""
    return await purge_expired_keys(PURGED_KEYS_PER_RUN)


_apps: dict[str, procrastinate.App] = {}


def build_app(database_url: str) -> procrastinate.App:
    """The process's procrastinate app for `database_url`, built once: adding the blueprints'
    tasks renames them in place (`namespace:name`), so they must be added only once."""
    conninfo = libpq_url(database_url)
    if conninfo in _apps:
        return _apps[conninfo]
    from partnerbill.billing.tasks import billing_tasks
    from partnerbill.metrics.tasks import metrics_tasks
    from partnerbill.orders.tasks import order_tasks

    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=conninfo, min_size=1, max_size=4)
    )
    app.add_tasks_from(maintenance, namespace="maintenance")
    app.add_tasks_from(metrics_tasks, namespace="metrics")
    app.add_tasks_from(order_tasks, namespace="orders")
    app.add_tasks_from(billing_tasks, namespace="billing")
    _apps[conninfo] = app
    return app


async def defer_in_transaction(conn: AsyncConnection, task_name: str, **arguments: Any) -> None:
    """Defer a job on the caller's transaction: it exists exactly if the transaction commits.
    `task_name` is procrastinate's `namespace:name`; an unknown one is an error, not a job no
    worker would ever run."""
    app = build_app(conn.engine.url.render_as_string(hide_password=False))
    raw = await conn.get_raw_connection()
    deferrer = app.configure_task(task_name, allow_unknown=False, connection=raw.driver_connection)
    await deferrer.defer_async(**arguments)
