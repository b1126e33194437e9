"""Data Query end to end: the official zuora-sdk submits and polls jobs on the live server, a real
`partnerbill worker` runs them, and the result file is fetched over HTTP with the SDK's token.
Hostile queries fail their job with a message and reveal nothing; the query transaction's own
wall is tested with SQL that never went through the checker.

The worker runs with small limits (1,000 rows, 3 s a statement), so the too-large and too-slow
queries fail fast."""

import asyncio
import csv
import gzip
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
import sqlglot
from sqlalchemy import text
from sqlglot import exp
from zuora_sdk import SubmitDataQueryRequest
from zuora_sdk.zuora_client import ZuoraClient

from partnerbill.app import create_app
from partnerbill.core import db
from partnerbill.core.tenants import Tenant
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
from partnerbill.query.sandbox import CLIENT_CURSOR, client_cursor, query_transaction
from tests.helpers import (
    SDK_SERIALIZE_DEFAULTS,
    ApiClient,
    TenantCredentials,
    assert_envelope,
    client_for,
    invoice_body,
    new_tenant_on_own_engine,
)
from tests.tenant_seed import SeededKeys, seed_tenant

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:zuora_sdk")
MAX_ROWS = 1000
ENDLESS = "with recursive t(n) as (select 1 union all select n + 1 from t) select count(*) from t"
TIMEOUT_MS = 3000


# -- the checker alone ----------------------------------------------------------------------------

REJECTED = [
    ("select * from pg_catalog.pg_user", "Table 'pg_catalog.pg_user' does not exist"),
    ("select relname from pg_class", "Table 'pg_class' does not exist"),
    ("select * from information_schema.tables", "Table 'information_schema.tables' does not"),
    ("select pg_read_file('/etc/passwd')", "Function 'pg_read_file' not registered"),
    (
        "select set_config('partnerbill.query_tenant', 'x', true)",
        "Function 'set_config' not registered",
    ),
    ("select current_setting('partnerbill.query_tenant')", "Function 'current_setting'"),
    ("select * from account where id in (select id from public.accounts)", "'public.accounts'"),
    ("select 1; drop table accounts --", "Only one statement can be run"),
    ("select 1 /* ; */; /* */ delete from accounts", "Only one statement can be run"),
    ("select 1; select 2", "Only one statement can be run"),
    ("select * into stolen from account", "SELECT ... INTO is not supported"),
    ("select * from account for update", "FOR UPDATE / FOR SHARE is not supported"),
    ("select pg_sleep(10)", "Function 'pg_sleep' not registered"),
    ("select dblink('host=x', 'select 1')", "Function 'dblink' not registered"),
    ("select lo_import('/etc/passwd')", "Function 'lo_import' not registered"),
    ("select query_to_xml('select 1', true, true, '')", "Function 'query_to_xml'"),
    ("select txid_current()", "Function 'txid_current' not registered"),
    ("select version()", "not registered"),
    ("select * from zuora.account", "Table 'zuora.account' does not exist"),
    (
        "select * from (with accounts as (select 1 id) select * from accounts) q, accounts",
        "Table 'accounts' does not exist",
    ),
    ("delete from account", "DELETE is not supported"),
    ("drop table accounts", "DROP is not supported"),
    ("update account set name = 'x'", "UPDATE is not supported"),
    ("select region_c from account", "Column 'region_c' cannot be resolved"),
    ("select a.region_c from account a", "Column 'region_c' cannot be resolved"),
    ("select * from nosuchtable", "Table 'nosuchtable' does not exist"),
    ("selec id from account", "mismatched input"),
    ("select id from account where id = ?", "A bind parameter is not supported"),
    ("show functions", "Only SELECT queries"),
    ("describe pg_class", "Table 'pg_class' does not exist"),
    ("select zuora.account.id from account", "Column 'zuora.account.id' cannot be resolved"),
    ("select pg_catalog.upper(name) from account", "cannot be resolved"),
    ("select pg_catalog.at_timezone(createddate, 'UTC') from account", "cannot be resolved"),
    ("select " + "(" * 3000 + "1" + ")" * 3000, "nested too deeply"),
    ("select cast(name as json) from account", "Unknown type: JSON"),
]


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


# -- the live server, the worker and the SDK -----------------------------------------------------


@pytest.fixture(scope="module")
def worker(database_url: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PARTNERBILL_LOG_LEVEL": "WARNING",
        "PARTNERBILL_DATA_QUERY_MAX_ROWS": str(MAX_ROWS),
        "PARTNERBILL_DATA_QUERY_TIMEOUT_MS": str(TIMEOUT_MS),
    }
    process = subprocess.Popen([sys.executable, "-m", "partnerbill.cli", "worker"], env=env)
    yield process
    process.terminate()
    process.wait(timeout=30)


