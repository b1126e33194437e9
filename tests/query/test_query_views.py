"""The `zuora` views and the query transaction: the wall under every query surface.

The views follow the catalogue column for column; in `query_transaction` a query sees its own
tenant's rows and nothing else — no table of partnerbill's, no other tenant's row, not even in
an error message, and it cannot rebind the tenant or write."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.query.catalog import OBJECTS, by_name, by_path, by_table
from partnerbill.query.sandbox import query_transaction, stream_query
from partnerbill.query.views import OBJECT_QUERY_VIEWS, SCHEMA, VIEW_SETS
from tests.helpers import ApiClient, client_for, invoice_body, new_tenant

TIMEOUT_MS = 5_000


@pytest.mark.parametrize("schema", [views.schema for views in VIEW_SETS])
async def test_every_view_has_the_catalogue_columns_with_their_api_names(
    engine: AsyncEngine, schema: str
) -> None:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT c.table_name, c.column_name,"
                    " col_description(format('%I.%I', c.table_schema, c.table_name)::regclass,"
                    " c.ordinal_position) FROM information_schema.columns c"
                    " WHERE c.table_schema = :schema ORDER BY c.table_name, c.ordinal_position"
                ),
                {"schema": schema},
            )
        ).all()
    found: dict[str, list[tuple[str, str]]] = {}
    for table, column, comment in rows:
        found.setdefault(table, []).append((column, comment))
    assert found == {
        obj.table: [(field.column, field.name) for field in obj.fields] for obj in OBJECTS
    }


def test_catalogue_lookups_ignore_case_and_relations_resolve() -> None:
    assert by_name("invoiceitem") is by_table("InvoiceItem") is by_path("invoice-items")
    assert by_table("Orders") is by_name("Order")
    for obj in OBJECTS:
        for relation in obj.relations:
            target = by_name(relation.target)
            assert target is not None and obj.field(relation.column) is not None
        for expand in obj.expands:
            target = by_name(expand.target)
            assert target is not None and target.field(expand.target_column) is not None
            assert obj.field(expand.column) is not None


@pytest.fixture
async def two_tenants(engine: AsyncEngine, api: ApiClient) -> tuple[ApiClient, ApiClient]:
    other = await client_for(api.http, await new_tenant(engine))
    for client, name in ((api, "Mine"), (other, "Theirs")):
        account = await client.create_account(name=name, partner=True)
        await client.ok("POST", "/v1/invoices", invoice_body(account["accountNumber"], "12.50"))
    return api, other


async def test_a_tenant_sees_its_own_rows_only(two_tenants: tuple[ApiClient, ApiClient]) -> None:
    mine, theirs = two_tenants
    async with query_transaction(mine.tenant, timeout_ms=TIMEOUT_MS) as conn:
        names = (await conn.execute(text("SELECT name FROM account"))).scalars().all()
        amounts = (
            await conn.execute(
                text(
                    "SELECT i.amount, a.partneraccount FROM invoice i"
                    " JOIN account a ON a.id = i.accountid"
                )
            )
        ).all()
    assert names == ["Mine"]
    assert [(str(amount), partner) for amount, partner in amounts] == [("12.50", True)]
    async with query_transaction(theirs.tenant, timeout_ms=TIMEOUT_MS) as conn:
        assert (await conn.execute(text("SELECT name FROM account"))).scalars().all() == ["Theirs"]


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        # Every column: distributed, the catalogue's columns of the tenant's rows are granted.
        ("SELECT * FROM public.accounts", "permission denied for table accounts"),
        ("SELECT count(*) FROM public.oauth_clients", "permission denied"),
        ("SELECT set_config('partnerbill.query_tenant', 'x', true)", "permission denied"),
        ("SELECT pg_read_file('/etc/hostname')", "permission denied"),
        ("CREATE TEMP TABLE stolen AS SELECT 1", "read-only transaction"),
        ("UPDATE invoice SET balance = 0", "read-only transaction|permission denied"),
        ("SELECT set_config('role', 'postgres', true)", "permission denied"),
    ],
)
async def test_the_query_role_can_read_the_views_and_nothing_else(
    two_tenants: tuple[ApiClient, ApiClient], statement: str, refusal: str
) -> None:
    """Even run as a plain statement, past every parser."""
    mine, _ = two_tenants
    async with query_transaction(mine.tenant, timeout_ms=TIMEOUT_MS) as conn:
        with pytest.raises(DBAPIError, match=refusal):
            await conn.execute(text(statement))


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("SELECT 1; SET ROLE postgres", "multiple commands"),
        ("SET ROLE postgres", "syntax error"),
        ("SELECT 1; SELECT name FROM public.accounts", "multiple commands"),
    ],
)
async def test_a_query_cursor_holds_one_select_only(
    two_tenants: tuple[ApiClient, ApiClient], statement: str, refusal: str
) -> None:
    """`SET ROLE` is checked against the session's user: only a cursor keeps it out."""
    mine, _ = two_tenants
    async with query_transaction(mine.tenant, timeout_ms=TIMEOUT_MS) as conn:
        with pytest.raises(DBAPIError, match=refusal):
            async for _ in await stream_query(conn, statement):
                pass


async def test_an_error_never_carries_another_tenants_value(
    two_tenants: tuple[ApiClient, ApiClient],
) -> None:
    """The views are security barriers: the failing cast runs on the bound tenant's rows only,
    so the message can name only "Mine", never "Theirs"."""
    mine, _ = two_tenants
    for _ in range(3):
        async with query_transaction(mine.tenant, timeout_ms=TIMEOUT_MS) as conn:
            with pytest.raises(DBAPIError) as failure:
                await stream_query(conn, "SELECT 1 FROM account WHERE CAST(name AS integer) = 1")
        assert '"Mine"' in str(failure.value) and "Theirs" not in str(failure.value)


async def test_nothing_bound_shows_nothing(engine: AsyncEngine, two_tenants: object) -> None:
    """Read without `query_transaction` (as the owner, no tenant bound), the views are empty."""
    async with engine.connect() as conn:
        assert await conn.scalar(text(f"SELECT count(*) FROM {SCHEMA}.account")) == 0


async def test_statements_are_bounded(two_tenants: tuple[ApiClient, ApiClient]) -> None:
    mine, _ = two_tenants
    async with query_transaction(mine.tenant, timeout_ms=200) as conn:
        with pytest.raises(DBAPIError, match="statement timeout"):
            await stream_query(conn, "SELECT count(*) FROM generate_series(1, 1000000000)")


async def test_each_role_reads_its_own_views_only(two_tenants: tuple[ApiClient, ApiClient]) -> None:
    """Client SQL cannot reach Object Query's views (they have no security barrier), nor Object
    Query the client views; both see the bound tenant's rows only."""
    mine, _ = two_tenants
    async with query_transaction(mine.tenant, timeout_ms=TIMEOUT_MS) as conn:
        with pytest.raises(DBAPIError, match="permission denied for schema"):
            await conn.execute(text(f"SELECT name FROM {OBJECT_QUERY_VIEWS.schema}.account"))
    async with query_transaction(
        mine.tenant, timeout_ms=TIMEOUT_MS, views=OBJECT_QUERY_VIEWS
    ) as conn:
        names = await conn.execute(text(f"SELECT name FROM {OBJECT_QUERY_VIEWS.schema}.account"))
        assert names.scalars().all() == ["Mine"]
        with pytest.raises(DBAPIError, match="permission denied for schema"):
            await conn.execute(text(f"SELECT name FROM {SCHEMA}.account"))
