"""Scenario `export`: the query and export surfaces over one distributor account with N posted
invoices (by default 200,000; `--invoices`; `--tiny`: 2,000).

The invoices are seeded with one SQL statement (the write path is the other scenarios'
subject), then analyzed; the account is then switched to non-partner and back, which recomputes
its metrics from the seeded documents, and refreshed, so its metrics and `lastMetricsUpdate`
are real.

Variants:
- `aqua-export`: an AQuA job (`zoqlexport`, gzip) of the account's invoices with account fields
  (`Account.PartnerAccount`, `Account.LastMetricsUpdate`): submit -> completed -> file fetched;
  latency is the whole round trip, objects the rows in the file.
- `data-query-export`: the same rows by Data Query (Invoice joined to Account, CSV, gzip).
- `object-query-page-1` / `object-query-page-deep`: `/object-query/invoices` with
  `filter[]=accountid.EQ:<id>`, pageSize 99, page 1 and page 2,000 (the deepest page there is
  when N is smaller) requested alternately; the walk to the deep page follows `nextPage`.
- `writes-alone` / `writes-with-exports`: standalone invoices written into the same account by
  the harness's clients, without and with AQuA and Data Query exports of it running meanwhile.

Targets (informative): exports <= 10 s each; Object Query page-1 p50 <= 10 ms and deep/page-1
p50 <= 1.2; writers' p99 with exports <= 1.2x without; every server process <= 300 MB RSS.
"""

import asyncio
import gzip
import statistics
import time
from typing import Any

from sqlalchemy import text

from bench.harness import Bench, Measurement, invoice_body, latency_json

NAME = "export"
DESCRIPTION = "AQuA, Data Query and Object Query over one account with N invoices; writers beside"

DEFAULT_INVOICES = 200_000
TINY_INVOICES = 2_000
PAGE_SIZE = 99
DEEP_PAGE = 2_000
PAGE_SAMPLES, TINY_PAGE_SAMPLES = 100, 10
POLL_SECONDS = 0.05
JOB_TIMEOUT_SECONDS = 300.0
EXPORT_TARGET_SECONDS = 10.0
PAGE_TARGET_MS = 10.0
DEEP_RATIO_TARGET = 1.2
WRITE_RATIO_TARGET = 1.2
RSS_TARGET_MB = 300.0
AQUA, DATA_QUERY = "aqua-export", "data-query-export"
PAGE_1, PAGE_DEEP = "object-query-page-1", "object-query-page-deep"
ALONE, WITH_EXPORTS = "writes-alone", "writes-with-exports"

SEED = text(
    """
    INSERT INTO invoices (tenant_id, id, invoice_number, account_id, status, currency,
        invoice_date, due_date, payment_term, amount, balance, posted_date, created_at,
        updated_at)
    SELECT :tenant_id, md5(:account_id || n::text), 'EXP' || lpad(n::text, 9, '0'), :account_id,
        'Posted', 'USD', DATE '2026-01-01' + (n % 365), DATE '2026-01-01' + (n % 365),
        'Due Upon Receipt', ((1 + n % 97) || '.' || lpad((n % 100)::text, 2, '0'))::numeric,
        ((1 + n % 97) || '.' || lpad((n % 100)::text, 2, '0'))::numeric, now(),
        now() - interval '1 second' * n, now() - interval '1 second' * n
    FROM generate_series(1, :count) AS n
    """
)


def invoice_count(bench: Bench) -> int:
    if bench.config.invoices:
        return int(bench.config.invoices)
    return TINY_INVOICES if bench.config.tiny else DEFAULT_INVOICES


