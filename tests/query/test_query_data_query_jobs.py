"""Data Query end to end: the official zuora-sdk submits and polls jobs on the live server, a real
`partnerbill worker` runs them, and the result file is fetched over HTTP with the SDK's token.
Hostile queries fail their job with a message and reveal nothing.

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
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
from zuora_sdk import SubmitDataQueryRequest
from zuora_sdk.zuora_client import ZuoraClient

from partnerbill.core import db
from partnerbill.core.tenants import Tenant
from partnerbill.query.sandbox import CLIENT_CURSOR
from tests.helpers import (
    SDK_SERIALIZE_DEFAULTS,
    TenantCredentials,
    client_for,
    invoice_body,
    new_tenant_on_own_engine,
)
from tests.query.data_query_support import ENDLESS, MAX_ROWS, REJECTED, TIMEOUT_MS
from tests.tenant_seed import SeededKeys, seed_tenant

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:zuora_sdk")

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
