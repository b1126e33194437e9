"""CSV as AQuA and data-source exports write it: one header line, then one line per row.

Rules:
- RFC 4180: a value holding a comma, a quote or a line break is quoted, a quote doubled; lines
  end with `\\n`. A value's own line breaks are kept inside its quotes, as Zuora keeps them (a
  reader that splits the file on raw newlines, as tap-zuora does, breaks on such a value there as
  it does on Zuora's).
- A null is the empty string, or the job's `nullReplacement`.
- Booleans `true` / `false`; integers as digits; decimals exact, without exponent or trailing
  fractional zeros (`100`, `12.5`, `-0.125`), as Zuora writes them.
- Dates `YYYY-MM-DD`; datetimes `YYYY-MM-DDThh:mm:ss+hhmm` (no colon in the offset, whole
  seconds). partnerbill keeps no tenant time zone, so every datetime is written in UTC
  (`+0000`) whether or not the job asks `dateTimeUtc`.

PostgreSQL writes each value as its text (`as_text`), in C, so the worker only joins texts into
lines: formatting a datetime in Python costs more than reading its row.
"""

import csv
import io
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.tenants import Tenant
from partnerbill.query.catalog import FieldType
from partnerbill.query.files import RowCounter
from partnerbill.query.jobs import JobCancelled, is_cancelled
from partnerbill.query.sandbox import stream_query
from partnerbill.query.zoql import CompiledQuery

CSV_MEDIA_TYPE = "text/csv"
PARTITION_ROWS = 2000
_DATETIME = """'YYYY-MM-DD"T"HH24:MI:SS"+0000"'"""
_AS_TEXT: dict[FieldType, Callable[[str], str]] = {
    FieldType.TEXT: lambda v: f"CAST({v} AS text)",
    FieldType.PICKLIST: lambda v: f"CAST({v} AS text)",
    FieldType.BOOLEAN: lambda v: f"CASE WHEN {v} THEN 'true' WHEN NOT {v} THEN 'false' END",
    FieldType.INTEGER: lambda v: f"CAST({v} AS text)",
    # trim_scale drops trailing fractional zeros; numeric's text never has an exponent.
    FieldType.DECIMAL: lambda v: f"CAST(trim_scale({v}) AS text)",
    FieldType.DATE: lambda v: f"to_char({v}, 'YYYY-MM-DD')",
    FieldType.DATETIME: lambda v: f"to_char({v} AT TIME ZONE 'UTC', {_DATETIME})",
}


def as_text(query: CompiledQuery) -> CompiledQuery:
    """`query` with each output column written as the file shows it (null stays null). The
    compiled query is read as a derived table whose columns are renamed by position, so its own
    column names do not matter; its row order is kept (a projection of a derived table)."""
    names = [f"v{at}" for at in range(len(query.columns))]
    values = ", ".join(
        f"{_AS_TEXT[column.type](f'r.{name}')} AS {name}"
        for column, name in zip(query.columns, names, strict=True)
    )
    sql = f"SELECT {values}\nFROM ({query.sql}) AS r({', '.join(names)})"
    return CompiledQuery(sql, query.params, query.columns)


def datetime_text(value: datetime) -> str:
    """A datetime as the files write it (for the job answers' own times)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def encode_lines(rows: Iterable[Sequence[str | None]], null: str = "") -> bytes:
    """Rows of texts (null as None) as CSV lines, UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if null:
        writer.writerows([null if value is None else value for value in row] for row in rows)
    else:
        writer.writerows(rows)  # the csv module writes None as the empty string
    return out.getvalue().encode()


def header_line(names: Sequence[str]) -> bytes:
    return encode_lines([names])


async def csv_chunks(
    conn: AsyncConnection,
    tenant: Tenant,
    job_id: str,
    query: CompiledQuery,
    headers: Sequence[str],
    *,
    null: str = "",
    constants: Sequence[str] = (),
    rows: RowCounter,
) -> AsyncIterator[bytes]:
    """The header line, then the rows of `query` run on `conn` (a query transaction), read from a
    server-side cursor a partition at a time and encoded as they come. `constants` are values
    appended to every row (the `Deleted` column). A cancelled job stops between partitions."""
    yield header_line(headers)
    written = as_text(query)
    result = await stream_query(conn, written.sql, written.params)
    async for partition in result.partitions(PARTITION_ROWS):
        if await is_cancelled(tenant, job_id):
            raise JobCancelled
        rows.add(len(partition))
        if constants:
            yield encode_lines(((*row, *constants) for row in partition), null)
        else:
            yield encode_lines(partition, null)
