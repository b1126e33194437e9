"""AQuA jobs (`/v1/batch-query/`) and data-source exports (`/v1/object/export`): the CSV as Zuora
writes it, the submit-time refusals in Zuora's shapes, stateful incremental jobs, cancelling,
and the official zuora-sdk's AggregateQueriesApi and FilesApi on the live server with a worker."""

import csv
import gzip
import io
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from zuora_sdk import CreateAccountContact, CreateAccountRequest
from zuora_sdk.models.create_batch_query_job_request import CreateBatchQueryJobRequest
from zuora_sdk.models.create_batch_query_request import CreateBatchQueryRequest
from zuora_sdk.zuora_client import ZuoraClient

from partnerbill.query.aqua import SYNTAX_ERROR, run_aqua_job
from partnerbill.query.catalog import FieldType
from partnerbill.query.export import run_export
from partnerbill.query.files import Compression, RowCounter, write_result_file
from partnerbill.query.jobs import JobCancelled
from partnerbill.query.result_csv import as_text, csv_chunks, encode_lines
from partnerbill.query.sandbox import query_transaction
from partnerbill.query.zoql import CompiledQuery, OutputColumn, compile_zoql
from tests.helpers import ApiClient, invoice_body
from tests.job_worker import running_worker

# -- the CSV ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "written"),
    [
        (FieldType.DECIMAL, Decimal("100.00"), "100"),
        (FieldType.DECIMAL, Decimal("-11095"), "-11095"),
        (FieldType.DECIMAL, Decimal("12.50"), "12.5"),
        (FieldType.DECIMAL, Decimal("-0.000"), "0"),
        (FieldType.DECIMAL, Decimal("1E+3"), "1000"),
        (FieldType.DECIMAL, Decimal("0.0000001"), "0.0000001"),
        (FieldType.DECIMAL, Decimal("123456789012.123456789"), "123456789012.123456789"),
        (FieldType.INTEGER, 7, "7"),
        (FieldType.BOOLEAN, True, "true"),
        (FieldType.BOOLEAN, False, "false"),
        (FieldType.TEXT, 'a "b", c', 'a "b", c'),
        (FieldType.DATE, date(2026, 8, 4), "2026-08-04"),
        (
            FieldType.DATETIME,
            datetime(2026, 8, 4, 20, 11, 15, 999_999, timezone(timedelta(hours=10))),
            "2026-08-04T10:11:15+0000",
        ),
        (FieldType.DATETIME, None, None),
    ],
)
async def test_values_are_written_as_zuora_writes_them(
    api: ApiClient, kind: FieldType, value: object, written: str | None
) -> None:
    query = CompiledQuery(
        f"SELECT CAST(:value AS {kind.postgres}) AS c0",
        {"value": value},
        [OutputColumn("X", "X", kind, "X")],
    )
    async with query_transaction(api.credentials.tenant, timeout_ms=10_000) as conn:
        statement = as_text(query)
        assert await conn.scalar(text(statement.sql), statement.params) == written


def test_lines_are_rfc_4180() -> None:
    lines = encode_lines([["a,b", 'say "hi"', "two\nlines", None, "1.5"]], "-")
    assert lines == b'"a,b","say ""hi""","two\nlines",-,1.5\n'
    assert next(csv.reader(io.StringIO(lines.decode()))) == [
        "a,b",
        'say "hi"',
        "two\nlines",
        "-",
        "1.5",
    ]
    assert encode_lines([["x", None]]) == b"x,\n"


# -- helpers ------------------------------------------------------------------------------------


def _query(query: str, kind: str = "zoqlexport", name: str = "q", **extra: Any) -> dict[str, Any]:
    return {"name": name, "query": query, "type": kind, **extra}


async def _submit(api: ApiClient, body: dict[str, Any]) -> dict[str, Any]:
    status, job = await api.call("POST", "/v1/batch-query/", body)
    assert status == 200 and job.get("id"), job
    return job


async def _run(api: ApiClient, body: dict[str, Any]) -> dict[str, Any]:
    """Submit the job, run its task here, and answer the job as it reads then."""
    job = await _submit(api, body)
    assert job["status"] == "submitted"
    assert {batch["status"] for batch in job["batches"]} == {"pending"}
    tenant = api.credentials.tenant
    await run_aqua_job(tenant.id, tenant.number, job["id"])
    _, done = await api.call("GET", f"/v1/batch-query/jobs/{job['id']}")
    assert done["status"] == "completed", done
    return done