@dataclass
class Seeded:
    keys: SeededKeys
    partner_number: str
    partner_id: str
    partner_invoice: str
    other_tenant: Tenant
    other_account_id: str


async def _seed(live_server: str, database_url: str, owner: TenantCredentials) -> Seeded:
    other_credentials = await new_tenant_on_own_engine(database_url)
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as http:
        api = await client_for(http, owner)
        keys = await seed_tenant(api)
        partner = await api.create_account(partner=True, billCycleDay=1, name='Reseller, "One"')
        invoice = await api.ok(
            "POST", "/v1/invoices", invoice_body(partner["accountNumber"], "1234.56")
        )
        await api.refresh(partner["accountId"])
        other = await client_for(http, other_credentials)
        other_account = await other.create_account(partner=True)
    return Seeded(
        keys,
        partner["accountNumber"],
        partner["accountId"],
        invoice["invoiceNumber"],
        other_credentials.tenant,
        other_account["accountId"],
    )


@pytest.fixture(scope="module")
def seeded(live_server: str, database_url: str, sdk_credentials: TenantCredentials) -> Seeded:
    return asyncio.run(_seed(live_server, database_url, sdk_credentials))


def _submit(
    zc: ZuoraClient, query: str, form: str = "JSON", compression: str = "NONE", **extra: Any
) -> str:
    answer = zc.data_queries_api().post_data_query_job(
        SubmitDataQueryRequest(
            query=query,
            output_format=form,
            compression=compression,
            output={"target": "S3"},
            **extra,
        )
    )
    assert answer.data.query_status == "accepted", answer
    assert len(answer.data.id) == 36
    return str(answer.data.id)


