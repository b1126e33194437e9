"""AQuA (`/v1/batch-query/`): a job of up to 50 ZOQL or Export ZOQL queries, each written to a
CSV file of its own by a background task.

Submit: every query is compiled when the job is submitted, so a bad one refuses the whole job
and nothing is recorded. A refusal answers HTTP 200 with no `id`, as Zuora does:
`{"status": "error", "errorCode": "900xx", "message": ...}` with Zuora's own message, plus
`detail` naming the query or field at fault (clients compare `message` with Zuora's text, so
it stays exact). Codes: 90004 more than 50 queries, 90005 a query that does not compile, 90012
`deleted` in stateless mode, 90015 an `incrementalTime` that is not `YYYY-MM-DD HH:MM:SS`, 90016
no queries, 90028 too many jobs queued for the tenant. A request of the wrong shape (an unknown
`format` such as `json`, an unknown version or field, a field of the wrong type, stateful without
`partner` and `project`) answers Zuora's malformed-request body `{"success": false, "code":
50000090, "message": "Oops, request is malformed. Please check your request."}`, with `detail`.

Job statuses: submitted (queued), executing, completed, aborted (the run failed: the reason in
each unfinished batch's `message`), cancelled (`DELETE`). A batch is pending, executing,
completed, aborted or cancelled; a completed one has `fileId` and `recordCount`. Deleting a job
that has ended answers 90003 (HTTP 200); an unknown id is a 404.

Options:
- `format`: csv, gzip (a .gz of the CSV) or zip (a .zip holding it), any case.
- `useQueryLabels` false (default): headers are labels (`Account: Account Number`); true: names
  with the object (`Account.AccountNumber`). Booleans may be sent as JSON booleans or as the
  texts "true" / "false" (tap-zuora sends texts).
- `nullReplacement`: the text written for a null. `dateTimeUtc`: accepted; every datetime is
  written in UTC anyway (partnerbill keeps no tenant time zone).
- `name`, `partner`, `project` and query names: texts of at most 255 characters (Zuora allows
  32 for a job's name; tap-zuora's names can be longer). A query without a name is `query<n>`.
- `encrypted` must be `none` when given; `apiVersion` of a query is recorded and shown, and
  changes nothing (the catalogue has one version).
- Not supported, refused as malformed: `notifyUrl`, `offset`, `useLastCompletedJobQueries`,
  `convertToCurrencies`, and any other field.

Stateful mode (version 1.1 or 1.2, `partner` and `project` required): a query returns only the
base object's rows with `UpdatedDate` later than `incrementalTime` when it is given (read as
US/Pacific time, as Zuora's US data centres and tap-zuora read it), or else later than the start
of the tenant's last completed job of the same partner and project; the first job of a partner
and project returns every row (`full: true` on its batches). A job's start is the moment its
snapshot of the data is taken. A write whose transaction began before that moment and committed
after it carries an earlier `UpdatedDate`, so the next job misses it; request transactions are
short (their lock waits are bounded), and a client that wants a margin sends `incrementalTime`.
Stateless mode (version 1.0, the default) always returns every row.

Deleted records: partnerbill never deletes the rows these objects show, so a query's `deleted`
option (stateful mode only) adds its column (`column`, default `Deleted`) with every row false
(`false`, or `0` when `format` is `Numeric`).

Files expire after `FILE_LIFETIME` (3 days, as Zuora's AQuA files). A query runs in the
read-only query transaction, each statement at most `RUN_TIMEOUT_MS`; all the queries of a job
read one snapshot.
"""

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.db import autocommit
from partnerbill.core.errors import Resource, not_found
from partnerbill.core.tenants import Tenant
from partnerbill.query.files import (
    Compression,
    ResultFileTooLarge,
    RowCounter,
    delete_file,
    write_result_file,
)
from partnerbill.query.jobs import (
    JobStatus,
    QueryJob,
    QueryLimitExceeded,
    cancel_job,
    read_job,
    run_job,
    submit_job,
)
from partnerbill.query.result_csv import CSV_MEDIA_TYPE, csv_chunks, datetime_text
from partnerbill.query.sandbox import query_transaction
from partnerbill.query.tasks import QUERY_JOB_RETRY, QUEUE, query_tasks
from partnerbill.query.zoql import ZoqlError, compile_zoql
from partnerbill.tables.query import query_jobs

