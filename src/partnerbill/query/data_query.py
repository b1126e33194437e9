"""Data Query jobs: a Trino-dialect SELECT run in the background, its rows written to a file.

`POST /query/jobs` checks the request's fields (400 naming the field) and records an
`accepted` job; its task runs it (`in_progress`), then `completed` with `dataFile` (a URL of
`GET /v1/files/{id}` on this server), `outputRows` and `processingTime` (ms), or `failed` with
`errorMessage`. The SQL itself is judged by the job, not the submit, as Zuora does: a query
it would reject (a syntax error, an unknown table or column, a function outside the
allow-list, not a SELECT) fails the job with a message naming the problem
(`data_query_sql.py`).

Decisions where Zuora is silent:
- Output. JSON is JSON Lines (one object per row, no array); decimals are JSON numbers with
  their exact digits, timestamps ISO 8601 in UTC (`2026-12-01T10:00:00.250000Z`), dates
  `YYYY-MM-DD`. CSV / TSV / DSV (`columnSeparator`, one character) have a header row of the
  column names, RFC 4180 quoting, CRLF line ends, an empty field for null, `true` / `false`.
  Columns are named as Trino names them (the column, the alias, or `_colN`).
- Limits: at most `PARTNERBILL_DATA_QUERY_MAX_ROWS` rows (500,000, Zuora's live limit): a
  larger result fails the job (no file is kept). Each statement runs at most
  `PARTNERBILL_DATA_QUERY_TIMEOUT_MS` (1 hour, Zuora's limit per attempt), then the job fails.
  A failed job is not retried (`retries` and `remainingRetries` are 0).
- `readDeleted`: partnerbill deletes no row a Data Query table shows, so `readDeleted: true`
  (only deleted rows) reads every table as empty. `sourceData` LIVE and WAREHOUSE read the same
  (live) rows, in UTC; `useIndexJoin` and `warehouseSize` are accepted and change nothing.
  `encryptionKey` is refused (400): results are not encrypted.
- Result files expire after `FILE_LIFETIME` (7 days); the job then still reads, its `dataFile`
  answers 404. `createdBy` is the tenant's id (there are no users).
"""

import csv
import io
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import orjson
import psycopg
from pydantic import Field, StrictBool, StrictStr, field_validator, model_validator
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.db import autocommit
from partnerbill.core.schemas import CamelModel
from partnerbill.core.tenants import Tenant
from partnerbill.query.data_query_sql import DataQueryError, Listing, translate
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
    fail_job,
    finish_job,
    is_cancelled,
    read_job,
    start_job,
)
from partnerbill.query.sandbox import query_transaction
from partnerbill.query.tasks import QUERY_JOB_RETRY, QUEUE, query_tasks
from partnerbill.settings import get_settings

KIND = "dataquery"
TASK = "query:run_data_query"
FILE_LIFETIME = timedelta(days=7)
PARTITION_ROWS = 2000
STATEMENT_TIMEOUT = "57014"
# SQLSTATE classes of errors the query itself caused (a bad cast, a division by zero, a
# function PostgreSQL lacks for these arguments): the job fails with the database's message.
_QUERY_FAULTS = ("22", "42", "21", "2F", "54")

OutputFormat = Literal["JSON", "CSV", "TSV", "DSV"]
_EXTENSIONS = {"JSON": "json", "CSV": "csv", "TSV": "tsv", "DSV": "dsv"}
_MEDIA_TYPES = {
    "JSON": "application/x-ndjson",
    "CSV": "text/csv",
    "TSV": "text/tab-separated-values",
    "DSV": "text/csv",
}
_COMPRESSED = {
    "NONE": (Compression.NONE, "", None),
    "GZIP": (Compression.GZIP, ".gz", "application/gzip"),
    "ZIP": (Compression.ZIP, ".zip", "application/zip"),
}


class SubmitOutput(CamelModel):
    target: Literal["S3"]