async def _file(api: ApiClient, file_id: str, path: str = "/v1/files") -> bytes:
    response = await api.http.get(
        f"{path}/{file_id}", headers={"Authorization": f"Bearer {api.token}"}
    )
    assert response.status_code == 200, response.text
    return response.content


def _rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode())))


async def _jobs(engine: AsyncEngine, tenant_id: str) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM query_jobs WHERE tenant_id = :t"), {"t": tenant_id}
        )
    return int(count or 0)


# -- AQuA ---------------------------------------------------------------------------------------


async def test_a_job_writes_one_file_per_query_with_labels_or_names(api: ApiClient) -> None:
    partner = await api.create_account(partner=True, name='Reseller, "North"')
    plain = await api.create_account(name="Plain")
    invoice = await api.ok("POST", "/v1/invoices", invoice_body(partner["accountNumber"], "12.50"))
    done = await _run(
        api,
        {
            "format": "csv",
            "version": "1.0",
            "nullReplacement": "NULL",
            "queries": [
                _query(
                    "select Id, AccountNumber, Name, PartnerAccount, LastMetricsUpdate, Balance"
                    " from Account",
                    "zoql",
                    "accounts",
                    apiVersion="131.0",
                ),
                _query(
                    "select InvoiceNumber, Amount, Account.AccountNumber, Account.PartnerAccount"
                    " from Invoice",
                    name="invoices",
                ),
            ],
        },
    )
    accounts, invoices = done["batches"]
    assert (accounts["name"], accounts["batchType"], accounts["apiVersion"]) == (
        "accounts",
        "zoql",
        "131.0",
    )
    assert accounts["recordCount"] == 2 and invoices["recordCount"] == 1
    assert accounts["full"] is True and len(accounts["batchId"]) == 32

    rows = _rows(await _file(api, accounts["fileId"]))
    assert rows[0] == [
        "Account: ID",
        "Account: Account Number",
        "Account: Name",
        "Account: Partner Account",
        "Account: Last Metrics Update",
        "Account: Account Balance",
    ]
    by_number = {row[1]: row for row in rows[1:]}
    assert by_number[partner["accountNumber"]][:4] == [
        partner["accountId"],
        partner["accountNumber"],
        'Reseller, "North"',
        "true",
    ]
    assert by_number[plain["accountNumber"]][3:5] == ["false", "NULL"]

    rows = _rows(await _file(api, invoices["fileId"], "/v1/file"))
    assert rows == [
        ["Invoice: Invoice Number", "Invoice: Amount", "Account: Account Number",
         "Account: Partner Account"],
        [invoice["invoiceNumber"], "12.5", partner["accountNumber"], "true"],
    ]  # fmt: skip


async def test_query_labels_name_columns_with_their_object_and_datetimes_read_utc(
    api: ApiClient,
) -> None:
    account = await api.create_account(partner=True)
    await api.ok("POST", f"/v1/partnerbill/accounts/{account['accountNumber']}/refresh-metrics")
    done = await _run(
        api,
        {
            "useQueryLabels": "true",
            "dateTimeUtc": True,
            "queries": [_query("select Id, PartnerAccount, LastMetricsUpdate from Account")],
        },
    )
    header, row = _rows(await _file(api, done["batches"][0]["fileId"]))
    assert header == ["Account.Id", "Account.PartnerAccount", "Account.LastMetricsUpdate"]
    assert row[:2] == [account["accountId"], "true"]
    stamp = datetime.strptime(row[2], "%Y-%m-%dT%H:%M:%S%z")
    assert row[2].endswith("+0000") and abs(datetime.now(UTC) - stamp) < timedelta(minutes=5)


async def test_order_by_and_limit_are_kept_in_the_file(api: ApiClient) -> None:
    numbers = [(await api.create_account())["accountNumber"] for _ in range(4)]
    done = await _run(
        api,
        {
            "queries": [
                _query("select AccountNumber from Account order by AccountNumber desc limit 3")
            ]
        },
    )
    rows = _rows(await _file(api, done["batches"][0]["fileId"]))
    assert [row[0] for row in rows[1:]] == sorted(numbers, reverse=True)[:3]