KIND = "aqua"
TASK = "query:run_aqua_job"
MAX_QUERIES = 50
MAX_NAME_LENGTH = 255
MAX_TEXT_LENGTH = 1000
FILE_LIFETIME = timedelta(days=3)
RUN_TIMEOUT_MS = 3 * 3600 * 1000
PACIFIC = ZoneInfo("America/Los_Angeles")
STATELESS = "1.0"
STATEFUL = frozenset({"1.1", "1.2"})
SYNTAX_ERROR = "There is a syntax error in one of the queries in the AQuA input"
ABORTED = "The query execution has been aborted."
STATEMENT_TIMEOUT = "57014"
MALFORMED = "Oops, request is malformed. Please check your request."
_JOB_FIELDS = frozenset(
    {
        "format",
        "version",
        "name",
        "partner",
        "project",
        "incrementalTime",
        "useQueryLabels",
        "nullReplacement",
        "dateTimeUtc",
        "encrypted",
        "queries",
    }
)
_QUERY_FIELDS = frozenset({"name", "query", "type", "apiVersion", "deleted"})
_FORMATS = {"csv": Compression.NONE, "gzip": Compression.GZIP, "zip": Compression.ZIP}
_EXTENSIONS = {"csv": ".csv", "gzip": ".csv.gz", "zip": ".zip"}
_MEDIA_TYPES = {"csv": CSV_MEDIA_TYPE, "gzip": "application/x-gzip", "zip": "application/zip"}
_INCREMENTAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}")
_JOB_STATUS = {
    JobStatus.ACCEPTED: "submitted",
    JobStatus.IN_PROGRESS: "executing",
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "aborted",
    JobStatus.CANCELLED: "cancelled",
}
_BATCH_STATUS = {**_JOB_STATUS, JobStatus.ACCEPTED: "pending"}


class AquaRefused(Exception):
    """A submit refused: `answer` is the HTTP 200 body."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(answer.get("message"))
        self.answer = answer


def _refused(code: str, message: str, detail: str | None = None) -> AquaRefused:
    answer: dict[str, Any] = {"status": "error", "errorCode": code, "message": message}
    if detail:
        answer["detail"] = detail
    return AquaRefused(answer)


def _malformed(detail: str) -> AquaRefused:
    return AquaRefused({"success": False, "code": 50000090, "message": MALFORMED, "detail": detail})


# -- the request ---------------------------------------------------------------------------


def _text(body: dict[str, Any], name: str, limit: int = MAX_NAME_LENGTH) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise _malformed(f"'{name}' must be a text of at most {limit} characters")
    return value


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _malformed(f"'{name}' must be true or false")


def _unknown(body: dict[str, Any], known: frozenset[str], where: str) -> None:
    extra = sorted(set(body) - known)
    if extra:
        raise _malformed(f"{where}'{extra[0][:100]}' is not a field partnerbill supports")


def _deleted(query: dict[str, Any], where: str) -> dict[str, str] | None:
    value = query.get("deleted")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _malformed(f"{where}'deleted' must be an object with 'column' and 'format'")
    _unknown(value, frozenset({"column", "format"}), f"{where}deleted: ")
    column = _text(value, "column", 100) or "Deleted"
    form = (_text(value, "format", 20) or "Boolean").capitalize()
    if form not in ("Boolean", "Numeric"):
        raise _malformed(f"{where}'deleted.format' must be Boolean or Numeric")
    return {"column": column, "format": form}


def _queries(body: dict[str, Any]) -> list[dict[str, Any]]:
    queries = body.get("queries")
    if queries is None or queries == []:
        raise _refused(
            "90016",
            "There are no queries included in the AQuA request.",
            "'queries' must list at least one query",
        )
    if not isinstance(queries, list):
        raise _malformed("'queries' must be a list of queries")
    if len(queries) > MAX_QUERIES:
        raise _refused(
            "90004",
            "Invalid number of queries allowed. A maximum of 50 queries are supported in an"
            " AQuA request.",
            f"{len(queries)} queries",
        )
    parsed = []
    for index, query in enumerate(queries):
        where = f"queries[{index}]: "
        if not isinstance(query, dict):
            raise _malformed(f"{where}a query must be an object")
        _unknown(query, _QUERY_FIELDS, where)
        kind = (_text(query, "type", 20) or "").lower()
        if kind not in ("zoql", "zoqlexport"):
            raise _malformed(f"{where}'type' must be zoql or zoqlexport")
        statement = query.get("query")
        if not isinstance(statement, str) or not statement.strip():
            raise _malformed(f"{where}'query' must be a query text")
        parsed.append(
            {
                "name": _text(query, "name") or f"query{index + 1}",
                "query": statement,
                "type": kind,
                "apiVersion": _text(query, "apiVersion", 20),
                "deleted": _deleted(query, where),
            }
        )
    return parsed


def _incremental_time(body: dict[str, Any]) -> str | None:
    value = body.get("incrementalTime")
    if value is None:
        return None
    if not isinstance(value, str) or not _INCREMENTAL_TIME.fullmatch(value):
        raise _refused(
            "90015",
            "The incremental timestamp is invalid.",
            "'incrementalTime' is written YYYY-MM-DD HH:MM:SS",
        )
    try:
        moment = datetime.fromisoformat(value.replace(" ", "T")).replace(tzinfo=PACIFIC)
    except ValueError:
        raise _refused("90015", "The incremental timestamp is invalid.", f"'{value}'") from None
    return moment.astimezone(UTC).isoformat()


def parse_request(body: dict[str, Any]) -> dict[str, Any]:
    """The job as stored: the request checked and normalized, every query compiled once (a
    query that does not compile refuses the job). Raises `AquaRefused`."""
    _unknown(body, _JOB_FIELDS, "")
    form = (_text(body, "format", 20) or "csv").lower()
    if form not in _FORMATS:
        raise _malformed(f"'format' must be csv, zip or gzip, not {form[:20]}")
    version = _text(body, "version", 20) or STATELESS
    if version != STATELESS and version not in STATEFUL:
        raise _malformed("'version' must be 1.0 (stateless), 1.1 or 1.2 (stateful)")
    encrypted = (_text(body, "encrypted", 20) or "none").lower()
    if encrypted != "none":
        raise _malformed("'encrypted' must be none: encrypted files are not supported")
    partner, project = _text(body, "partner"), _text(body, "project")
    stateful = version in STATEFUL
    if stateful and not (partner and project):
        raise _malformed(f"version {version} is stateful: 'partner' and 'project' are required")
    queries = _queries(body)
    if not stateful and any(query["deleted"] for query in queries):
        raise _refused(
            "90012",
            "Stateless AQuA does not support deleted columns.",
            "'deleted' needs version 1.1 or 1.2",
        )
    request = {
        "format": form,
        "version": version,
        "name": _text(body, "name"),
        "partner": partner,
        "project": project,
        "incrementalTime": _incremental_time(body) if stateful else None,
        "useQueryLabels": _flag(body, "useQueryLabels"),
        "dateTimeUtc": _flag(body, "dateTimeUtc"),
        "nullReplacement": _text(body, "nullReplacement", MAX_TEXT_LENGTH),
        "encrypted": encrypted,
        "queries": queries,
    }
    for query in queries:
        try:
            compile_zoql(query["query"], export=query["type"] == "zoqlexport")
        except ZoqlError as error:
            raise _refused("90005", SYNTAX_ERROR, f"{query['name']}: {error.message}") from None
    return request


async def submit(conn: AsyncConnection, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    """Record the job and defer its task on `conn`'s transaction; the job as submitted."""
    request = parse_request(body)
    try:
        job_id = await submit_job(conn, tenant, KIND, request, TASK)
    except QueryLimitExceeded as error:
        raise _refused("90028", str(error), "wait for a job to finish, or cancel one") from None
    job = await read_job(conn, tenant, KIND, job_id)
    assert job is not None
    return job_answer(job)


