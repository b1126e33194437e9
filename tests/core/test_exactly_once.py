"""Idempotency-Key across real crashes: a keyed write cut off mid-flight (its server killed with
kill -9, or its database connection terminated after the business statement) leaves neither a
write nor a record, and the retry with the same key runs once; an answer lost after the commit is
replayed, never written twice."""

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.core.json import dumps, loads
from tests.faults import (
    authorize,
    blocked_backend,
    metrics_row_held,
    running_server,
    start_server,
)
from tests.helpers import (
    TenantCredentials,
    account_body,
    assert_envelope,
    count_invoices,
    idempotency_record,
    invoice_body,
)

# How long a retry may keep getting 409 after a crash: only until the dead request's backend
# notices its client is gone, not the minutes an abandoned claim used to hold the key.
IN_FLIGHT_AFTER_CRASH_SECONDS = 10


async def _synchronous_account(
    http: httpx.AsyncClient, credentials: TenantCredentials
) -> tuple[dict[str, Any], bytes]:
    """A non-partner account (its invoices take the metrics row lock after the insert) on a
    tenant whose writes wait up to 20 s for that lock, and an invoice body for it."""
    await authorize(http, credentials)
    settings = await http.put("/v1/partnerbill/settings", json={"lockWaitMs": 20_000})
    assert settings.status_code == 200, settings.text
    created = await http.post(
        "/v1/accounts", content=dumps(account_body()), headers={"Content-Type": "application/json"}
    )
    assert created.status_code == 200, created.text
    account = dict(loads(created.content))
    return account, dumps(invoice_body(account["accountNumber"], "10"))


def _keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key, "Content-Type": "application/json"}


async def _retry_until_not_in_flight(
    http: httpx.AsyncClient, body: bytes, key: str
) -> httpx.Response:
    deadline = time.monotonic() + IN_FLIGHT_AFTER_CRASH_SECONDS
    while True:
        response = await http.post("/v1/invoices", content=body, headers=_keyed(key))
        if response.status_code != 409 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.2)


async def _backend_ended(engine: AsyncEngine, pid: int) -> None:
    deadline = time.monotonic() + 5
    while True:
        async with engine.connect() as conn:
            alive = await conn.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            )
        if not alive:
            return
        assert time.monotonic() < deadline, "the dead request's backend still runs"
        await asyncio.sleep(0.1)


async def _stored_record(engine: AsyncEngine, key: str) -> dict[str, Any] | None:
    """The key's record once the request still running on the server has committed it."""
    deadline = time.monotonic() + 15
    while True:
        record = await idempotency_record(engine, key)
        if record is not None or time.monotonic() > deadline:
            return record
        await asyncio.sleep(0.1)


async def _assert_written_once(
    http: httpx.AsyncClient,
    engine: AsyncEngine,
    tenant_id: str,
    body: bytes,
    key: str,
    account_number: str,
) -> None:
    retry = await _retry_until_not_in_flight(http, body, key)
    assert retry.status_code == 200, retry.text
    assert loads(retry.content)["success"] is True
    assert await count_invoices(engine, tenant_id) == 1
    replay = await http.post("/v1/invoices", content=body, headers=_keyed(key))
    assert replay.content == retry.content
    assert replay.headers["idempotent-replayed"] == "true"
    assert await count_invoices(engine, tenant_id) == 1
    account = await http.get(f"/v1/accounts/{account_number}")
    assert loads(account.content)["metrics"]["totalInvoiceBalance"] == 10


async def test_kill_9_of_the_serving_process_mid_write_writes_once(
    database_url: str, engine: AsyncEngine, tenant_credentials: TenantCredentials
) -> None:
    tenant_id = tenant_credentials.tenant.id
    key = f"crash-{uuid.uuid4().hex}"
    doomed = start_server(database_url)
    try:
        async with httpx.AsyncClient(base_url=doomed.base_url, timeout=30) as http:
            account, body = await _synchronous_account(http, tenant_credentials)
            async with metrics_row_held(engine, tenant_id, account["accountId"]) as held:
                in_flight = asyncio.create_task(
                    http.post("/v1/invoices", content=body, headers=_keyed(key))
                )
                # The invoice is inserted, not committed.
                orphan = await blocked_backend(engine, held)
                doomed.kill()
                with pytest.raises(httpx.TransportError):
                    await in_flight
                # Still blocked on the held row, its backend notices the client is gone and ends,
                # rolling back (and releasing the key) without waiting for the lock.
                await _backend_ended(engine, orphan)
    finally:
        doomed.stop()
    assert await idempotency_record(engine, key) is None
    assert await count_invoices(engine, tenant_id) == 0

    with running_server(database_url) as restarted:
        async with httpx.AsyncClient(base_url=restarted.base_url, timeout=30) as http:
            await authorize(http, tenant_credentials)
            await _assert_written_once(http, engine, tenant_id, body, key, account["accountNumber"])


async def test_database_connection_lost_after_the_write_is_a_503_and_runs_again(
    live_server: str, engine: AsyncEngine, tenant_credentials: TenantCredentials
) -> None:
    tenant_id = tenant_credentials.tenant.id
    key = f"lost-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as http:
        account, body = await _synchronous_account(http, tenant_credentials)
        async with metrics_row_held(engine, tenant_id, account["accountId"]) as held:
            in_flight = asyncio.create_task(
                http.post("/v1/invoices", content=body, headers=_keyed(key))
            )
            backend = await blocked_backend(engine, held)
            async with engine.connect() as conn:
                assert await conn.scalar(
                    text("SELECT pg_terminate_backend(:pid)"), {"pid": backend}
                )
            failed = await in_flight
        assert failed.status_code == 503, failed.text
        payload = loads(failed.content)
        assert_envelope(payload, 61)
        assert payload["requestId"] == failed.headers["zuora-request-id"]
        assert await idempotency_record(engine, key) is None
        assert await count_invoices(engine, tenant_id) == 0

        await _assert_written_once(http, engine, tenant_id, body, key, account["accountNumber"])


async def test_answer_lost_after_the_commit_is_replayed_not_written_again(
    live_server: str, engine: AsyncEngine, tenant_credentials: TenantCredentials
) -> None:
    tenant_id = tenant_credentials.tenant.id
    key = f"gone-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as http:
        account, body = await _synchronous_account(http, tenant_credentials)
        async with metrics_row_held(engine, tenant_id, account["accountId"]) as held:
            # The client gives up (its connection closed) while the write waits; the server
            # carries on and commits once the row is free.
            with pytest.raises(httpx.ReadTimeout):
                await http.post("/v1/invoices", content=body, headers=_keyed(key), timeout=1.5)
            await blocked_backend(engine, held)
        record = await _stored_record(engine, key)
        assert record is not None and record["status_code"] == 200
        assert await count_invoices(engine, tenant_id) == 1

        retry = await http.post("/v1/invoices", content=body, headers=_keyed(key))
        assert retry.status_code == 200
        assert retry.headers["idempotent-replayed"] == "true"
        assert retry.content == bytes(record["response_body"])
        assert await count_invoices(engine, tenant_id) == 1
