"""The query surfaces' background tasks, on the `exports` queue, and the purge of their leftovers
(on `maintenance`).

Each surface registers its job task on `query_tasks` (namespace `query`), in any module of the
`partnerbill.query` package: `loaded_query_tasks` imports them all before the blueprint joins
the app (procrastinate copies a blueprint's tasks when it is added). Tasks are declared with
`retry=QUERY_JOB_RETRY`: a task whose `start_job` meets the tenant's running limit raises
`RunningLimitReached` and runs again `RETRY_WAIT_SECONDS` later, as long as it takes (the job
stays `accepted`, and a cancel ends the wait). Any other error is the task's to record
(`fail_job`); it is not retried.

The purge runs every 10 minutes and deletes, in batches of `PURGE_BATCH` per run:
- expired files, with their chunks (each surface chooses its files' lifetime);
- incomplete files older than `files.ABANDONED_AFTER` (their writer died);
- finished jobs (completed, failed, cancelled) last changed more than `JOB_RETENTION` ago: 180
  days, how long Zuora keeps completed AQuA jobs. A job outlives its file: its status still reads,
  its file answers 404.
"""

import importlib
import pkgutil
from datetime import timedelta

from procrastinate import Blueprint, RetryStrategy
from sqlalchemy import delete, func, or_, select, tuple_

from partnerbill.core.db import autocommit
from partnerbill.query.files import ABANDONED_AFTER
from partnerbill.query.jobs import JobStatus, RunningLimitReached
from partnerbill.tables.query import query_jobs, result_files

QUEUE = "exports"
RETRY_WAIT_SECONDS = 5
QUERY_JOB_RETRY = RetryStrategy(wait=RETRY_WAIT_SECONDS, retry_exceptions={RunningLimitReached})
JOB_RETENTION = timedelta(days=180)
PURGE_BATCH = 1000

query_tasks = Blueprint()


def loaded_query_tasks() -> Blueprint:
    """`query_tasks` with every surface's tasks registered on it."""
    import partnerbill.query

    for module in pkgutil.iter_modules(partnerbill.query.__path__):
        importlib.import_module(f"partnerbill.query.{module.name}")
    return query_tasks


async def purge_files(batch: int = PURGE_BATCH) -> int:
    """Delete up to `batch` expired or abandoned files (their chunks go with them)."""
    stale = (
        select(result_files.c.tenant_id, result_files.c.id)
        .where(
            or_(
                result_files.c.expires_at <= func.now(),
                ~result_files.c.complete
                & (result_files.c.created_at < func.now() - ABANDONED_AFTER),
            )
        )
        .limit(batch)
    )
    async with autocommit() as conn:
        result = await conn.execute(
            delete(result_files).where(
                tuple_(result_files.c.tenant_id, result_files.c.id).in_(stale)
            )
        )
    return int(result.rowcount)


async def purge_jobs(batch: int = PURGE_BATCH) -> int:
    """Delete up to `batch` jobs finished more than `JOB_RETENTION` ago."""
    old = (
        select(query_jobs.c.tenant_id, query_jobs.c.id)
        .where(
            query_jobs.c.status.in_((JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)),
            query_jobs.c.updated_at < func.now() - JOB_RETENTION,
        )
        .limit(batch)
    )
    async with autocommit() as conn:
        result = await conn.execute(
            delete(query_jobs).where(tuple_(query_jobs.c.tenant_id, query_jobs.c.id).in_(old))
        )
    return int(result.rowcount)


@query_tasks.periodic(cron="*/10 * * * *", periodic_id="purge-query-results")
@query_tasks.task(queue="maintenance", name="purge_query_results")
async def purge_query_results(timestamp: int) -> dict[str, int]:
    """Expired result files and old finished jobs, a bounded batch of each."""
    return {"files": await purge_files(), "jobs": await purge_jobs()}