@pytest.mark.parametrize("form", ["gzip", "zip", "GZIP"])
async def test_gzip_and_zip_files_hold_the_csv(api: ApiClient, form: str) -> None:
    account = await api.create_account()
    done = await _run(
        api, {"format": form, "queries": [_query("select AccountNumber from Account")]}
    )
    content = await _file(api, done["batches"][0]["fileId"])
    if form.lower() == "zip":
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            assert archive.namelist() == ["q.csv"]
            content = archive.read("q.csv")
    else:
        content = gzip.decompress(content)
    assert _rows(content) == [["Account: Account Number"], [account["accountNumber"]]]


@pytest.mark.parametrize(
    ("body", "answer"),
    [
        (
            {"queries": [_query("select Nonsense from Account")]},
            {"status": "error", "errorCode": "90005", "message": SYNTAX_ERROR},
        ),
        (
            {"queries": [_query("select Id from Account")] * 51},
            {"status": "error", "errorCode": "90004"},
        ),
        ({"queries": []}, {"status": "error", "errorCode": "90016"}),
        (
            {"queries": [_query("select Id from Account", deleted={"column": "Deleted"})]},
            {"status": "error", "errorCode": "90012"},
        ),
        (
            {
                "version": "1.1",
                "partner": "p",
                "project": "x",
                "incrementalTime": "yesterday",
                "queries": [_query("select Id from Account")],
            },
            {"status": "error", "errorCode": "90015"},
        ),
        (
            {"format": "json", "queries": [_query("select Id from Account")]},
            {
                "success": False,
                "code": 50000090,
                "message": "Oops, request is malformed. Please check your request.",
            },
        ),
        (
            {"version": "1.1", "queries": [_query("select Id from Account")]},
            {"success": False, "code": 50000090},
        ),
        ({"queries": [_query("select Id from Account", "sql")]}, {"code": 50000090}),
        ({"queries": "select Id from Account"}, {"code": 50000090}),
        (
            {"notifyUrl": "http://x", "queries": [_query("select Id from Account")]},
            {"code": 50000090},
        ),
        ({"useQueryLabels": 3, "queries": [_query("select Id from Account")]}, {"code": 50000090}),
    ],
)
async def test_a_refused_submit_is_http_200_without_an_id_and_records_nothing(
    api: ApiClient, engine: AsyncEngine, body: dict[str, Any], answer: dict[str, Any]
) -> None:
    status, payload = await api.call("POST", "/v1/batch-query/", body)
    assert status == 200 and "id" not in payload, payload
    assert payload.items() >= answer.items(), payload
    assert payload["detail"], payload  # names the query or field at fault
    assert await _jobs(engine, api.credentials.tenant.id) == 0


async def test_a_syntax_error_names_the_query_and_the_problem(api: ApiClient) -> None:
    _, payload = await api.call(
        "POST",
        "/v1/batch-query/",
        {
            "queries": [
                _query("select Id from Account"),
                _query("select Bad from Invoice", name="b"),
            ]
        },
    )
    assert payload["message"] == SYNTAX_ERROR
    assert payload["detail"].startswith("b: ") and "Bad" in payload["detail"], payload


async def test_stateful_jobs_return_the_rows_changed_since_the_last_completed_one(
    api: ApiClient,
) -> None:
    first = await api.create_account(name="First")
    stateful = {
        "version": "1.1",
        "partner": "partnerbill-tests",
        "project": "accounts",
        "useQueryLabels": True,
        "queries": [
            _query(
                "select AccountNumber from Account",
                deleted={"column": "Deleted", "format": "Boolean"},
            )
        ],
    }
    full = await _run(api, stateful)
    assert full["partner"] == "partnerbill-tests" and full["batches"][0]["full"] is True
    assert _rows(await _file(api, full["batches"][0]["fileId"])) == [
        ["Account.AccountNumber", "Deleted"],
        [first["accountNumber"], "false"],
    ]
    second = await api.create_account(name="Second")
    changed = await _run(api, stateful)
    assert changed["batches"][0]["full"] is False
    assert _rows(await _file(api, changed["batches"][0]["fileId"]))[1:] == [
        [second["accountNumber"], "false"]
    ]
    # Another project starts again from every row; incrementalTime (US/Pacific) overrides.
    other = await _run(api, {**stateful, "project": "other"})
    assert other["batches"][0]["recordCount"] == 2
    long_ago = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S")
    since = await _run(api, {**stateful, "incrementalTime": long_ago, "version": "1.2"})
    assert since["batches"][0]["recordCount"] == 2 and since["batches"][0]["full"] is False
    future = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S")
    none = await _run(api, {**stateful, "incrementalTime": future})
    assert none["batches"][0]["recordCount"] == 0
    assert _rows(await _file(api, none["batches"][0]["fileId"])) == [
        ["Account.AccountNumber", "Deleted"]
    ]