class SubmitDataQuery(CamelModel):
    query: StrictStr = Field(min_length=1)
    output_format: OutputFormat
    compression: Literal["NONE", "GZIP", "ZIP"]
    output: SubmitOutput | None = None
    column_separator: StrictStr | None = Field(default=None, min_length=1, max_length=1)
    encryption_key: StrictStr | None = None
    read_deleted: StrictBool = False
    source_data: Literal["LIVE", "WAREHOUSE"] = "LIVE"
    use_index_join: StrictBool = False
    warehouse_size: Literal["xsmall"] | None = None

    @field_validator("encryption_key")
    @classmethod
    def _no_encryption(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError("encrypted results are not supported")
        return value

    @model_validator(mode="after")
    def _separator(self) -> "SubmitDataQuery":
        if self.output_format == "DSV" and self.column_separator is None:
            raise ValueError("columnSeparator is required when outputFormat is DSV")
        if self.output_format == "DSV" and self.column_separator in ('"', "\r", "\n"):
            raise ValueError("columnSeparator cannot be a quote or a line break")
        return self

    def stored(self) -> dict[str, Any]:
        """What the job keeps of the request."""
        return {
            "query": self.query,
            "outputFormat": self.output_format,
            "compression": self.compression,
            "columnSeparator": self.column_separator,
            "readDeleted": self.read_deleted,
            "sourceData": self.source_data,
            "useIndexJoin": self.use_index_join,
        }


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_answer(tenant: Tenant, job: QueryJob, files_url: str) -> dict[str, Any]:
    """The SDK's DataQueryJob; `files_url` is this server's `/v1/files/` as the client reached
    it."""
    request = job.request
    answer: dict[str, Any] = {
        "id": job.id,
        "query": request["query"],
        "outputFormat": request["outputFormat"],
        "compression": request["compression"],
        "readDeleted": request["readDeleted"],
        "sourceData": request["sourceData"],
        "useIndexJoin": request["useIndexJoin"],
        "queryStatus": job.status.value,
        "retries": 0,
        "remainingRetries": 0,
        "createdBy": tenant.id,
        "createdOn": iso(job.created_at),
        "updatedOn": iso(job.updated_at),
    }
    if request.get("columnSeparator") is not None:
        answer["columnSeparator"] = request["columnSeparator"]
    if job.status == JobStatus.COMPLETED:
        answer["dataFile"] = files_url + job.result["fileId"]
        answer["outputRows"] = job.result["outputRows"]
        answer["processingTime"] = job.result["processingTime"]
    elif job.status == JobStatus.FAILED:
        answer["errorMessage"] = job.error
    return answer


class JobCancelled(Exception):
    pass


class TooManyRows(Exception):
    pass


# -- rows to bytes ------------------------------------------------------------------------------


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f"))
    return str(value)  # intervals, times with zone and anything else PostgreSQL gives


_JSON_OPTIONS = orjson.OPT_UTC_Z


def json_lines(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """Rows as JSON Lines; a name given twice (a join's two `id`s) stays twice in its line."""
    if len(set(names)) == len(names):
        return b"".join(
            orjson.dumps(
                dict(zip(names, row, strict=True)), default=_json_default, option=_JSON_OPTIONS
            )
            + b"\n"
            for row in rows
        )
    keys = [orjson.dumps(name) + b":" for name in names]
    lines = []
    for row in rows:
        values = [orjson.dumps(v, default=_json_default, option=_JSON_OPTIONS) for v in row]
        lines.append(b"{" + b",".join(k + v for k, v in zip(keys, values, strict=True)) + b"}\n")
    return b"".join(lines)


def text_value(value: Any) -> str:
    """A value as a delimited file's field."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.isoformat()
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | dict):
        return orjson.dumps(value, default=_json_default, option=_JSON_OPTIONS).decode()
    return str(value)


def delimited(separator: str) -> Callable[[Sequence[str], Sequence[Sequence[Any]]], bytes]:
    def write(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=separator, lineterminator="\r\n")
        writer.writerows([[text_value(v) for v in row] for row in rows])
        return buffer.getvalue().encode()

    return write


def _header(separator: str, names: Sequence[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=separator, lineterminator="\r\n").writerow(names)
    return buffer.getvalue().encode()


@asynccontextmanager
async def client_cursor(
    conn: AsyncConnection, sql: str
) -> AsyncIterator[psycopg.AsyncServerCursor[Any]]:
    """`sql` opened as a server-side cursor on the query transaction `conn`: rows come a
    partition at a time, never all in memory, and PostgreSQL declares a cursor only for one
    SELECT (or VALUES), so no other statement (`RESET ROLE`, a second one after `;`) can run
    even if the checker let it through. No parameters are passed: the text is sent as it is."""
    raw = await conn.get_raw_connection()
    driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
    async with driver.cursor(name="data_query") as cursor:
        await cursor.execute(sql)
        yield cursor


# -- the job ------------------------------------------------------------------------------------


class _Run:
    def __init__(self, tenant: Tenant, job: QueryJob) -> None:
        self.tenant = tenant
        self.job = job
        self.request = job.request
        self.max_rows = get_settings().data_query_max_rows
        form = self.request["outputFormat"]
        self.separator = {"CSV": ",", "TSV": "\t"}.get(form, self.request.get("columnSeparator"))
        self.encode = json_lines if form == "JSON" else delimited(self.separator or ",")

    def _header(self, names: Sequence[str]) -> bytes:
        return b"" if self.separator is None else _header(self.separator, names)

    async def listing(self, listing: Listing, rows: RowCounter) -> AsyncIterator[bytes]:
        yield self._header(listing.columns)
        rows.add(len(listing.rows))
        yield self.encode(listing.columns, listing.rows)

    async def select(
        self, conn: AsyncConnection, sql: str, rows: RowCounter
    ) -> AsyncIterator[bytes]:
        async with client_cursor(conn, sql) as cursor:
            names = [column.name for column in cursor.description or ()]
            yield self._header(names)
            while partition := await cursor.fetchmany(PARTITION_ROWS):
                if rows.value + len(partition) > self.max_rows:
                    raise TooManyRows()
                rows.add(len(partition))
                yield self.encode(names, partition)
                if await is_cancelled(self.tenant, self.job.id):
                    raise JobCancelled()

    async def run(self) -> dict[str, Any]:
        started = time.monotonic()
        translated = translate(
            self.request["query"], max_rows=self.max_rows, read_deleted=self.request["readDeleted"]
        )
        form = self.request["outputFormat"]
        compression, suffix, compressed_type = _COMPRESSED[self.request["compression"]]
        inner = f"{self.job.id}_0.{_EXTENSIONS[form]}"
        name = inner + suffix
        media_type = compressed_type or _MEDIA_TYPES[form]
        rows = RowCounter()
        if isinstance(translated, Listing):
            chunks = self.listing(translated, rows)
            stored = await write_result_file(
                self.tenant,
                name,
                media_type,
                chunks,
                compression=compression,
                inner_name=inner,
                expires_in=FILE_LIFETIME,
                rows=rows,
            )
        else:
            timeout_ms = get_settings().data_query_timeout_ms
            async with query_transaction(self.tenant, timeout_ms=timeout_ms) as conn:
                await conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
                stored = await write_result_file(
                    self.tenant,
                    name,
                    media_type,
                    self.select(conn, translated.sql, rows),
                    compression=compression,
                    inner_name=inner,
                    expires_in=FILE_LIFETIME,
                    rows=rows,
                )
        return {
            "fileId": stored.id,
            "outputRows": rows.value,
            "processingTime": int((time.monotonic() - started) * 1000),
        }


def failure_message(error: BaseException, max_rows: int, timeout_ms: int) -> str | None:
    """Why the job failed, when the query is the cause; None for anything else."""
    if isinstance(error, DataQueryError):
        return error.message
    if isinstance(error, TooManyRows):
        return f"Query exceeded the maximum of {max_rows} output rows."
    if isinstance(error, ResultFileTooLarge):
        return str(error)
    cause = getattr(error, "orig", error)
    sqlstate = getattr(cause, "sqlstate", None) or ""
    if sqlstate == STATEMENT_TIMEOUT:
        return f"Query exceeded the maximum run time of {timeout_ms // 1000} seconds."
    if isinstance(cause, psycopg.Error) and sqlstate[:2] in _QUERY_FAULTS:
        return cause.diag.message_primary or str(cause)
    return None


@query_tasks.task(name="run_data_query", queue=QUEUE, retry=QUERY_JOB_RETRY)
async def run_data_query(tenant_id: str, tenant_number: int, job_id: str) -> None:
    """Run the job's query into its result file; a query's fault fails the job with its
    message, anything else fails it too and is raised (logged as the task's error)."""
    tenant = Tenant(tenant_id, tenant_number)
    if not await start_job(tenant, job_id):
        return  # cancelled before it ran
    async with autocommit() as conn:
        job = await read_job(conn, tenant, KIND, job_id)
    assert job is not None
    settings = get_settings()
    try:
        result = await _Run(tenant, job).run()
    except JobCancelled:
        return
    except Exception as error:
        reason = failure_message(
            error, settings.data_query_max_rows, settings.data_query_timeout_ms
        )
        await fail_job(tenant, job_id, reason or "The query failed; please retry.")
        if reason is None:
            raise
        return
    if not await finish_job(tenant, job_id, result):
        await delete_file(tenant, result["fileId"])  # cancelled at the last moment
