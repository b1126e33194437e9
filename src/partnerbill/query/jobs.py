"""Query job records, shared by Data Query, AQuA and export jobs (`kind`: dataquery | aqua |
export); each surface maps the stored statuses to its own words.

Lifecycle: `accepted` (queued) → `in_progress` (running) → `completed` | `failed`; `accepted` and
`in_progress` jobs may be `cancelled`. A finished job never changes again: a cancel that comes
after the end, or an end that comes after a cancel, leaves the job as it was. A task run again
after its worker died finds its job `in_progress` and starts it over (`start_job` says run it);
the file its first run left incomplete is purged.

Limits, per tenant and kind (Data Query's Live limits, applied to AQuA too; exports have Zuora's
own, 50 Pending or Processing, which ETL tools rely on when they probe every object at once):
- `QUEUED_LIMITS[kind]` jobs may be `accepted` at once; a submit past it raises
  `QueryLimitExceeded`.
  The check and the insert run under a transaction-scoped advisory lock of the tenant and kind,
  so parallel submits cannot both pass it; the wait for that lock is bounded by the tenant's
  lockWaitMs (past it, the lock-competition `ZuoraError`).
- `RUNNING_LIMIT` jobs may be `in_progress` at once; `start_job` past it raises
  `RunningLimitReached` and the job stays `accepted`: tasks are declared with
  `tasks.QUERY_JOB_RETRY`, which runs them again a few seconds later.

Task arguments: `submit_job` defers the task with `tenant_id`, `tenant_number` and `job_id`.
Functions a route calls take its connection; those a task calls open their own short
transactions. Job ids are UUIDs in their 36-character form, time-ordered (UUIDv7): a listing is
newest first and pages by keyset (`after` = the last id of the previous page).
"""

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement
from uuid_utils import uuid7

from partnerbill.core.db import autocommit, transaction
from partnerbill.core.jobs import defer_in_transaction
from partnerbill.core.locks import execute_locking
from partnerbill.core.tenants import Tenant
from partnerbill.query.files import delete_file
from partnerbill.tables.query import query_jobs

KINDS = frozenset({"dataquery", "aqua", "export"})
QUEUED_LIMIT = 10
EXPORT_QUEUED_LIMIT = 50
QUEUED_LIMITS = {"dataquery": QUEUED_LIMIT, "aqua": QUEUED_LIMIT, "export": EXPORT_QUEUED_LIMIT}
RUNNING_LIMIT = 5
LIST_PAGE_MAX = 1000
# Seeds the 64-bit hash naming a tenant and kind's advisory lock, apart from other lock users.
_LOCK_SEED = 0x0E_F11E5
_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, :seed))")


class JobStatus(StrEnum):
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE = (JobStatus.ACCEPTED, JobStatus.IN_PROGRESS)


class QueryLimitExceeded(Exception):
    """The tenant has `limit` jobs of `kind` `status` already (queued: accepted, running:
    in_progress)."""

    def __init__(self, kind: str, limit: int, status: str = "queued") -> None:
        super().__init__(f"At most {limit} {kind} jobs may be {status} at once.")
        self.kind = kind
        self.limit = limit
        self.status = status


class RunningLimitReached(QueryLimitExceeded):
    def __init__(self, kind: str) -> None:
        super().__init__(kind, RUNNING_LIMIT, "running")


@dataclass(frozen=True, slots=True)
class QueryJob:
    id: str
    kind: str
    status: JobStatus
    request: dict[str, Any]
    result: dict[str, Any]
    error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: list[QueryJob]
    # The `after` of the next page; None on the last page.
    next_after: str | None


def _job(tenant: Tenant, job_id: str) -> ColumnElement[bool]:
    return (query_jobs.c.tenant_id == tenant.id) & (query_jobs.c.id == job_id)