def _wait(zc: ZuoraClient, job_id: str, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        job = zc.data_queries_api().get_data_query_job(job_id).data
        if job.query_status in ("completed", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def _fetch(zc: ZuoraClient, url: str) -> bytes:
    """The result file over HTTP, with the SDK's own bearer token."""
    headers = {"Authorization": zc.api_client.default_headers["Authorization"]}
    response = httpx.get(url, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.content


def _run(
    zc: ZuoraClient, query: str, form: str = "JSON", compression: str = "NONE", **extra: Any
) -> tuple[Any, bytes]:
    job = _wait(zc, _submit(zc, query, form, compression, **extra))
    assert job.query_status == "completed", job
    data = _fetch(zc, job.data_file)
    return job, data


def _lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line, parse_float=Decimal) for line in data.decode().splitlines()]


def test_sdk_join_of_account_and_invoice_with_the_partner_fields(
    zc: ZuoraClient, worker: subprocess.Popen[bytes], seeded: Seeded, live_server: str
) -> None:
    job, data = _run(
        zc,
        "SELECT a.AccountNumber, a.PartnerAccount, a.LastMetricsUpdate, i.InvoiceNumber,"
        " i.Amount FROM Account a JOIN Invoice i ON i.AccountId = a.Id"
        f" WHERE a.accountnumber = '{seeded.partner_number}'",
    )
    assert job.data_file.startswith(f"{live_server}/v1/files/")
    assert job.output_rows == 1 and job.processing_time >= 0
    [row] = _lines(data)
    assert row["accountnumber"] == seeded.partner_number
    assert row["partneraccount"] is True
    assert row["lastmetricsupdate"].endswith("Z")  # refreshed: a UTC timestamp
    assert row["invoicenumber"] == seeded.partner_invoice
    assert row["amount"] == Decimal("1234.56")  # a JSON number, every digit kept
    assert b'"amount":1234.56' in data


def test_the_order_join_reaches_every_account_of_an_order(
    zc: ZuoraClient, worker: subprocess.Popen[bytes], seeded: Seeded
) -> None:
    order_number = seeded.keys.of("order")[0]
    _, data = _run(
        zc,
        "SELECT o.ordernumber, acc.partneraccount, so.partneraccount, so.lastmetricsupdate,"
        " io.partneraccount FROM Orders o JOIN Account acc ON acc.id = o.accountid"
        " JOIN OrderAction oa ON oa.orderid = o.id JOIN Subscription s ON s.id = oa.subscriptionid"
        " JOIN Account so ON so.id = s.accountid JOIN Account io ON io.id = s.invoiceownerid"
        f" WHERE o.ordernumber = '{order_number}'",
        form="CSV",
    )
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert rows[0] == [
        "ordernumber",
        "partneraccount",
        "partneraccount",
        "lastmetricsupdate",
        "partneraccount",
    ]
    assert rows[1:] == [[order_number, "false", "false", "", "false"]]  # null: an empty field


def test_show_tables_and_describe(
    zc: ZuoraClient, worker: subprocess.Popen[bytes], seeded: Seeded
) -> None:
    _, tables = _run(zc, "SHOW TABLES")
    assert {"account", "orders", "invoice"} <= {row["Table"] for row in _lines(tables)}
    job, described = _run(zc, "DESCRIBE account", form="CSV")
    rows = list(csv.reader(io.StringIO(described.decode(), newline="")))
    assert rows[0] == ["Column", "Type", "Extra", "Comment"]
    assert ["partneraccount", "boolean", "", "PartnerAccount"] in rows
    assert job.output_rows == len(rows) - 1


@pytest.mark.parametrize(
    ("form", "compression", "extra", "separator"),
    [
        ("CSV", "GZIP", {}, ","),
        ("TSV", "ZIP", {}, "\t"),
        ("DSV", "NONE", {"column_separator": "|"}, "|"),
        ("JSON", "GZIP", {}, None),
    ],
)
def test_each_format_and_compression(
    zc: ZuoraClient,
    worker: subprocess.Popen[bytes],
    seeded: Seeded,
    form: str,
    compression: str,
    extra: dict[str, Any],
    separator: str | None,
) -> None:
    _, data = _run(
        zc,
        f"select name, balance, partneraccount from account where id = '{seeded.partner_id}'",
        form,
        compression,
        **extra,
    )
    if compression == "GZIP":
        data = gzip.decompress(data)
    elif compression == "ZIP":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            [name] = archive.namelist()
            assert name.endswith(".tsv")
            data = archive.read(name)
    if separator is None:
        assert _lines(data) == [
            {"name": 'Reseller, "One"', "balance": Decimal("1234.56"), "partneraccount": True}
        ]
        return
    rows = list(csv.reader(io.StringIO(data.decode(), newline=""), delimiter=separator))
    assert rows[0] == ["name", "balance", "partneraccount"]
    assert rows[1:] == [['Reseller, "One"', "1234.56", "true"]]
    assert data.endswith(b"\r\n")


HOSTILE = [
    *[(query, message) for query, message in REJECTED if "region_c" in message or "pg_" in query],
    # Checked, then refused by the database as it runs: its message, naming the problem.
    ("select 1 / 0", "division by zero"),
    ("select cast(name as bigint) from account", 'invalid input syntax for type bigint: "Test'),
]
# Allowed, and reading only what they say: the WITH, not the view it shadows; the comment is
# no statement.
HARMLESS = [
    ("with account as (select 'x' as name) select name from account", b'{"name":"x"}\n'),
    ("select 1 /* ; drop table accounts */", b'{"_col0":1}\n'),
    ("select 1 as one -- ; drop table accounts", b'{"one":1}\n'),
]


def test_hostile_queries_fail_their_job_cleanly(
    zc: ZuoraClient, worker: subprocess.Popen[bytes], seeded: Seeded
) -> None:
    assert len(HOSTILE) >= 8
    for query, message in HOSTILE:
        job = _wait(zc, _submit(zc, query))
        assert job.query_status == "failed", (query, job)
        assert message in job.additional_properties["errorMessage"], (query, job)
        assert job.data_file is None
    for query, expected in HARMLESS:
        _, data = _run(zc, query)
        assert data == expected, (query, data)


def test_another_tenants_ids_read_nothing(
    zc: ZuoraClient, worker: subprocess.Popen[bytes], seeded: Seeded
) -> None:
    job, data = _run(
        zc,
        f"select id, name from account where id = '{seeded.other_account_id}'"
        f" union all select accountid, invoicenumber from invoice"
        f" where accountid = '{seeded.other_account_id}'",
    )
    assert job.output_rows == 0 and data == b""
    # No row is ever deleted: reading only deleted rows reads nothing, even one's own.
    job, data = _run(zc, "select id from account", read_deleted=True)
    assert job.output_rows == 0 and data == b""


def test_too_many_rows_and_too_slow_fail_quickly(
    zc: ZuoraClient, worker: subprocess.Popen[bytes], seeded: Seeded
) -> None:
    started = time.monotonic()
    huge = _wait(
        zc,
        _submit(
            zc,
            "select a.id from unnest(array[1,2,3,4,5,6,7,8,9,10]) a(id),"
            " unnest(array[1,2,3,4,5,6,7,8,9,10]) b(x), unnest(array[1,2,3,4,5,6,7,8,9,10]) c(x),"
            " unnest(array[1,2,3,4,5,6,7,8,9,10]) d(x), unnest(array[1,2,3,4,5,6,7,8,9,10]) e(x)",
        ),
    )
    assert huge.query_status == "failed"
    assert huge.additional_properties["errorMessage"] == (
        f"Query exceeded the maximum of {MAX_ROWS} output rows."
    )
    endless = _wait(
        zc,
        _submit(zc, ENDLESS),
    )
    assert endless.query_status == "failed"
    assert "maximum run time" in endless.additional_properties["errorMessage"]
    assert time.monotonic() - started < 20


def _running(database_url: str, fragment: str) -> bool:
    """Whether a statement containing `fragment` runs on the test database (other than ours)."""
    with psycopg.connect(db.libpq_url(database_url)) as conn:
        count = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state = 'active' AND pid <> pg_backend_pid() AND query LIKE %s",
            (f"%{fragment}%",),
        ).fetchone()
    return bool(count and count[0])


