"""Data Query's checker and the query transaction: the queries it refuses naming the problem, the
PostgreSQL it writes over the zuora views, every allowed function run on PostgreSQL, rows written
by column kind, the queue limit; and the query transaction's own wall, tested with SQL that never
went through the checker."""

from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
import sqlglot
from sqlalchemy import text
from sqlglot import exp

from partnerbill.app import create_app
from partnerbill.query.data_query import RowEncoder, text_value
from partnerbill.query.data_query_sql import (
    ALLOWED_FUNCTIONS,
    TRANSLATED_FUNCTIONS,
    DataQueryError,
    Listing,
    Translated,
    translate,
)
from partnerbill.query.jobs import QUEUED_LIMIT
from partnerbill.query.sandbox import client_cursor, query_transaction
from tests.helpers import (
    ApiClient,
    TenantCredentials,
    assert_envelope,
    client_for,
    invoice_body,
    new_tenant,
)
from tests.query.data_query_support import MAX_ROWS, REJECTED, TIMEOUT_MS

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:zuora_sdk")


# -- the checker alone ----------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "message"), REJECTED)
def test_checker_refuses_naming_the_problem(query: str, message: str) -> None:
    with pytest.raises(DataQueryError) as refused:
        translate(query, max_rows=MAX_ROWS)
    assert message in refused.value.message


def test_checker_writes_postgresql_over_the_zuora_views() -> None:
    translated = translate(
        "SELECT a.AccountNumber, count(*) FROM Account a JOIN invoice i ON i.accountid = a.id"
        " GROUP BY 1 LIMIT 5000000",
        max_rows=MAX_ROWS,
    )
    assert isinstance(translated, Translated)
    assert '"zuora"."account" AS "a"' in translated.sql
    assert '"zuora"."invoice" AS "i"' in translated.sql
    assert 'COUNT(*) AS "_col1"' in translated.sql
    assert translated.sql.endswith(f"LIMIT {MAX_ROWS + 1}")  # clamped: the job sees one more
    # A WITH name is the WITH's, never the view; comments never reach the database.
    shadow = translate("with account as (select 1 id) select id from account -- x */", max_rows=5)
    assert isinstance(shadow, Translated)
    assert "zuora" not in shadow.sql and "/*" not in shadow.sql


def test_listings_come_from_the_catalogue() -> None:
    tables = translate("SHOW TABLES", max_rows=MAX_ROWS)
    assert isinstance(tables, Listing)
    assert {"account", "orders", "orderaction", "invoiceitem"} <= {r[0] for r in tables.rows}
    for query in ("DESCRIBE account", "desc Account;", "SHOW COLUMNS FROM ACCOUNT"):
        described = translate(query, max_rows=MAX_ROWS)
        assert isinstance(described, Listing)
        assert described.columns == ("Column", "Type", "Extra", "Comment")
        rows = {r[0]: r for r in described.rows}
        assert rows["partneraccount"] == ("partneraccount", "boolean", "", "PartnerAccount")
        assert rows["lastmetricsupdate"][1] == "timestamp with time zone"
        assert rows["lastmetricsupdate"][3] == "LastMetricsUpdate"