async def test_a_cancelled_job_never_runs_and_cannot_be_cancelled_twice(
    api: ApiClient, engine: AsyncEngine
) -> None:
    job = await _submit(api, {"queries": [_query("select Id from Account")]})
    _, cancelled = await api.call("DELETE", f"/v1/batch-query/jobs/{job['id']}")
    assert cancelled["status"] == "cancelled"
    assert cancelled["batches"][0]["status"] == "cancelled"
    tenant = api.credentials.tenant
    await run_aqua_job(tenant.id, tenant.number, job["id"])
    _, read = await api.call("GET", f"/v1/batch-query/jobs/{job['id']}")
    assert read["status"] == "cancelled" and "fileId" not in read["batches"][0]
    async with engine.connect() as conn:
        files = await conn.scalar(
            text("SELECT count(*) FROM result_files WHERE tenant_id = :t"), {"t": tenant.id}
        )
    assert files == 0
    _, again = await api.call("DELETE", f"/v1/batch-query/jobs/{job['id']}")
    assert again["status"] == "error" and again["errorCode"] == "90003" and "id" not in again


async def test_a_job_cancelled_while_writing_stops_and_keeps_no_file(
    api: ApiClient, engine: AsyncEngine
) -> None:
    await api.create_account()
    job = await _submit(api, {"queries": [_query("select Id from Account")]})
    await api.call("DELETE", f"/v1/batch-query/jobs/{job['id']}")
    tenant = api.credentials.tenant
    query = compile_zoql("select Id from Account", export=True)
    async with query_transaction(tenant, timeout_ms=10_000) as conn:
        chunks = csv_chunks(conn, tenant, job["id"], query, ["Account.Id"], rows=RowCounter())
        with pytest.raises(JobCancelled):
            await write_result_file(
                tenant,
                "cancelled.csv",
                "text/csv",
                chunks,
                compression=Compression.NONE,
                expires_in=timedelta(days=1),
            )
    async with engine.connect() as conn:
        files = await conn.scalar(
            text("SELECT count(*) FROM result_files WHERE tenant_id = :t"), {"t": tenant.id}
        )
    assert files == 0


async def test_an_unknown_job_is_a_404(api: ApiClient) -> None:
    for method in ("GET", "DELETE"):
        _, payload = await api.call(
            method, "/v1/batch-query/jobs/0190f1c8-0000-7000-8000-000000000000", expect=404
        )
        assert payload["success"] is False and payload["reasons"][0]["code"] % 100 == 40


# -- data-source exports ------------------------------------------------------------------------


async def _export(api: ApiClient, body: dict[str, Any]) -> dict[str, Any]:
    _, created = await api.call("POST", "/v1/object/export", body)
    assert created["Success"] is True, created
    _, pending = await api.call("GET", f"/v1/object/export/{created['Id']}")
    assert pending["Status"] == "Pending" and "FileId" not in pending
    tenant = api.credentials.tenant
    await run_export(tenant.id, tenant.number, created["Id"])
    _, done = await api.call("GET", f"/v1/object/export/{created['Id']}")
    assert done["Status"] == "Completed", done
    return done