def _record(row: Any) -> QueryJob:
    return QueryJob(
        id=row.id,
        kind=row.kind,
        status=JobStatus(row.status),
        request=row.request,
        result=row.result,
        error=row.error,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _lock_kind(conn: AsyncConnection, tenant: Tenant, kind: str) -> None:
    """Serialize the limit checks of the tenant's `kind` until the transaction ends."""
    await execute_locking(conn, tenant, _LOCK, {"key": f"{tenant.id}:{kind}", "seed": _LOCK_SEED})


async def _count(conn: AsyncConnection, tenant: Tenant, kind: str, status: JobStatus) -> int:
    return int(
        await conn.scalar(
            select(func.count()).where(
                query_jobs.c.tenant_id == tenant.id,
                query_jobs.c.kind == kind,
                query_jobs.c.status == status,
            )
        )
        or 0
    )


async def submit_job(
    conn: AsyncConnection, tenant: Tenant, kind: str, request: dict[str, Any], task_name: str
) -> str:
    """Record an `accepted` job and defer `task_name` for it on the caller's transaction; the
    job's id. Raises `QueryLimitExceeded` when `QUEUED_LIMITS[kind]` jobs of `kind` are
    queued."""
    assert kind in KINDS, kind
    limit = QUEUED_LIMITS[kind]
    await _lock_kind(conn, tenant, kind)
    if await _count(conn, tenant, kind, JobStatus.ACCEPTED) >= limit:
        raise QueryLimitExceeded(kind, limit)
    job_id = str(uuid7())
    await conn.execute(
        insert(query_jobs).values(
            tenant_id=tenant.id,
            id=job_id,
            kind=kind,
            status=JobStatus.ACCEPTED,
            request=request,
            result={},
        )
    )
    await defer_in_transaction(
        conn, task_name, tenant_id=tenant.id, tenant_number=tenant.number, job_id=job_id
    )
    return job_id


async def start_job(tenant: Tenant, job_id: str) -> bool:
    """accepted → in_progress; whether the task is to run the job. False when it was cancelled
    or has ended. True also for a job already in_progress: its task runs again only when the
    worker that ran it died (procrastinate's stalled-job recovery), and it starts over. Raises
    `RunningLimitReached` when the tenant runs `RUNNING_LIMIT` jobs of its kind."""
    async with transaction() as conn:
        row = (
            await conn.execute(
                select(query_jobs.c.kind, query_jobs.c.status).where(_job(tenant, job_id))
            )
        ).one_or_none()
        if row is None or row.status not in ACTIVE:
            return False
        if row.status == JobStatus.IN_PROGRESS:
            return True
        await _lock_kind(conn, tenant, row.kind)
        if await _count(conn, tenant, row.kind, JobStatus.IN_PROGRESS) >= RUNNING_LIMIT:
            raise RunningLimitReached(row.kind)
        return await _move(conn, tenant, job_id, (JobStatus.ACCEPTED,), JobStatus.IN_PROGRESS)


async def _move(
    conn: AsyncConnection,
    tenant: Tenant,
    job_id: str,
    sources: tuple[JobStatus, ...],
    target: JobStatus,
    **values: Any,
) -> bool:
    result = await conn.execute(
        update(query_jobs)
        .where(_job(tenant, job_id), query_jobs.c.status.in_(sources))
        .values(status=target, updated_at=func.now(), **values)
    )
    return bool(result.rowcount)


async def finish_job(tenant: Tenant, job_id: str, result: dict[str, Any]) -> bool:
    """in_progress → completed with `result`; False when the job was cancelled meanwhile."""
    async with autocommit() as conn:
        return await _move(
            conn, tenant, job_id, (JobStatus.IN_PROGRESS,), JobStatus.COMPLETED, result=result
        )


async def fail_job(tenant: Tenant, job_id: str, message: str) -> bool:
    """accepted or in_progress → failed with `message`; False when it had ended already."""
    async with autocommit() as conn:
        return await _move(conn, tenant, job_id, ACTIVE, JobStatus.FAILED, error=message)


async def cancel_job(conn: AsyncConnection, tenant: Tenant, kind: str, job_id: str) -> bool:
    """accepted or in_progress → cancelled; False when the job had ended (it is unchanged) or
    the tenant has no such job of `kind`."""
    result = await conn.execute(
        update(query_jobs)
        .where(_job(tenant, job_id), query_jobs.c.kind == kind, query_jobs.c.status.in_(ACTIVE))
        .values(status=JobStatus.CANCELLED, updated_at=func.now())
    )
    return bool(result.rowcount)


async def read_job(
    conn: AsyncConnection, tenant: Tenant, kind: str, job_id: str
) -> QueryJob | None:
    """The tenant's job of `kind`, or None."""
    row = (
        await conn.execute(
            select(query_jobs).where(_job(tenant, job_id), query_jobs.c.kind == kind)
        )
    ).one_or_none()
    return None if row is None else _record(row)


async def list_jobs(
    conn: AsyncConnection,
    tenant: Tenant,
    kind: str,
    *,
    status: JobStatus | None = None,
    page_size: int = 20,
    after: str | None = None,
) -> JobPage:
    """The tenant's jobs of `kind`, newest first, `page_size` (1..LIST_PAGE_MAX) at a time,
    those older than the job `after`."""
    assert 1 <= page_size <= LIST_PAGE_MAX, page_size
    query = select(query_jobs).where(query_jobs.c.tenant_id == tenant.id, query_jobs.c.kind == kind)
    if status is not None:
        query = query.where(query_jobs.c.status == status)
    # Byte order: ids sort by time whatever the database's collation.
    ordered = query_jobs.c.id.collate("C")
    if after is not None:
        query = query.where(ordered < after)
    rows = (await conn.execute(query.order_by(ordered.desc()).limit(page_size + 1))).all()
    jobs = [_record(row) for row in rows[:page_size]]
    return JobPage(jobs, jobs[-1].id if len(rows) > page_size else None)


async def is_cancelled(tenant: Tenant, job_id: str) -> bool:
    """Whether the job was cancelled (a running task asks between partitions, and stops)."""
    async with autocommit() as conn:
        status = await conn.scalar(select(query_jobs.c.status).where(_job(tenant, job_id)))
    return status == JobStatus.CANCELLED


class JobCancelled(Exception):
    """The job was cancelled while its task ran (seen between partitions): it stops, keeping
    no file."""


async def run_job(
    tenant: Tenant,
    kind: str,
    job_id: str,
    run: Callable[[QueryJob], Awaitable[dict[str, Any]]],
    *,
    failure: Callable[[Exception], str | None],
    otherwise: str,
    files: Callable[[dict[str, Any]], Iterable[str]],
) -> None:
    """A query job's life in its task: started unless it was cancelled first, `run`, then
    finished with its result. A failure that is the query's (`failure` gives its reason) fails
    the job with that reason; any other fails it with `otherwise` and is raised (the task's
    error, logged). A job cancelled at the last moment keeps none of its `files(result)`."""
    if not await start_job(tenant, job_id):
        return
    async with autocommit() as conn:
        job = await read_job(conn, tenant, kind, job_id)
    assert job is not None
    try:
        result = await run(job)
    except JobCancelled:
        return
    except Exception as error:
        reason = failure(error)
        await fail_job(tenant, job_id, reason or otherwise)
        if reason is None:
            raise
        return
    if not await finish_job(tenant, job_id, result):
        for file_id in files(result):
            await delete_file(tenant, file_id)
