"""`/query/jobs`: submit, read, list and cancel Data Query jobs (`query/data_query.py`).

Answers are `{"success": true, "data": job}` (`"data": [jobs]` for the list, newest first):
`success` as every v1 answer has it, beside what the SDK's models read. Errors are the
envelope with Data Query's `code` and `message` beside it: 400 for a bad field (the SQL itself
is judged by the job), 415 for a submit that is not `application/json`, 404 for a job id of
no job of the tenant, 400 for cancelling a job that has ended, 400 (category 70) past the
tenant's queued-jobs limit.
"""

from typing import Any, Literal

from fastapi import Depends, Query, Request

from partnerbill.core.auth import CurrentTenant
from partnerbill.core.db import autocommit, transaction
from partnerbill.core.errors import Category, Resource, ZuoraError, not_found
from partnerbill.core.json import DecimalJSONRoute
from partnerbill.core.responses import Documented, ErrorEnvelope, ok
from partnerbill.core.routing import FeatureRouter
from partnerbill.query.data_query import KIND, TASK, SubmitDataQuery, job_answer
from partnerbill.query.jobs import (
    LIST_PAGE_MAX,
    JobStatus,
    QueryLimitExceeded,
    cancel_job,
    list_jobs,
    read_job,
    submit_job,
)

router = FeatureRouter(route_class=DecimalJSONRoute, tags=["Data Query"])
UNSUPPORTED_MEDIA_TYPE = "HTTP 415 Unsupported Media Type"


class DataQueryJobModel(Documented):
    id: str
    query: str
    queryStatus: Literal["accepted", "in_progress", "completed", "failed", "cancelled"]
    outputFormat: str
    compression: str
    remainingRetries: int
    createdOn: str
    updatedOn: str
    dataFile: str | None = None
    outputRows: int | None = None
    processingTime: int | None = None
    errorMessage: str | None = None


class DataQueryJobAnswer(Documented):
    data: DataQueryJobModel


class DataQueryJobsAnswer(Documented):
    data: list[DataQueryJobModel]


def _json_body(request: Request) -> None:
    """Data Query takes JSON only, checked before the body is read."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise ZuoraError(
            Resource.GENERIC, Category.INVALID_VALUE, UNSUPPORTED_MEDIA_TYPE, http_status=415
        )


def _files_url(request: Request) -> str:
    return f"{str(request.base_url).rstrip('/')}/v1/files/"


def _unknown_job(job_id: str) -> ZuoraError:
    return not_found(Resource.GENERIC, "data query job", job_id)


@router.post(
    "/query/jobs",
    dependencies=[Depends(_json_body)],
    responses={
        **ok(DataQueryJobAnswer),
        415: {"model": ErrorEnvelope, "description": "The body is not application/json."},
    },
)
async def submit_data_query(
    body: SubmitDataQuery, tenant: CurrentTenant, request: Request
) -> dict[str, Any]:
    async with transaction() as conn:
        try:
            job_id = await submit_job(conn, tenant, KIND, body.stored(), TASK)
        except QueryLimitExceeded as error:
            raise ZuoraError(Resource.GENERIC, Category.LIMIT_EXCEEDED, str(error)) from None
        job = await read_job(conn, tenant, KIND, job_id)
    assert job is not None
    return {"success": True, "data": job_answer(tenant, job, _files_url(request))}


@router.get("/query/jobs/{query_job_id}", responses=ok(DataQueryJobAnswer))
async def get_data_query(
    query_job_id: str, tenant: CurrentTenant, request: Request
) -> dict[str, Any]:
    async with autocommit() as conn:
        job = await read_job(conn, tenant, KIND, query_job_id)
    if job is None:
        raise _unknown_job(query_job_id)
    return {"success": True, "data": job_answer(tenant, job, _files_url(request))}


@router.get("/query/jobs", responses=ok(DataQueryJobsAnswer))
async def list_data_queries(
    tenant: CurrentTenant,
    request: Request,
    query_status: JobStatus | None = Query(default=None, alias="queryStatus"),
    page_size: int = Query(default=20, ge=1, le=LIST_PAGE_MAX, alias="pageSize"),
) -> dict[str, Any]:
    async with autocommit() as conn:
        page = await list_jobs(conn, tenant, KIND, status=query_status, page_size=page_size)
    files_url = _files_url(request)
    return {"success": True, "data": [job_answer(tenant, job, files_url) for job in page.jobs]}


@router.delete("/query/jobs/{query_job_id}", responses=ok(DataQueryJobAnswer))
async def cancel_data_query(
    query_job_id: str, tenant: CurrentTenant, request: Request
) -> dict[str, Any]:
    async with transaction() as conn:
        cancelled = await cancel_job(conn, tenant, KIND, query_job_id)
        job = await read_job(conn, tenant, KIND, query_job_id)
    if job is None:
        raise _unknown_job(query_job_id)
    if not cancelled:
        raise ZuoraError(
            Resource.GENERIC,
            Category.INVALID_VALUE,
            f"The query job is {job.status.value}: only an accepted or in_progress job can be"
            " cancelled.",
        )
    return {"success": True, "data": job_answer(tenant, job, _files_url(request))}