async def test_an_export_writes_csv_with_object_named_headers(api: ApiClient) -> None:
    account = await api.create_account(partner=True)
    invoice = await api.ok("POST", "/v1/invoices", invoice_body(account["accountNumber"], "40"))
    query = "select Id, Amount, Account.PartnerAccount from Invoice where Amount >= 40"
    done = await _export(api, {"Format": "csv", "Query": query, "Name": "invoices"})
    assert (done["Query"], done["Name"], done["Zip"], done["Format"]) == (
        query,
        "invoices",
        False,
        "csv",
    )
    content = await _file(api, done["FileId"])
    assert done["Size"] == len(content)
    assert _rows(content) == [
        ["Invoice.Id", "Invoice.Amount", "Account.PartnerAccount"],
        [invoice["id"], "40", "true"],
    ]
    assert datetime.fromisoformat(done["CreatedDate"]).tzinfo is not None


async def test_a_zipped_export_holds_the_csv(api: ApiClient) -> None:
    account = await api.create_account()
    done = await _export(
        api, {"Format": "CSV", "Query": "select AccountNumber from Account", "Zip": True}
    )
    with zipfile.ZipFile(io.BytesIO(await _file(api, done["FileId"]))) as archive:
        (name,) = archive.namelist()
        assert _rows(archive.read(name)) == [
            ["Account.AccountNumber"],
            [account["accountNumber"]],
        ]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"Format": "html", "Query": "select Id from Account"}, "Format"),
        ({"Format": "Excel", "Query": "select Id from Account"}, "Format"),
        ({"Format": "pdf", "Query": "select Id from Account"}, "Format"),
        ({"Format": "csv", "Query": "select Id from Nowhere"}, "Nowhere"),
        ({"Format": "csv", "Query": "select Id from Account", "Encrypted": True}, "Encrypted"),
        ({"Format": "csv"}, "Query"),
    ],
)
async def test_an_export_refused_answers_in_the_crud_shape_and_records_nothing(
    api: ApiClient, engine: AsyncEngine, body: dict[str, Any], named: str
) -> None:
    status, payload = await api.call("POST", "/v1/object/export", body, expect=None)
    assert status == 400 and payload["Success"] is False, payload
    assert named in payload["Errors"][0]["Message"], payload
    assert await _jobs(engine, api.credentials.tenant.id) == 0


async def test_an_unknown_export_is_the_crud_empty_result(api: ApiClient) -> None:
    status, payload = await api.call("GET", "/v1/object/export/nope", expect=None)
    assert (status, payload) == (404, {"done": True, "records": [], "size": 0})


# -- zuora-sdk on the live server, with a worker ------------------------------------------------


@pytest.fixture(scope="module")
def worker(database_url: str) -> Iterator[None]:
    with running_worker(database_url):
        yield


def test_sdk_aggregate_queries_and_files(zc: ZuoraClient, worker: None) -> None:
    accounts = zc.accounts_api()
    created = accounts.create_account(
        CreateAccountRequest(
            name="SDK AQuA",
            currency="USD",
            bill_cycle_day=1,
            auto_pay=False,
            bill_to_contact=CreateAccountContact(first_name="Ada", last_name="Lovelace"),
        )
    )
    account_id = created.account_id
    aqua = zc.aggregate_queries_api()
    job = aqua.create_batch_query(
        CreateBatchQueryJobRequest(
            format="csv",
            version="1.0",
            name="sdk",
            use_query_labels=True,
            queries=[
                CreateBatchQueryRequest(
                    name="accounts",
                    query=f"select AccountNumber, Name from Account where Id = '{account_id}'",
                    type="zoqlexport",
                )
            ],
        )
    )
    assert job.id and job.status == "submitted"
    deadline = time.monotonic() + 30
    while (read := aqua.get_batch_query_job(job.id)).status != "completed":
        assert read.status in ("submitted", "executing"), read
        assert time.monotonic() < deadline, "the job did not complete in 30 s"
        time.sleep(0.2)
    assert read.batches is not None and read.batches[0].record_count == 1
    file_id = read.batches[0].file_id
    assert file_id
    content = zc.files_api().get_files(file_id)
    assert _rows(bytes(content)) == [
        ["Account.AccountNumber", "Account.Name"],
        [created.account_number, "SDK AQuA"],
    ]
    refused = aqua.create_batch_query(
        CreateBatchQueryJobRequest(
            queries=[CreateBatchQueryRequest(name="x", query="select from", type="zoql")]
        )
    )
    assert refused.id is None and refused.error_code == "90005"
    assert refused.message == SYNTAX_ERROR
