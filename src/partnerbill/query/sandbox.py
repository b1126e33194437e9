"""The transaction every query surface reads in: the wall between a query and other tenants.

`query_transaction` opens a READ ONLY transaction, binds the tenant the `zuora` views filter on,
becomes the query role (which can read those views and nothing else of partnerbill's) and bounds
every statement. It always ends in a rollback. User-written SQL and ZOQL are checked by their
parsers first (one SELECT, known tables and functions only); this transaction is the second,
independent wall, so a gap in a parser still cannot show another tenant's rows or a table
outside the views.

Rows are read through server-side cursors only, and a cursor holds exactly one SELECT. A plain
execute would take several statements in one string, and `SET ROLE` is checked against the
session's (the server's) user, so a second statement could shed the query role; in a cursor it
cannot be written at all. `client_cursor` runs a client's SQL text as it is (Data Query);
`stream_query` runs SQL the server compiled, with bound parameters (ZOQL).
"""

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.types.string import TextLoader
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncResult

from partnerbill.core.db import get_engine
from partnerbill.core.tenants import Tenant
from partnerbill.query.views import CLIENT_VIEWS, TENANT_SETTING, ViewSet
from partnerbill.settings import get_settings

TENANT_ID = re.compile(r"[0-9a-f]{32}")
CLIENT_CURSOR = "client_query"  # the cursor's name, as `pg_stat_activity` shows it


@asynccontextmanager
async def query_transaction(
    tenant: Tenant, *, timeout_ms: int, views: ViewSet = CLIENT_VIEWS, snapshot: bool = False
) -> AsyncIterator[AsyncConnection]:
    """A read-only transaction bound to `tenant`, as the role of `views` (the client views by
    default; Object Query reads its own), each statement at most `timeout_ms`. `snapshot`:
    REPEATABLE READ, so that every statement sees the same data."""
    assert TENANT_ID.fullmatch(tenant.id), "tenant ids are 32 hex digits"
    assert 0 < timeout_ms <= 4 * 3600 * 1000
    async with get_engine().connect() as conn:
        transaction = await conn.begin()
        try:
            # One round trip; the values are ours (checked above), never the client's.
            isolation = ", ISOLATION LEVEL REPEATABLE READ" if snapshot else ""
            # Distributed, the workers evaluate the tenant policies: Citus sends them the
            # transaction's SET LOCALs only when told to.
            propagate = (
                " SET LOCAL citus.propagate_set_commands = 'local';"
                if get_settings().distributed
                else ""
            )
            await conn.exec_driver_sql(
                f"SET TRANSACTION READ ONLY{isolation};{propagate}"
                f" SET LOCAL {TENANT_SETTING} = '{tenant.id}';"
                f" SET LOCAL statement_timeout = {int(timeout_ms)};"
                f" SET LOCAL search_path = {views.schema};"
                f" SET LOCAL ROLE {views.role}"
            )
            yield conn
        finally:
            await transaction.rollback()


async def stream_query(
    conn: AsyncConnection, sql: str, params: dict[str, Any] | None = None
) -> AsyncResult[Any]:
    """The rows of `sql`, compiled by the server with `:name` bound parameters, from a
    server-side cursor read in partitions: a result of any size never sits in memory whole."""
    return await conn.stream(text(sql), params or {})


@asynccontextmanager
async def client_cursor(
    conn: AsyncConnection, sql: str, *, text_types: Sequence[str] = ()
) -> AsyncIterator[psycopg.AsyncServerCursor[Any]]:
    """A client's `sql` opened as a server-side cursor on the query transaction `conn`. The text
    is sent as it is, with no parameters: through SQLAlchemy's `text()` a `:name` inside the
    client's string literals would be taken for a bind parameter. Values of `text_types` (type
    names) come as PostgreSQL's text."""
    raw = await conn.get_raw_connection()
    driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
    async with driver.cursor(name=CLIENT_CURSOR) as cursor:
        for name in text_types:
            cursor.adapters.register_loader(name, TextLoader)
        await cursor.execute(sql)
        yield cursor
