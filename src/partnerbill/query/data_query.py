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
  their exact digits, timestamps ISO 8601 in UTC (`2026-12-01T10:00:00.25Z`), dates
  `YYYY-MM-DD`. CSV / TSV / DSV (`columnSeparator`, one character) have a header row of the
  column names, RFC 4180 quoting, CRLF line ends, an empty field for null, `true` / `false`.
  Columns are named as Trino names them (the column, the alias, or `_colN`).
- Limits: at most `PARTNERBILL_DATA_QUERY_MAX_ROWS` rows (500,000, Zuora's live limit): a
  larger result fails the job (no file is kept). Each statement runs at most
  `PARTNERBILL_DATA_QUERY_TIMEOUT_MS` (1 hour, Zuora's limit per attempt), and so does the job
  as a whole (checked between partitions), then the job fails.
  A failed job is not retried (`retries` and `remainingRetries` are 0).
- `readDeleted`: partnerbill deletes no row a Data Query table shows, so `readDeleted: true`
  (only deleted rows) reads every table as empty. `sourceData` LIVE and WAREHOUSE read the same
  (live) rows, in UTC; `useIndexJoin` and `warehouseSize` are accepted and change nothing.
  `encryptionKey` is refused (400): results are not encrypted.
- Cancelling a running job stops it within a second: between partitions of rows, or by
  cancelling the statement the database is still working on. Nothing of its result is kept.
- Result files expire after `FILE_LIFETIME` (7 days); the job then still reads, its `dataFile`
  answers 404. `createdBy` is the tenant's id (there are no users).
"""

import asyncio
import contextlib
import csv
import io
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import orjson
import psycopg
from pydantic import Field, StrictBool, StrictStr, field_validator, model_validator
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.schemas import CamelModel
from partnerbill.core.tenants import Tenant
from partnerbill.query.data_query_sql import MAX_QUERY_CHARS, DataQueryError, Listing, translate
from partnerbill.query.files import (
    Compression,
    ResultFileTooLarge,
    RowCounter,
    write_result_file,
)
from partnerbill.query.jobs import (
    JobCancelled,
    JobStatus,
    QueryJob,
    is_cancelled,
    run_job,
)
from partnerbill.query.sandbox import client_cursor, query_transaction
from partnerbill.query.tasks import QUERY_JOB_RETRY, QUEUE, query_tasks
from partnerbill.settings import get_settings

KIND = "dataquery"
TASK = "query:run_data_query"
FILE_LIFETIME = timedelta(days=7)
PARTITION_ROWS = 2000
# How often a long-running FETCH checks whether its job was cancelled.
CANCEL_POLL_SECONDS = 0.5
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
    query: StrictStr = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    output_format: OutputFormat
    compression: Literal["NONE", "GZIP", "ZIP"]
    output: SubmitOutput | None = None
    column_separator: StrictStr | None = Field(default=None, min_length=1, max_length=1)
    encryption_key: StrictStr | None = Field(default=None, max_length=4096)
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


class TooManyRows(Exception):
    pass


class TooSlow(Exception):
    pass


# -- rows to bytes ------------------------------------------------------------------------------

# Columns of these types are read as PostgreSQL's own text (exact digits, no Python objects to
# build and format again); each is then written per its kind.
TEXT_READ_TYPES = (
    "bool",
    "int2",
    "int4",
    "int8",
    "float4",
    "float8",
    "numeric",
    "date",
    "time",
    "timestamp",
    "timestamptz",
    "interval",
    "uuid",
    "json",
    "jsonb",
)
_NUMBERS = frozenset({"int2", "int4", "int8", "float4", "float8", "numeric"})
_NOT_NUMBERS = frozenset({"NaN", "Infinity", "-Infinity"})
_BOOLEANS = {"t": "true", "f": "false"}
_JSON_BOOLEANS = {"t": True, "f": False}


def _utc_timestamp(value: str) -> str:
    """PostgreSQL's `2026-12-01 10:00:00.25+00` (the session is in UTC) as ISO 8601."""
    text = value.replace(" ", "T", 1)
    return text[:-3] + "Z" if text.endswith("+00") else text


def _local_timestamp(value: str) -> str:
    return value.replace(" ", "T", 1)


def _json_number(value: str) -> object:
    return value if value in _NOT_NUMBERS else orjson.Fragment(value)


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f"))
    return text_value(value)


def text_value(value: Any) -> str:
    """A value of a type read as a Python object (not in TEXT_READ_TYPES) as text."""
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
        return orjson.dumps(value, default=_json_default).decode()
    return str(value)


Converter = Callable[[Any], Any]


class RowEncoder:
    """Rows of one result as JSON Lines or a delimited file (`separator`), by column kind
    (PostgreSQL's type names; anything else is read as a Python object)."""

    def __init__(self, names: Sequence[str], kinds: Sequence[str], separator: str | None):
        self.names = list(names)
        self.separator = separator
        self.converters: list[tuple[int, Converter]] = []
        for i, kind in enumerate(kinds):
            converter = self._converter(kind)
            if converter is not None:
                self.converters.append((i, converter))

    def _converter(self, kind: str) -> Converter | None:
        json = self.separator is None
        if kind == "bool":
            return (_JSON_BOOLEANS if json else _BOOLEANS).__getitem__
        if kind == "timestamptz":
            return _utc_timestamp
        if kind == "timestamp":
            return _local_timestamp
        if kind in _NUMBERS:
            return _json_number if json else None
        if kind in TEXT_READ_TYPES:
            return None
        return None if json else text_value  # JSON writes objects itself (_json_default)

    def header(self) -> bytes:
        if self.separator is None:
            return b""
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=self.separator, lineterminator="\r\n").writerow(self.names)
        return buffer.getvalue().encode()

    def _converted(self, rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
        converted = []
        for row in rows:
            values = list(row)
            for i, convert in self.converters:
                if values[i] is not None:
                    values[i] = convert(values[i])
            converted.append(values)
        return converted

    def encode(self, rows: Sequence[Sequence[Any]]) -> bytes:
        values = self._converted(rows)
        if self.separator is not None:
            buffer = io.StringIO()  # None is written as an empty field
            writer = csv.writer(buffer, delimiter=self.separator, lineterminator="\r\n")
            writer.writerows(values)
            return buffer.getvalue().encode()
        return self._json_lines(values)

    def _json_lines(self, rows: list[list[Any]]) -> bytes:
        """A name given twice (a join's two `id`s) stays twice in its line."""
        names = self.names
        if len(set(names)) == len(names):
            return b"".join(
                orjson.dumps(dict(zip(names, row, strict=True)), default=_json_default) + b"\n"
                for row in rows
            )
        keys = [orjson.dumps(name) + b":" for name in names]
        return b"".join(
            b"{"
            + b",".join(
                k + orjson.dumps(v, default=_json_default) for k, v in zip(keys, row, strict=True)
            )
            + b"}\n"
            for row in rows
        )


# -- the job ------------------------------------------------------------------------------------


class _Run:
    def __init__(self, tenant: Tenant, job: QueryJob) -> None:
        self.tenant = tenant
        self.job = job
        self.request = job.request
        self.max_rows = get_settings().data_query_max_rows
        form = self.request["outputFormat"]
        self.separator = {"CSV": ",", "TSV": "\t", "JSON": None}.get(
            form, self.request.get("columnSeparator")
        )

    async def listing(self, listing: Listing, rows: RowCounter) -> AsyncIterator[bytes]:
        encoder = RowEncoder(listing.columns, ["text"] * len(listing.columns), self.separator)
        yield encoder.header()
        rows.add(len(listing.rows))
        yield encoder.encode(listing.rows)

    async def select(
        self, conn: AsyncConnection, sql: str, rows: RowCounter
    ) -> AsyncIterator[bytes]:
        # The statement timeout bounds each FETCH; the job as a whole is bounded here.
        deadline = time.monotonic() + get_settings().data_query_timeout_ms / 1000
        async with client_cursor(conn, sql, text_types=TEXT_READ_TYPES) as cursor:
            columns = cursor.description or ()
            types = cursor.adapters.types
            kinds = [getattr(types.get(c.type_code), "name", "") for c in columns]
            encoder = RowEncoder([c.name for c in columns], kinds, self.separator)
            yield encoder.header()
            while partition := await self._fetch(cursor):
                if rows.value + len(partition) > self.max_rows:
                    raise TooManyRows()
                rows.add(len(partition))
                yield encoder.encode(partition)
                if await is_cancelled(self.tenant, self.job.id):
                    raise JobCancelled()
                if time.monotonic() > deadline:
                    raise TooSlow()

    async def _fetch(self, cursor: psycopg.AsyncServerCursor[Any]) -> list[Any]:
        """The next partition. A FETCH that runs long (the database still working out the first
        rows) is watched: a cancel of the job cancels the statement."""
        fetch = asyncio.ensure_future(cursor.fetchmany(PARTITION_ROWS))
        while True:
            done, _ = await asyncio.wait({fetch}, timeout=CANCEL_POLL_SECONDS)
            if done:
                return fetch.result()
            if await is_cancelled(self.tenant, self.job.id):
                await cursor.connection.cancel_safe()
                with contextlib.suppress(psycopg.Error):
                    await fetch
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
    if sqlstate == STATEMENT_TIMEOUT or isinstance(error, TooSlow):
        return f"Query exceeded the maximum run time of {timeout_ms // 1000} seconds."
    if isinstance(cause, psycopg.Error) and sqlstate[:2] in _QUERY_FAULTS:
        return cause.diag.message_primary or str(cause)
    return None


@query_tasks.task(name="run_data_query", queue=QUEUE, retry=QUERY_JOB_RETRY)
async def run_data_query(tenant_id: str, tenant_number: int, job_id: str) -> None:
    """Run the job's query into its result file; a query's fault fails the job with its
    message, anything else fails it too and is raised (logged as the task's error)."""
    tenant = Tenant(tenant_id, tenant_number)
    settings = get_settings()
    await run_job(
        tenant,
        KIND,
        job_id,
        lambda job: _Run(tenant, job).run(),
        failure=lambda error: failure_message(
            error, settings.data_query_max_rows, settings.data_query_timeout_ms
        ),
        otherwise="The query failed; please retry.",
        files=lambda result: [result["fileId"]],
    )
