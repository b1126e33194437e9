"""The wall under the query surfaces in the distributed form (`PARTNERBILL_DISTRIBUTED`), where a
view's owner rights would end at a Citus coordinator: views with the reader's rights, the query
roles granted only the base-table columns their views read, and a tenant policy on every base
table. Run on plain PostgreSQL, which enforces the same grants and policies, on a database of its
own migrated in that form; switched off again, the owner's wall is back."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.core import auth, db, migrate
from partnerbill.query.sandbox import query_transaction, stream_query
from partnerbill.query.views import BASE_SCHEMA, OBJECT_QUERY_VIEWS, TENANT_POLICY, VIEW_SETS
from tests.helpers import ApiClient, client_for, distributed_form, invoice_body, new_tenant

TIMEOUT_MS = 5_000
QUERY_ROLES = [views.role for views in VIEW_SETS]


@pytest.fixture(scope="module")
def distributed_url(database_url: str) -> Iterator[str]:
    """A database of this module's, on the suite's server, migrated in the distributed form."""
    server = make_url(database_url)
    name = f"{server.database}_distributed"
    admin = db.libpq_url(server.set(database="postgres").render_as_string(False))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server.set(database=name).render_as_string(hide_password=False)
    with distributed_form(True):
        migrate.upgrade(url)
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def two_tenants(
    distributed_url: str, engine: AsyncEngine, app: Any
) -> AsyncIterator[tuple[ApiClient, ApiClient]]:
    """Two tenants with an account and an invoice each, written through the API with the
    process's engine on the distributed database; the suite's engine back afterwards."""
    own = db.create_engine(distributed_url)
    db.set_engine(own)
    auth._signing_key = None
    try:
        with distributed_form(True):
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://partnerbill.test",
            ) as http:
                clients = []
                for name in ("Mine", "Theirs"):
                    client = await client_for(http, await new_tenant(own))
                    account = await client.create_account(name=name, partner=True)
                    number = account["accountNumber"]
                    await client.ok("POST", "/v1/invoices", invoice_body(number, "12.50"))
                    clients.append(client)
                yield clients[0], clients[1]
    finally:
        db.set_engine(engine)
        auth._signing_key = None
        await own.dispose()


async def test_a_tenant_sees_its_own_rows_only(two_tenants: tuple[ApiClient, ApiClient]) -> None:
    for client, name in zip(two_tenants, ("Mine", "Theirs"), strict=True):
        for views in VIEW_SETS:
            async with query_transaction(client.tenant, timeout_ms=TIMEOUT_MS, views=views) as conn:
                names = await conn.execute(text(f"SELECT name FROM {views.schema}.account"))
                amounts = await conn.execute(text(f"SELECT amount FROM {views.schema}.invoice"))
                assert names.scalars().all() == [name]
                assert [str(amount) for amount in amounts.scalars()] == ["12.50"]


async def test_past_every_parser_a_base_table_shows_the_tenants_rows_only(
    two_tenants: tuple[ApiClient, ApiClient],
) -> None:
    mine, _ = two_tenants
    async with query_transaction(mine.tenant, timeout_ms=TIMEOUT_MS) as conn:
        names = await conn.execute(text(f"SELECT name FROM {BASE_SCHEMA}.accounts"))
        assert names.scalars().all() == ["Mine"]
        count = await conn.scalar(text(f"SELECT count(*) FROM {BASE_SCHEMA}.invoices"))
        assert count == 1


async def test_past_every_parser_only_the_catalogues_columns_are_readable(
    two_tenants: tuple[ApiClient, ApiClient],
) -> None:
    """A base table the views never read, and a column of a read table they never read, are
    refused."""
    mine, _ = two_tenants
    async with db.get_engine().connect() as conn:
        unread = await conn.scalar(
            text(
                "SELECT min(column_name) FROM information_schema.columns c"
                " WHERE table_schema = :schema AND table_name = 'accounts' AND NOT EXISTS ("
                "  SELECT 1 FROM information_schema.view_column_usage u"
                "  WHERE u.table_schema = c.table_schema AND u.table_name = c.table_name"
                "  AND u.column_name = c.column_name)"
            ),
            {"schema": BASE_SCHEMA},
        )
    assert unread is not None, "every column of accounts is in the catalogue: pick another"
    for statement in (
        f"SELECT count(*) FROM {BASE_SCHEMA}.oauth_clients",
        f"SELECT {unread} FROM {BASE_SCHEMA}.accounts",
        f"SELECT * FROM {BASE_SCHEMA}.accounts",
    ):
        async with query_transaction(mine.tenant, timeout_ms=TIMEOUT_MS) as conn:
            with pytest.raises(DBAPIError, match="permission denied"):
                await conn.execute(text(statement))


async def test_an_error_never_carries_another_tenants_value(
    two_tenants: tuple[ApiClient, ApiClient],
) -> None:
    """The policies run before a query's own conditions: the failing cast meets "Mine" only."""
    mine, _ = two_tenants
    for source in ("account", f"{BASE_SCHEMA}.accounts"):
        async with query_transaction(mine.tenant, timeout_ms=TIMEOUT_MS) as conn:
            with pytest.raises(DBAPIError) as failure:
                await stream_query(conn, f"SELECT 1 FROM {source} WHERE CAST(name AS integer) = 1")
        assert '"Mine"' in str(failure.value) and "Theirs" not in str(failure.value)


async def test_nothing_bound_shows_nothing(two_tenants: tuple[ApiClient, ApiClient]) -> None:
    """The owner, no tenant bound: the views show nothing (their own filter, not a policy)."""
    async with db.get_engine().connect() as conn:
        for views in VIEW_SETS:
            assert await conn.scalar(text(f"SELECT count(*) FROM {views.schema}.account")) == 0


async def _grants_and_policies(url: str) -> tuple[int, int]:
    own = db.create_engine(url)
    try:
        async with own.connect() as conn:
            policies = await conn.scalar(
                text("SELECT count(*) FROM pg_policies WHERE policyname = :policy"),
                {"policy": TENANT_POLICY},
            )
            grants = await conn.scalar(
                text(
                    "SELECT count(*) FROM information_schema.column_privileges"
                    " WHERE table_schema = :schema AND grantee = ANY(:roles)"
                ),
                {"schema": BASE_SCHEMA, "roles": QUERY_ROLES},
            )
    finally:
        await own.dispose()
    return int(policies or 0), int(grants or 0)


async def test_switched_off_the_grants_and_policies_go_and_come_back(distributed_url: str) -> None:
    policies, grants = await _grants_and_policies(distributed_url)
    assert policies > 10 and grants > 100
    with distributed_form(False):
        migrate.upgrade(distributed_url)
    assert await _grants_and_policies(distributed_url) == (0, 0)
    own = db.create_engine(distributed_url)
    try:
        async with own.connect() as conn:
            options = await conn.scalar(
                text("SELECT reloptions::text FROM pg_class WHERE oid = CAST(:view AS regclass)"),
                {"view": f"{OBJECT_QUERY_VIEWS.schema}.account"},
            )
            rls = await conn.scalar(
                text("SELECT relrowsecurity FROM pg_class WHERE oid = 'public.accounts'::regclass")
            )
    finally:
        await own.dispose()
    assert options is None and rls is False
    with distributed_form(True):
        migrate.upgrade(distributed_url)
    assert await _grants_and_policies(distributed_url) == (policies, grants)