# -- answers -------------------------------------------------------------------------------


def _batch_id(job_id: str, index: int) -> str:
    return hashlib.md5(f"{job_id}:{index}".encode(), usedforsecurity=False).hexdigest()


def job_answer(job: QueryJob) -> dict[str, Any]:
    """The job as `GET /v1/batch-query/jobs/{id}` shows it."""
    request = job.request
    batches = []
    results = job.result.get("batches", [])
    for index, query in enumerate(request["queries"]):
        batch: dict[str, Any] = {
            "batchId": _batch_id(job.id, index),
            "name": query["name"],
            "query": query["query"],
            "batchType": query["type"],
            "status": _BATCH_STATUS[job.status],
        }
        if query["apiVersion"]:
            batch["apiVersion"] = query["apiVersion"]
        if query["deleted"]:
            batch["deleted"] = query["deleted"]
        if job.status is JobStatus.COMPLETED:
            done = results[index]
            batch.update(fileId=done["fileId"], recordCount=done["recordCount"], full=done["full"])
        elif job.status is JobStatus.FAILED:
            batch["message"] = job.error or ABORTED
        batches.append(batch)
    answer: dict[str, Any] = {
        "id": job.id,
        "name": request["name"],
        "format": request["format"].upper(),
        "version": request["version"],
        "encrypted": request["encrypted"],
        "status": _JOB_STATUS[job.status],
        "startTime": datetime_text(
            datetime.fromisoformat(job.result["startTime"])
            if "startTime" in job.result
            else job.created_at
        ),
        "useQueryLabels": request["useQueryLabels"],
        "dateTimeUtc": request["dateTimeUtc"],
        "batches": batches,
    }
    if request["partner"]:
        answer.update(partner=request["partner"], project=request["project"])
    if request["nullReplacement"] is not None:
        answer["nullReplacement"] = request["nullReplacement"]
    return answer


