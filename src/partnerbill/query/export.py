"""Data-source exports over the CRUD object API (`/v1/object/export`): one Export ZOQL query,
written as CSV by a background task, the file served by `GET /v1/files/{FileId}`.

Rules:
- `Format` csv (any case). html and Excel are refused with an error naming the format: only CSV
  is written. `Zip: true` stores the CSV inside a .zip archive; without `Zip` the file is the
  plain CSV (what tap-zuora, which never sends `Zip`, reads).
- `Query` is Export ZOQL, compiled when the export is created: a query that does not compile is
  refused (400, the CRUD shape, the message naming the problem) and nothing is recorded.
- `Encrypted: true` and `ConvertToCurrencies` are refused (not supported); other unknown
  fields are ignored, as the CRUD API ignores them.
- Headers name each column with its object (`Account.AccountNumber`, `Invoice.Amount`), the
  form tap-zuora and other data-source export readers expect; values are written as AQuA writes
  them (`query.result_csv`).
- Status: Pending (queued), Processing, Completed (`FileId`, `Size` in bytes), Failed
  (`StatusReason`). An export cannot be cancelled (there is no route for it), so Canceled never
  shows. An unknown id answers the CRUD API's empty result (404).
- Files expire after `FILE_LIFETIME` (7 days, as Zuora keeps data-source export files).
"""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.catalog.schemas import PascalModel
from partnerbill.core.errors import Category, Resource, ZuoraError, invalid_value, not_found
from partnerbill.core.schemas import Flag
from partnerbill.core.tenants import Tenant
from partnerbill.query.aqua import RUN_TIMEOUT_MS, run_failure
from partnerbill.query.files import Compression, RowCounter, write_result_file
from partnerbill.query.jobs import (
    JobStatus,
    QueryJob,
    QueryLimitExceeded,
    read_job,
    run_job,
    submit_job,
)
from partnerbill.query.result_csv import CSV_MEDIA_TYPE, csv_chunks
from partnerbill.query.sandbox import query_transaction
from partnerbill.query.tasks import QUERY_JOB_RETRY, QUEUE, query_tasks
from partnerbill.query.zoql import MAX_LENGTH, ZoqlError, compile_zoql

KIND = "export"
TASK = "query:run_export"
FILE_LIFETIME = timedelta(days=7)
_STATUS = {
    JobStatus.ACCEPTED: "Pending",
    JobStatus.IN_PROGRESS: "Processing",
    JobStatus.COMPLETED: "Completed",
    JobStatus.FAILED: "Failed",
    JobStatus.CANCELLED: "Canceled",
}


class CreateExportRequest(PascalModel):
    format: Annotated[str, Field(min_length=1, max_length=20)]
    query: Annotated[str, Field(min_length=1, max_length=MAX_LENGTH)]
    name: Annotated[str | None, Field(max_length=255)] = None
    zip: Flag | None = None
    encrypted: Flag | None = None
    convert_to_currencies: Annotated[str | None, Field(max_length=255)] = None


def _refuse(field: str, message: str) -> ZuoraError:
    return invalid_value(Resource.GENERIC, field, message)


async def create(conn: AsyncConnection, tenant: Tenant, request: CreateExportRequest) -> str:
    """Record the export and defer its task on `conn`'s transaction; its id."""
    form = request.format.lower()
    if form in ("html", "excel"):
        raise _refuse("Format", f"{request.format} exports are not supported; use csv.")
    if form != "csv":
        raise _refuse("Format", "must be csv.")
    if request.encrypted:
        raise _refuse("Encrypted", "encrypted exports are not supported.")
    if request.convert_to_currencies is not None:
        raise _refuse("ConvertToCurrencies", "currency conversion is not supported.")
    try:
        compile_zoql(request.query, export=True)
    except ZoqlError as error:
        raise _refuse("Query", error.message) from None
    stored = {"query": request.query, "name": request.name, "zip": bool(request.zip)}
    try:
        return await submit_job(conn, tenant, KIND, stored, TASK)
    except QueryLimitExceeded as error:
        raise ZuoraError(Resource.GENERIC, Category.LIMIT_EXCEEDED, str(error)) from None


def _object_datetime(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


def export_answer(job: QueryJob) -> dict[str, Any]:
    request = job.request
    answer: dict[str, Any] = {
        "Id": job.id,
        "Format": "csv",
        "Query": request["query"],
        "Name": request["name"],
        "Zip": request["zip"],
        "Encrypted": False,
        "Status": _STATUS[job.status],
        "CreatedDate": _object_datetime(job.created_at),
        "UpdatedDate": _object_datetime(job.updated_at),
    }
    if job.status is JobStatus.COMPLETED:
        answer.update(FileId=job.result["fileId"], Size=job.result["size"])
    if job.status is JobStatus.FAILED:
        answer["StatusReason"] = job.error
    return answer


async def get(conn: AsyncConnection, tenant: Tenant, export_id: str) -> dict[str, Any]:
    job = await read_job(conn, tenant, KIND, export_id)
    if job is None:
        raise not_found(Resource.GENERIC, "export", export_id)
    return export_answer(job)


async def _run(tenant: Tenant, job: QueryJob) -> dict[str, Any]:
    request = job.request
    compiled = compile_zoql(request["query"], export=True)
    name = request["name"] or job.id
    rows = RowCounter()
    async with query_transaction(tenant, timeout_ms=RUN_TIMEOUT_MS) as conn:
        stored = await write_result_file(
            tenant,
            f"{name}.zip" if request["zip"] else f"{name}.csv",
            "application/zip" if request["zip"] else CSV_MEDIA_TYPE,
            csv_chunks(
                conn,
                tenant,
                job.id,
                compiled,
                [column.qualified for column in compiled.columns],
                rows=rows,
            ),
            compression=Compression.ZIP if request["zip"] else Compression.NONE,
            inner_name=f"{name}.csv",
            expires_in=FILE_LIFETIME,
            rows=rows,
        )
    return {"fileId": stored.id, "size": stored.size_bytes, "rows": rows.value}


@query_tasks.task(name="run_export", queue=QUEUE, retry=QUERY_JOB_RETRY)
async def run_export(tenant_id: str, tenant_number: int, job_id: str) -> None:
    """Write the export's file; a failure fails the export with its reason."""
    tenant = Tenant(tenant_id, tenant_number)
    await run_job(
        tenant,
        KIND,
        job_id,
        lambda job: _run(tenant, job),
        failure=run_failure,
        otherwise="The export failed.",
        files=lambda result: [result["fileId"]],
    )
