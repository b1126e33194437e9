"""Many rows in one statement: the rows travel as one JSON array parameter, which
`jsonb_to_recordset` expands into columns typed as the table types them.

One parameter to encode instead of one per value, and one statement text whatever the number of
rows, so SQLAlchemy compiles it once and PostgreSQL prepares it once per connection. The array is
encoded by `core.json.dumps`: money as exact JSON numbers (never a float), dates as ISO text.

On a database distributed by tenant (`PARTNERBILL_DISTRIBUTED`, docs/scale-out.md) that form
does not reach one shard: Citus collects an `INSERT ... SELECT` from a JSON function on its
coordinator and commits it in two phases. `insert_values` is the same rows as multi-row
`VALUES` inserts, which it routes to the tenant's shard; the statement text then varies with the
number of rows, which only that deployment pays for.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.json import dumps

_DIALECT = postgresql.dialect()


def recordset(table: Table, parameter: str, columns: Sequence[str]) -> str:
    """`jsonb_to_recordset(...) AS v(...)` of the JSON array `:parameter`, with `columns` of
    `table` (read as `v.<column>`)."""
    typed = ", ".join(f"{name} {table.c[name].type.compile(dialect=_DIALECT)}" for name in columns)
    return f"jsonb_to_recordset(CAST(:{parameter} AS jsonb)) AS v({typed})"


def insert_rows(table: Table, parameter: str, columns: Sequence[str]) -> str:
    """`INSERT INTO table` of the rows in `:parameter`, for the tenant `:tenant_id`; the
    columns not named take their defaults."""
    return (
        f"INSERT INTO {table.name} (tenant_id, {', '.join(columns)}) "
        f"SELECT :tenant_id, {', '.join(f'v.{name}' for name in columns)} "
        f"FROM {recordset(table, parameter, columns)}"
    )


def rows_json(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """The parameter `recordset` expands. Each row has exactly `columns` as keys (the rows of
    one call come from one builder, so the first is checked): a key missing would silently
    read as NULL."""
    if rows and set(rows[0]) != set(columns):
        raise ValueError(f"rows with keys {sorted(rows[0])}, not the columns {sorted(columns)}")
    return dumps(rows).decode()


# PostgreSQL's bound on the parameters of one statement (the protocol counts them in 16 bits).
MAX_PARAMETERS = 65_535


def insert_values(table: Table, tenant_id: str, rows: Sequence[Mapping[str, Any]]) -> list[Insert]:
    """`insert_rows`'s rows as multi-row `VALUES` inserts for the tenant (the distributed form),
    as few as PostgreSQL's bound on parameters allows (a bill-run batch's lines can pass it);
    the columns not named take their defaults; none for no rows."""
    if not rows:
        return []
    per_statement = MAX_PARAMETERS // (len(rows[0]) + 1)
    return [
        insert(table).values(
            [{"tenant_id": tenant_id, **row} for row in rows[start : start + per_statement]]
        )
        for start in range(0, len(rows), per_statement)
    ]


async def execute_values(
    conn: AsyncConnection, table: Table, tenant_id: str, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Run `insert_values`'s inserts in the caller's transaction."""
    for statement in insert_values(table, tenant_id, rows):
        await conn.execute(statement)