async def seed_account(bench: Bench, invoices: int) -> dict[str, Any]:
    account = await bench.api.create_account("Export distributor", True)
    number = account["accountNumber"]
    started = time.perf_counter()
    async with bench.engine.begin() as conn:
        await conn.execute(
            SEED,
            {"tenant_id": bench.tenant.id, "account_id": account["accountId"], "count": invoices},
        )
    async with bench.engine.begin() as conn:
        # What autovacuum would do soon after such a load; without statistics the planner
        # takes the 200,000 rows for one and sorts them for every Object Query page.
        await conn.execute(text("ANALYZE invoices"))
    seeded = time.perf_counter() - started
    for partner in (False, True):
        await bench.api.ok("PUT", f"/v1/accounts/{number}", {"partnerAccount": partner})
    await bench.api.ok("POST", f"/v1/partnerbill/accounts/{number}/refresh-metrics")
    bench.notes.append(f"Seeded {invoices:,} posted invoices in {seeded:.1f} s (one INSERT).")
    return account


def count_rows(body: bytes) -> int:
    return gzip.decompress(body).count(b"\n") - 1


async def fetch_rows(bench: Bench, url: str) -> int:
    """Download a gzip result file and count its data rows (lines after the header). The count
    runs in a thread: the writers this process measures share its event loop."""
    assert bench.api.http is not None
    async with bench.api.http.get(url, headers=bench.api.headers) as response:
        body = await response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {url}: {response.status} {body[:200]!r}")
    return await asyncio.to_thread(count_rows, body)


async def wait_for(bench: Bench, path: str, done: Any) -> dict[str, Any]:
    deadline = time.perf_counter() + JOB_TIMEOUT_SECONDS
    while time.perf_counter() < deadline:
        job = await bench.api.ok("GET", path)
        finished = done(job)
        if finished is not None:
            return job
        await asyncio.sleep(POLL_SECONDS)
    raise RuntimeError(f"{path} did not finish in {JOB_TIMEOUT_SECONDS} s")


async def aqua_export(bench: Bench, account_id: str) -> int:
    query = (
        "select Id, InvoiceNumber, InvoiceDate, DueDate, Amount, Balance, Status,"
        " Account.AccountNumber, Account.Name, Account.PartnerAccount,"
        f" Account.LastMetricsUpdate from Invoice where Account.Id = '{account_id}'"
    )
    body = {
        "format": "gzip",
        "version": "1.0",
        "name": "bench",
        "encrypted": "none",
        "useQueryLabels": "true",
        "queries": [{"name": "invoices", "query": query, "type": "zoqlexport"}],
    }
    job = await bench.api.ok("POST", "/v1/batch-query/", body)

    def finished(state: dict[str, Any]) -> bool | None:
        if state["status"] in ("error", "aborted", "cancelled"):
            raise RuntimeError(f"AQuA job failed: {state}")
        return True if state["status"] == "completed" else None

    state = await wait_for(bench, f"/v1/batch-query/jobs/{job['id']}", finished)
    return await fetch_rows(bench, f"/v1/files/{state['batches'][0]['fileId']}")


async def data_query_export(bench: Bench, account_id: str) -> int:
    body = {
        "query": (
            "SELECT i.id, i.invoicenumber, i.invoicedate, i.duedate, i.amount, i.balance,"
            " i.status, a.accountnumber, a.name, a.partneraccount, a.lastmetricsupdate"
            " FROM invoice i JOIN account a ON a.id = i.accountid"
            f" WHERE i.accountid = '{account_id}'"
        ),
        "outputFormat": "CSV",
        "compression": "GZIP",
    }
    job = (await bench.api.ok("POST", "/query/jobs", body))["data"]

    def finished(state: dict[str, Any]) -> bool | None:
        status = state["data"]["queryStatus"]
        if status in ("failed", "cancelled"):
            raise RuntimeError(f"Data Query job failed: {state}")
        return True if status == "completed" else None

    state = await wait_for(bench, f"/query/jobs/{job['id']}", finished)
    return await fetch_rows(bench, state["data"]["dataFile"])


