"""The job worker as a real process: its refresh loop folds partner changes once the tenant's
interval has elapsed (an hour by default, a second at the shortest), and it runs bill runs."""

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.catalog_fixtures import new_account, order_body, rate_plan, recurring_charge
from tests.helpers import ApiClient, invoice_body


@pytest.fixture
def worker_process(database_url: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "DATABASE_URL": database_url, "PARTNERBILL_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-m", "partnerbill.cli", "worker"], env=env)
    yield process
    process.terminate()
    process.wait(timeout=30)


async def _folded(api: ApiClient, number: str, worker: subprocess.Popen[bytes]) -> dict[str, Any]:
    """The account once the worker has folded all its pending changes (within 30 s)."""
    deadline = time.monotonic() + 30
    while True:
        account = await api.ok("GET", f"/v1/accounts/{number}")
        if account["metricsFreshness"]["pendingChanges"] == 0:
            return account
        assert worker.poll() is None, "the worker died"
        assert time.monotonic() < deadline, "the worker did not refresh the account in 30 s"
        await asyncio.sleep(0.1)


async def test_worker_refreshes_an_account_whose_interval_has_elapsed(
    api: ApiClient,
    engine: AsyncEngine,
    database_url: str,
    worker_process: subprocess.Popen[bytes],
) -> None:
    account = await api.create_account(partner=True)
    number = account["accountNumber"]
    await api.ok("POST", "/v1/invoices", invoice_body(number, "40.00"))
    await api.ok("POST", "/v1/invoices", invoice_body(number, "2.50"))
    before = await api.ok("GET", f"/v1/accounts/{number}")
    assert before["metricsFreshness"]["pendingChanges"] == 2
    assert before["metrics"]["totalInvoiceBalance"] == 0

    # The tenant's interval (3,600 s by default) has elapsed since the last refresh.
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE account_metrics SET last_metrics_update = now() - interval '2 hours' "
                "WHERE tenant_id = :tenant_id AND account_id = :account_id"
            ),
            {"tenant_id": api.tenant.id, "account_id": account["accountId"]},
        )
    before = await api.ok("GET", f"/v1/accounts/{number}")

    # The worker's refresh loop finds the account due within a poll.
    after = await _folded(api, number, worker_process)
    assert after["metrics"]["totalInvoiceBalance"] == Decimal("42.50")
    assert after["basicInfo"]["lastMetricsUpdate"] > before["basicInfo"]["lastMetricsUpdate"]


async def test_a_one_second_interval_keeps_metrics_fresh_without_any_trigger(
    api: ApiClient, worker_process: subprocess.Popen[bytes]
) -> None:
    await api.ok("PUT", "/v1/partnerbill/settings", {"metricsRefreshIntervalSeconds": 1})
    account = await api.create_account(partner=True)
    number = account["accountNumber"]
    for amount in ("5.00", "7.25"):
        await api.ok("POST", "/v1/invoices", invoice_body(number, amount))
        after = await _folded(api, number, worker_process)
    assert after["metrics"]["totalInvoiceBalance"] == Decimal("12.25")


async def test_worker_runs_a_bill_run(
    api: ApiClient, worker_process: subprocess.Popen[bytes]
) -> None:
    """`POST /v1/bill-runs` defers the run in its transaction; the worker takes it from Pending
    to Completed and its draft invoice exists."""
    plan = await rate_plan(api, recurring_charge("25.00"))
    account = await new_account(api)
    await api.ok("POST", "/v1/orders", order_body(account["accountNumber"], plan, "2026-03-01"))
    run = await api.ok(
        "POST",
        "/v1/bill-runs",
        {
            "targetDate": "2026-03-01",
            "billRunFilters": [{"filterType": "Account", "accountId": account["accountId"]}],
        },
    )
    assert run["status"] == "Pending"
    deadline = time.monotonic() + 30
    while run["status"] in ("Pending", "Processing"):
        assert worker_process.poll() is None, "the worker died"
        assert time.monotonic() < deadline, "the worker did not run the bill run in 30 s"
        await asyncio.sleep(0.2)
        run = await api.ok("GET", f"/v1/bill-runs/{run['id']}")
    assert run["status"] == "Completed", run
    assert run["invoiceCount"] == 1
    summary = await api.ok("GET", f"/v1/accounts/{account['accountNumber']}/summary")
    assert summary["invoices"] == []  # drafts until the run is posted
    posted = await api.ok("PUT", f"/v1/bill-runs/{run['id']}/post")
    assert posted["status"] == "Posted"
    assert (await api.metrics(account["accountNumber"]))["totalInvoiceBalance"] == Decimal("25.00")
