"""Group commit of partner-account invoices (`billing/group_commit.py`) over real HTTP on a
server of its own (one worker, so its `/metrics` is the whole server's): parallel requests are
written by fewer statements than requests, each still acknowledged, numbered once and counted
as one pending change; a chosen invoice number raced by parallel requests is taken by exactly
one of them while the rest of their batches are written; off, every request is its own
statement."""

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.faults import running_server
from tests.helpers import ApiClient, TenantCredentials, count_invoices, invoice_body, new_tenant

PARALLEL = 48
BATCH_METRIC = "partnerbill_invoice_group_commit_batch_size"


@pytest.fixture(scope="module")
def group_commit_server(database_url: str) -> Iterator[str]:
    with running_server(database_url) as server:
        yield server.base_url


async def _client(base_url: str, engine: AsyncEngine) -> AsyncIterator[ApiClient]:
    credentials: TenantCredentials = await new_tenant(engine)
    limits = httpx.Limits(max_connections=PARALLEL, max_keepalive_connections=PARALLEL)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as http:
        client = ApiClient(http, credentials)
        await client.authenticate()
        yield client


@pytest.fixture
async def api(group_commit_server: str, engine: AsyncEngine) -> AsyncIterator[ApiClient]:
    async for client in _client(group_commit_server, engine):
        yield client


async def batches(api: ApiClient) -> tuple[float, float]:
    """(statements, invoices) the server's group commit wrote so far."""
    text = (await api.http.get("/metrics")).text
    found = {
        kind: float(value)
        for kind, value in re.findall(rf"^{BATCH_METRIC}_(count|sum) (\S+)$", text, re.M)
    }
    return found.get("count", 0.0), found.get("sum", 0.0)


async def post_all(api: ApiClient, bodies: list[dict[str, object]]) -> list[dict[str, object]]:
    results = await asyncio.gather(*(api.call("POST", "/v1/invoices", b) for b in bodies))
    for status, payload in results:
        assert status == 200, payload
    return [payload for _, payload in results]


async def test_parallel_invoices_share_statements_and_each_stays_one_change(
    api: ApiClient, engine: AsyncEngine
) -> None:
    numbers = [(await api.create_account(partner=True))["accountNumber"] for _ in range(3)]
    amounts = [Decimal(1000 + 37 * i).scaleb(-2) for i in range(PARALLEL)]
    statements_before, invoices_before = await batches(api)

    answers = await post_all(
        api, [invoice_body(numbers[i % 3], amount) for i, amount in enumerate(amounts)]
    )

    assert all(answer["success"] is True for answer in answers), answers
    assert len({answer["invoiceNumber"] for answer in answers}) == PARALLEL
    assert await count_invoices(engine, api.tenant.id) == PARALLEL
    statements, invoices = await batches(api)
    assert invoices - invoices_before == PARALLEL
    assert statements - statements_before < PARALLEL  # some statements carried several
    pending = 0
    for k, number in enumerate(numbers):
        account = await api.ok("GET", f"/v1/accounts/{number}")
        pending += account["metricsFreshness"]["pendingChanges"]
        refreshed = await api.refresh(number)
        after = await api.ok("GET", f"/v1/accounts/{number}")
        assert after["metrics"]["totalInvoiceBalance"] == sum(amounts[k::3], Decimal(0))
        assert refreshed["foldedChanges"] == len(amounts[k::3])
    assert pending == PARALLEL


async def test_a_raced_invoice_number_goes_to_one_request_and_its_batch_is_written(
    api: ApiClient, engine: AsyncEngine
) -> None:
    number = (await api.create_account(partner=True))["accountNumber"]
    contested = [invoice_body(number, "10.00", invoiceNumber="GC-RACE") for _ in range(8)]
    free = [invoice_body(number, "1.00") for _ in range(PARALLEL - 8)]
    bodies = [body for pair in zip(contested, free[:8], strict=True) for body in pair] + free[8:]

    answers = await post_all(api, bodies)

    won = [a for a in answers if a["success"] is True and a["invoiceNumber"] == "GC-RACE"]
    lost = [a for a in answers if a["success"] is False]
    assert len(won) == 1
    assert len(lost) == 7
    for answer in lost:
        (reason,) = answer["reasons"]  # type: ignore[misc]
        assert "GC-RACE" in reason["message"] or "taken meanwhile" in reason["message"], reason
    assert sum(1 for a in answers if a["success"] is True) == PARALLEL - 7
    assert await count_invoices(engine, api.tenant.id) == PARALLEL - 7


async def test_off_every_invoice_is_its_own_statement(
    database_url: str, engine: AsyncEngine
) -> None:
    with running_server(database_url, {"PARTNERBILL_GROUP_COMMIT": "false"}) as server:
        async for api in _client(server.base_url, engine):
            number = (await api.create_account(partner=True))["accountNumber"]
            answers = await post_all(api, [invoice_body(number, "2.00")] * 16)
            assert all(answer["success"] is True for answer in answers)
            assert await batches(api) == (0.0, 0.0)
            assert await count_invoices(engine, api.tenant.id) == 16