async def get(conn: AsyncConnection, tenant: Tenant, job_id: str) -> dict[str, Any]:
    job = await read_job(conn, tenant, KIND, job_id)
    if job is None:
        raise not_found(Resource.GENERIC, "AQuA job", job_id)
    return job_answer(job)


async def cancel(conn: AsyncConnection, tenant: Tenant, job_id: str) -> dict[str, Any]:
    """Cancel a queued or running job; the job as it is then."""
    job = await read_job(conn, tenant, KIND, job_id)
    if job is None:
        raise not_found(Resource.GENERIC, "AQuA job", job_id)
    if not await cancel_job(conn, tenant, KIND, job_id):
        raise _refused("90003", "Invalid Job Id for job cancellation.", f"the job is {job.status}")
    cancelled = await read_job(conn, tenant, KIND, job_id)
    assert cancelled is not None
    return job_answer(cancelled)


# -- the run -------------------------------------------------------------------------------


async def _since(tenant: Tenant, job: QueryJob) -> datetime | None:
    """Where a stateful job's changes start (None: every row)."""
    request = job.request
    if request["version"] not in STATEFUL:
        return None
    if request["incrementalTime"]:
        return datetime.fromisoformat(request["incrementalTime"])
    async with autocommit() as conn:
        started = await conn.scalar(
            select(query_jobs.c.result["startTime"].astext)
            .where(
                query_jobs.c.tenant_id == tenant.id,
                query_jobs.c.kind == KIND,
                query_jobs.c.status == JobStatus.COMPLETED,
                query_jobs.c.request["partner"].astext == request["partner"],
                query_jobs.c.request["project"].astext == request["project"],
            )
            .order_by(query_jobs.c.result["startTime"].astext.desc())
            .limit(1)
        )
    return None if started is None else datetime.fromisoformat(started)


@dataclass(frozen=True, slots=True)
class _Written:
    file_id: str
    rows: int
    full: bool


async def _run(tenant: Tenant, job: QueryJob) -> dict[str, Any]:
    request = job.request
    since = await _since(tenant, job)
    form = request["format"]
    written: list[_Written] = []
    try:
        async with query_transaction(tenant, timeout_ms=RUN_TIMEOUT_MS) as conn:
            started = await conn.scalar(text("SELECT now()"))
            for query in request["queries"]:
                compiled = compile_zoql(
                    query["query"], export=query["type"] == "zoqlexport", updated_since=since
                )
                headers = [
                    column.qualified if request["useQueryLabels"] else column.label
                    for column in compiled.columns
                ]
                constants: tuple[str, ...] = ()
                if query["deleted"]:
                    headers.append(query["deleted"]["column"])
                    constants = ("false" if query["deleted"]["format"] == "Boolean" else "0",)
                rows = RowCounter()
                stored = await write_result_file(
                    tenant,
                    f"{query['name']}{_EXTENSIONS[form]}",
                    _MEDIA_TYPES[form],
                    csv_chunks(
                        conn,
                        tenant,
                        job.id,
                        compiled,
                        headers,
                        null=request["nullReplacement"] or "",
                        constants=constants,
                        rows=rows,
                    ),
                    compression=_FORMATS[form],
                    inner_name=f"{query['name']}.csv",
                    expires_in=FILE_LIFETIME,
                    rows=rows,
                )
                written.append(_Written(stored.id, rows.value, since is None))
    except BaseException:
        for done in written:
            await delete_file(tenant, done.file_id)
        raise
    return {
        "startTime": started.astimezone(UTC).isoformat(timespec="microseconds"),
        "batches": [
            {"fileId": done.file_id, "recordCount": done.rows, "full": done.full}
            for done in written
        ],
    }


@query_tasks.task(name="run_aqua_job", queue=QUEUE, retry=QUERY_JOB_RETRY)
async def run_aqua_job(tenant_id: str, tenant_number: int, job_id: str) -> None:
    """Run the job's queries, one file each; a failure aborts the job with its reason."""
    tenant = Tenant(tenant_id, tenant_number)
    await run_job(
        tenant,
        KIND,
        job_id,
        lambda job: _run(tenant, job),
        failure=run_failure,
        otherwise=ABORTED,
        files=lambda result: [batch["fileId"] for batch in result["batches"]],
    )


def run_failure(error: Exception) -> str | None:
    """The reason a run failed when it is the query's (too slow, too large a file), else None."""
    if getattr(getattr(error, "orig", None), "sqlstate", None) == STATEMENT_TIMEOUT:
        return f"{ABORTED[:-1]}: it ran longer than {RUN_TIMEOUT_MS // 60_000} minutes."
    if isinstance(error, ResultFileTooLarge):
        return str(error)
    return None