# One use of every allowed function (and of the common operators and literals).
EXPRESSIONS = [
    "count(*)",
    "sum(balance)",
    "avg(balance)",
    "min(name)",
    "max(name)",
    "count_if(partneraccount)",
    "bool_or(partneraccount)",
    "bool_and(partneraccount)",
    "array_agg(id)",
    "listagg(name, ',') within group (order by name)",
    "stddev(balance)",
    "stddev_pop(balance)",
    "stddev_samp(balance)",
    "variance(balance)",
    "var_pop(balance)",
    "case when autopay then 1 else 0 end",
    "if(autopay, 1, 0)",
    "coalesce(name, 'x')",
    "nullif(name, 'x')",
    "greatest(1, 2)",
    "least(1, 2)",
    "cast(balance as varchar)",
    "try_cast('1' as bigint)",
    "exists (select 1 from invoice)",
    "lower(name)",
    "upper(name)",
    "length(name)",
    "substr(name, 1, 2)",
    "substring(name, 2)",
    "trim(name)",
    "concat(name, 'x')",
    "concat_ws('-', name, id)",
    "replace(name, 'a', 'b')",
    "strpos(name, 'a')",
    "split_part(name, ' ', 1)",
    "lpad(name, 20, '*')",
    "rpad(name, 20, '*')",
    "reverse(name)",
    "starts_with(name, 'T')",
    "regexp_like(name, '^T')",
    "regexp_replace(name, 'T', 't')",
    "abs(balance)",
    "round(balance, 1)",
    "round(balance)",
    "floor(balance)",
    "ceil(balance)",
    "ceiling(balance)",
    "sign(balance)",
    "sqrt(4)",
    "power(2, 3)",
    "pow(2, 3)",
    "exp(1)",
    "ln(2)",
    "mod(billcycleday, 2)",
    "current_date",
    "current_timestamp",
    "now()",
    "extract(year from createddate)",
    "date_trunc('month', createddate)",
    "date_add('day', 1, createddate)",
    "date_diff('day', createddate, updateddate)",
    "date(createddate)",
    "year(createddate)",
    "month(createddate)",
    "day(createddate)",
    "last_day_of_month(createddate)",
    "date_format(createddate, '%Y-%m-%d')",
    "date_parse('2020-01-02', '%Y-%m-%d')",
    "from_unixtime(0)",
    "to_unixtime(createddate)",
    "from_iso8601_date('2020-01-02')",
    "at_timezone(createddate, 'America/Los_Angeles')",
    "createddate at time zone 'UTC'",
    "to_uuid32(id)",
    "to_uuid36(id)",
    "row_number() over (order by id)",
    "rank() over (order by id)",
    "dense_rank() over (order by id)",
    "lag(id) over (order by id)",
    "lead(id) over (order by id)",
    "first_value(id) over (order by id)",
    "last_value(id) over (order by id)",
    "nth_value(id, 1) over (order by id)",
    "ntile(2) over (order by id)",
    "percent_rank() over (order by id)",
    "cume_dist() over (order by id)",
    "array[1, 2]",
    "id in ('a', 'b')",
    "interval '1' day",
    "date '2020-01-01'",
    "timestamp '2020-01-01 00:00:00'",
    "name like 'T%'",
    "'a' || 'b'",
    "partneraccount and autopay",
    "':name' || '%s' || '%%'",
    "partneraccount or autopay",
]


def test_every_allowed_function_is_exercised() -> None:
    used = {
        type(node)
        for expression in EXPRESSIONS
        for node in sqlglot.parse_one(f"select {expression} from account", read="trino").walk()
    }
    assert ALLOWED_FUNCTIONS - {exp.Unnest} <= used
    for name in TRANSLATED_FUNCTIONS:
        assert any(e.startswith(f"{name}(") for e in EXPRESSIONS), name


async def test_every_allowed_function_runs_on_postgresql(
    engine: Any, tenant_credentials: TenantCredentials
) -> None:
    """Translated, each one is SQL PostgreSQL plans and runs (an unknown function, a wrong
    argument type would fail here), on a real row."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app()), base_url="http://partnerbill.test"
    ) as http:
        api = await client_for(http, tenant_credentials)
        await api.create_account(name="Tally", billCycleDay=3)
    queries = [f"select {e} from account" for e in EXPRESSIONS]
    queries.append("select x from unnest(array[1, 2]) as t(x)")
    for query in queries:
        translated = translate(query, max_rows=MAX_ROWS)
        assert isinstance(translated, Translated)
        async with (
            query_transaction(tenant_credentials.tenant, timeout_ms=TIMEOUT_MS) as conn,
            client_cursor(conn, translated.sql) as cursor,
        ):
            rows = await cursor.fetchall()
        assert rows, query


def test_rows_are_written_exactly_by_column_kind() -> None:
    """Values come as PostgreSQL's text for these kinds; JSON types them, CSV keeps the text."""
    kinds = ["text", "text", "numeric", "bool", "timestamptz", "date", "int8"]
    row = ("a", "b", "10.50", "t", "2026-12-01 10:00:00.25+00", "2026-12-01", None)
    names = ["id", "id", "amount", "flag", "at", "on", "n"]
    assert RowEncoder(names, kinds, None).encode([row]) == (
        b'{"id":"a","id":"b","amount":10.50,"flag":true,"at":"2026-12-01T10:00:00.25Z",'
        b'"on":"2026-12-01","n":null}\n'
    )
    delimited = RowEncoder(names, kinds, ";")
    assert delimited.header() == b"id;id;amount;flag;at;on;n\r\n"
    assert delimited.encode([row]) == b"a;b;10.50;true;2026-12-01T10:00:00.25Z;2026-12-01;\r\n"
    stamp = datetime(2026, 12, 1, 10, 0, 0, 250000, tzinfo=UTC)
    assert text_value(stamp) == "2026-12-01T10:00:00.250000Z" and text_value(False) == "false"