async def measured_export(bench: Bench, variant: str, round_number: int, account_id: str) -> None:
    m = Measurement(variant, round_number)
    export = aqua_export if variant == AQUA else data_query_export
    started = time.perf_counter()
    async with bench.rss.sampling():
        rows = await export(bench, account_id)
    m.record(time.perf_counter() - started, True, rows, None)
    m.seconds = time.perf_counter() - started
    m.rss = bench.rss.as_json()
    bench.measurements.append(m)


def page_path(account_id: str, cursor: str | None) -> str:
    path = f"/object-query/invoices?filter[]=accountid.EQ:{account_id}&pageSize={PAGE_SIZE}"
    return path + (f"&cursor={cursor}" if cursor else "")


async def deep_cursor(bench: Bench, account_id: str, invoices: int) -> tuple[str | None, int]:
    """Follow `nextPage` to the cursor of page 2,000 (or the last page); returns it and the
    page number it opens."""
    deepest = min(DEEP_PAGE, max(1, -(-invoices // PAGE_SIZE)))
    cursor: str | None = None
    for _ in range(deepest - 1):
        page = await bench.api.ok("GET", page_path(account_id, cursor))
        cursor = page.get("nextPage")
        if cursor is None:
            raise RuntimeError("the walk ended before the deep page")
    return cursor, deepest


async def object_query_pages(bench: Bench, account_id: str, invoices: int) -> None:
    started = time.perf_counter()
    cursor, deepest = await deep_cursor(bench, account_id, invoices)
    bench.notes.append(
        f"Object Query walk to page {deepest:,} took {time.perf_counter() - started:.1f} s."
    )
    samples = TINY_PAGE_SAMPLES if bench.config.tiny else PAGE_SAMPLES
    pages = {PAGE_1: Measurement(PAGE_1, 0), PAGE_DEEP: Measurement(PAGE_DEEP, 0)}
    started = time.perf_counter()
    async with bench.rss.sampling():
        for i in range(samples):
            for variant in (PAGE_1, PAGE_DEEP) if i % 2 == 0 else (PAGE_DEEP, PAGE_1):
                reply = await bench.api.call(
                    "GET", page_path(account_id, cursor if variant == PAGE_DEEP else None)
                )
                rows = len(reply.payload.get("data", [])) if reply.ok else 0
                pages[variant].record(reply.seconds, reply.ok, rows, reply.reason)
    for m in pages.values():
        m.seconds = time.perf_counter() - started
        m.rss = bench.rss.as_json()
        bench.measurements.append(m)
    bench.notes.append(f"The deep page is page {deepest:,}.")


async def exports_until(bench: Bench, account_id: str, stop: asyncio.Event) -> int:
    done = 0
    while not stop.is_set():
        await aqua_export(bench, account_id)
        await data_query_export(bench, account_id)
        done += 2
    return done


def median_of(variant: str, bench: Bench, key: str) -> float:
    values = [
        latency_json(sorted(m.latencies))[key] or 0.0
        for m in bench.measurements
        if m.variant == variant
    ]
    return statistics.median(values) if values else 0.0


async def run(bench: Bench) -> list[dict[str, Any]]:
    invoices = invoice_count(bench)
    account = await seed_account(bench, invoices)
    number, account_id = account["accountNumber"], account["accountId"]
    clients = bench.config.clients
    for variant, description in (
        (AQUA, f"AQuA zoqlexport of {invoices:,} invoices with account fields, gzip, fetched"),
        (DATA_QUERY, f"Data Query Invoice JOIN Account of {invoices:,} rows, CSV gzip, fetched"),
        (PAGE_1, f"Object Query invoices of the account, filter, pageSize {PAGE_SIZE}, page 1"),
        (PAGE_DEEP, f"the same, page {DEEP_PAGE:,} (by cursor)"),
        (ALONE, f"{clients} clients writing standalone invoices into the account"),
        (WITH_EXPORTS, f"{clients} clients writing, AQuA + Data Query exports running meanwhile"),
    ):
        bench.describe(variant, description)
    bench.touch(ALONE, number)
    bench.touch(WITH_EXPORTS, number)
    await object_query_pages(bench, account_id, invoices)

    async def write(client: int, i: int) -> tuple[bool, int, str | None]:
        reply = await bench.api.call("POST", "/v1/invoices", invoice_body(number, i))
        return reply.ok, 1, None if reply.ok else reply.reason

    exports_during = 0
    for round_number in range(bench.config.rounds):
        for variant in (AQUA, DATA_QUERY) if round_number % 2 == 0 else (DATA_QUERY, AQUA):
            await measured_export(bench, variant, round_number, account_id)
        p99: dict[str, float] = {}
        for variant in (ALONE, WITH_EXPORTS) if round_number % 2 == 0 else (WITH_EXPORTS, ALONE):
            roles = [(variant, write, clients)]
            if variant == ALONE:
                (m,) = await bench.load(roles, round_number)
            else:
                stop = asyncio.Event()
                exporting = asyncio.create_task(exports_until(bench, account_id, stop))
                (m,) = await bench.load(roles, round_number)
                stop.set()
                exports_during += await exporting
            p99[variant] = latency_json(sorted(m.latencies))["p99"] or 0.0
        bench.ratio(
            "writes p99 with/without exports",
            p99[WITH_EXPORTS] / p99[ALONE] if p99[ALONE] else 0.0,
            "writers' p99 with exports of the same account running / without",
        )
    bench.notes.append(f"{exports_during} exports ran beside the writers in all.")
    page_1, page_deep = median_of(PAGE_1, bench, "p50"), median_of(PAGE_DEEP, bench, "p50")
    deep_ratio = page_deep / page_1 if page_1 else 0.0
    bench.ratio("object query deep/page-1 p50", deep_ratio, "page 2,000 p50 / page 1 p50")
    write_ratio = statistics.median(bench.ratios["writes p99 with/without exports"])
    slowest = {
        variant: max(
            (max(m.latencies) for m in bench.measurements if m.variant == variant), default=0.0
        )
        for variant in (AQUA, DATA_QUERY)
    }
    rss = max((m.rss.get("serverRssPeakProcessMb") or 0.0) for m in bench.measurements)
    # Before the first writers, an export holds exactly the seeded invoices; later, those too.
    first = {
        m.objects for m in bench.measurements if m.variant in (AQUA, DATA_QUERY) and m.round == 0
    }
    return [
        {
            "target": f"AQuA export <= {EXPORT_TARGET_SECONDS} s (slowest round)",
            "measured": round(slowest[AQUA], 2),
            "met": slowest[AQUA] <= EXPORT_TARGET_SECONDS,
        },
        {
            "target": f"Data Query export <= {EXPORT_TARGET_SECONDS} s (slowest round)",
            "measured": round(slowest[DATA_QUERY], 2),
            "met": slowest[DATA_QUERY] <= EXPORT_TARGET_SECONDS,
        },
        {
            "target": "the exports before any write hold exactly the seeded invoices",
            "measured": sorted(first),
            "met": first == {invoices},
        },
        {
            "target": f"Object Query page-1 p50 <= {PAGE_TARGET_MS} ms",
            "measured": page_1,
            "met": page_1 <= PAGE_TARGET_MS,
        },
        {
            "target": f"Object Query deep page p50 <= {DEEP_RATIO_TARGET}x page 1",
            "measured": round(deep_ratio, 3),
            "met": deep_ratio <= DEEP_RATIO_TARGET,
        },
        {
            "target": f"writers' p99 with exports <= {WRITE_RATIO_TARGET}x without (median)",
            "measured": round(write_ratio, 3),
            "met": write_ratio <= WRITE_RATIO_TARGET,
        },
        {
            "target": f"every server process <= {RSS_TARGET_MB} MB RSS",
            "measured": rss,
            "met": rss <= RSS_TARGET_MB,
        },
    ]