def test_cancel_list_and_request_errors(
    zc: ZuoraClient,
    worker: subprocess.Popen[bytes],
    seeded: Seeded,
    live_server: str,
    database_url: str,
) -> None:
    api = zc.data_queries_api()
    slow = _submit(zc, ENDLESS)
    deadline = time.monotonic() + 10
    while not _running(database_url, CLIENT_CURSOR):
        assert time.monotonic() < deadline, "the job never started its statement"
        time.sleep(0.05)
    # The SDK's delete_data_query_job wants a 64-character id (its get wants 36, as ids are):
    # its own request serializer and deserializer, without that client-side check.
    params = api._delete_data_query_job_serialize(
        job_id=slow, zuora_entity_ids=None, **SDK_SERIALIZE_DEFAULTS
    )
    raw = api.api_client.call_api(*params)
    raw.read()
    cancelled = api.api_client.response_deserialize(raw, {"200": "DeleteDataQueryJobResponse"}).data
    assert cancelled.data.query_status == "cancelled"
    # The statement itself is cancelled (well before its timeout), and the job stays cancelled.
    deadline = time.monotonic() + TIMEOUT_MS / 1000 / 2
    while _running(database_url, CLIENT_CURSOR):
        assert time.monotonic() < deadline, "the cancelled statement still runs"
        time.sleep(0.1)
    time.sleep(TIMEOUT_MS / 1000)
    assert api.get_data_query_job(slow).data.query_status == "cancelled"

    headers = {"Authorization": zc.api_client.default_headers["Authorization"]}
    again = httpx.delete(f"{live_server}/query/jobs/{slow}", headers=headers)
    assert again.status_code == 400 and "cancelled" in again.json()["message"]

    listed = api.get_data_query_jobs(query_status="cancelled", page_size=40).data
    assert slow in [job.id for job in listed]
    completed = api.get_data_query_jobs(query_status="completed").data
    assert completed and all(job.query_status == "completed" for job in completed)

    plain = httpx.post(
        f"{live_server}/query/jobs",
        headers={**headers, "Content-Type": "text/plain"},
        content=b'{"query": "select 1"}',
    )
    assert plain.status_code == 415
    assert plain.json()["code"] == 415
    assert plain.json()["message"] == "HTTP 415 Unsupported Media Type"
    for body, field in [
        ({"query": "select 1", "outputFormat": "DSV", "compression": "NONE"}, "columnSeparator"),
        (
            {
                "query": "select 1",
                "outputFormat": "CSV",
                "compression": "NONE",
                "encryptionKey": "QUJD",
            },
            "encryptionKey",
        ),
        ({"query": "select 1", "outputFormat": "XML", "compression": "NONE"}, "outputFormat"),
        ({"outputFormat": "CSV", "compression": "NONE"}, "query"),
    ]:
        refused = httpx.post(f"{live_server}/query/jobs", headers=headers, json=body)
        assert refused.status_code == 400, refused.text
        assert field in refused.json()["message"], refused.text
    unknown = httpx.get(f"{live_server}/query/jobs/{'0' * 36}", headers=headers)
    assert unknown.status_code == 404 and unknown.json()["code"] == 404


# -- the second wall: SQL that never went through the checker -----------------------------------


async def test_the_query_transaction_alone_shows_no_other_tenant_or_table(
    engine: Any, tenant_credentials: TenantCredentials
) -> None:
    async with engine.begin() as conn:
        other = await conn.scalar(text("SELECT tenant_id FROM accounts LIMIT 1"))
    assert other is not None and other != tenant_credentials.tenant.id
    tenant = tenant_credentials.tenant
    async with query_transaction(tenant, timeout_ms=TIMEOUT_MS) as conn:
        assert await conn.scalar(text("SELECT count(*) FROM zuora.account")) == 0
        assert await conn.scalar(text("SELECT count(*) FROM account")) == 0  # search path
    for sql in (
        "SELECT count(*) FROM public.accounts",
        "SELECT count(*) FROM public.invoices",
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