async def test_queued_jobs_past_the_limit_are_refused(api: ApiClient) -> None:
    """No worker runs here: jobs stay accepted, and the 11th is refused in the envelope with
    Data Query's code and message (category 70), nothing recorded for it."""
    body = {"query": "select 1", "outputFormat": "CSV", "compression": "NONE"}
    for _ in range(QUEUED_LIMIT):
        answer = await api.ok("POST", "/query/jobs", body)
        assert answer["data"]["queryStatus"] == "accepted"
    status, refused = await api.call("POST", "/query/jobs", body, expect=None)
    assert status == 400
    assert assert_envelope(refused, 70)[0]["message"] == refused["message"]
    assert refused["code"] == 400 and str(QUEUED_LIMIT) in refused["message"]
    listed = await api.ok("GET", "/query/jobs?queryStatus=accepted&pageSize=1000")
    assert len(listed["data"]) == QUEUED_LIMIT
    # Cancelled, they leave room again (and the worker, later, runs none of them).
    for job in listed["data"]:
        await api.ok("DELETE", f"/query/jobs/{job['id']}")
    assert (await api.ok("GET", "/query/jobs?queryStatus=accepted"))["data"] == []


# -- the second wall: SQL that never went through the checker -----------------------------------


async def test_the_query_transaction_alone_shows_no_other_tenant_or_table(
    engine: Any, api: ApiClient
) -> None:
    """A tenant with no rows, beside another's account and invoice."""
    theirs = await client_for(api.http, await new_tenant(engine))
    account = await theirs.create_account(name="Theirs")
    await theirs.ok("POST", "/v1/invoices", invoice_body(account["accountNumber"], "9.99"))
    other, tenant = theirs.tenant.id, api.tenant
    async with query_transaction(tenant, timeout_ms=TIMEOUT_MS) as conn:
        assert await conn.scalar(text("SELECT count(*) FROM zuora.account")) == 0
        assert await conn.scalar(text("SELECT count(*) FROM account")) == 0  # search path
    for sql in (
        # Every column: distributed, the catalogue's columns of the tenant's rows are granted.
        "SELECT * FROM public.accounts",
        "SELECT * FROM public.invoices",
        "SELECT count(*) FROM public.query_jobs",
        "SELECT count(*) FROM public.result_file_chunks",
        f"SELECT set_config('partnerbill.query_tenant', '{other}', true)",
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT * FROM pg_ls_dir('.')",
        "SELECT 1; RESET ROLE",
        "RESET ROLE",
        "SET ROLE postgres",
        "INSERT INTO zuora.account (id) VALUES ('x')",
        "CREATE TABLE zuora.stolen (x int)",
    ):
        with pytest.raises(psycopg.Error):
            async with (
                query_transaction(tenant, timeout_ms=TIMEOUT_MS) as conn,
                client_cursor(conn, sql) as cursor,
            ):
                await cursor.fetchall()
    # Even a view read with the other tenant's id in the condition gives nothing.
    async with query_transaction(tenant, timeout_ms=TIMEOUT_MS) as conn:
        found = await conn.scalar(
            text(
                "SELECT count(*) FROM zuora.invoice WHERE accountid IN"
                " (SELECT id FROM zuora.account)"
            )
        )
    assert found == 0
