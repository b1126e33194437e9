"""Errors from every layer over real HTTP: the envelope with the request id, a retryable 503 when
the database cannot serve (down, pool exhausted, a read past the statement timeout), a logged 500
that keeps the keep-alive connection open, and the Prometheus count of error answers."""

import asyncio
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.core.json import dumps, loads
from tests.faults import (
    KeepAliveConnection,
    RawResponse,
    account_inserts_fail,
    authorize,
    blocked_backend,
    free_port,
    metrics_row_held,
    running_server,
)
from tests.helpers import (
    TenantCredentials,
    account_body,
    assert_envelope,
    count_accounts,
    idempotency_record,
    invoice_body,
)

INTERNAL, TEMPORARY, LOCK_COMPETITION = 60, 61, 50
JSON = {"Content-Type": "application/json"}


def _token(connection: KeepAliveConnection, credentials: TenantCredentials) -> str:
    form = (
        f"client_id={credentials.client_id}&client_secret={credentials.client_secret}"
        "&grant_type=client_credentials"
    ).encode()
    response = connection.request(
        "POST", "/oauth/token", form, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status, response.body
    return str(loads(response.body)["access_token"])


def _error(response: RawResponse, status: int, category: int) -> list[dict[str, Any]]:
    """An error in the envelope whose requestId is the response's, on a connection kept open."""
    assert response.status == status, (response.status, response.body)
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("connection", "").lower() != "close"
    payload = loads(response.body)
    assert payload["requestId"] == response.headers["zuora-request-id"]
    return assert_envelope(payload, category)


async def test_an_unexpected_error_is_a_logged_500_and_the_connection_stays_open(
    database_url: str, engine: AsyncEngine, tenant_credentials: TenantCredentials, tmp_path: Path
) -> None:
    log_path = tmp_path / "server.log"
    tenant_id = tenant_credentials.tenant.id
    with running_server(database_url, log_path=log_path) as server:
        connection = KeepAliveConnection(server.port)
        try:
            auth = {"Authorization": f"Bearer {_token(connection, tenant_credentials)}", **JSON}
            body = dumps(account_body())
            async with account_inserts_fail(engine, tenant_id):
                failed = connection.request("POST", "/v1/accounts", body, auth)
                reasons = _error(failed, 500, INTERNAL)
                assert "injected failure" not in reasons[0]["message"]  # no internals leak
                # The same through the Idempotency-Key layer: rolled back, nothing stored.
                key = f"boom-{uuid.uuid4().hex}"
                keyed = connection.request(
                    "POST", "/v1/accounts", body, {**auth, "Idempotency-Key": key}
                )
                _error(keyed, 500, INTERNAL)
                assert await idempotency_record(engine, key) is None
            # Same socket: the next requests are served.
            after = connection.request("POST", "/v1/accounts", body, auth)
            assert after.status == 200, after.body
            assert loads(after.body)["success"] is True
            retried = connection.request(
                "POST", "/v1/accounts", body, {**auth, "Idempotency-Key": key}
            )
            assert retried.status == 200 and "idempotent-replayed" not in retried.headers
            assert connection.request("GET", "/health").status == 200
        finally:
            connection.close()
    assert await count_accounts(engine, tenant_id) == 2
    log = log_path.read_text()
    request_id = failed.headers["zuora-request-id"]
    lines = [line for line in log.splitlines() if request_id in line]
    assert lines, log
    assert (
        "unhandled_error" in lines[0] and "Traceback" in lines[0] and "injected failure" in lines[0]
    )


async def test_database_down_is_a_503_from_every_layer(tmp_path: Path) -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    with running_server(nowhere) as server:
        connection = KeepAliveConnection(server.port)
        try:
            token = {"Authorization": "Bearer abc.def", **JSON}
            calls = [
                # The Idempotency-Key middleware reads the token's tenant before any route runs.
                ("POST", "/v1/accounts", dumps(account_body()), {**token, "Idempotency-Key": "k"}),
                # Authentication (a route dependency).
                ("GET", "/v1/accounts/A00000001", b"", token),
                # A route's own statement.
                (
                    "POST",
                    "/oauth/token",
                    b"client_id=a&client_secret=b",
                    {"Content-Type": "application/x-www-form-urlencoded"},
                ),
            ]
            for method, path, body, headers in calls:
                reasons = _error(connection.request(method, path, body, headers), 503, TEMPORARY)
                assert "retry" in reasons[0]["message"]
            assert connection.request("GET", "/health").status == 200
            metrics = connection.request("GET", "/metrics").body.decode()
        finally:
            connection.close()
    assert _error_count(metrics, "temporary") == 3


async def test_pool_exhausted_is_a_503_within_the_pool_timeout(
    database_url: str, engine: AsyncEngine, tenant_credentials: TenantCredentials
) -> None:
    settings = {
        "PARTNERBILL_DB_POOL_SIZE": "1",
        "PARTNERBILL_DB_POOL_TIMEOUT_SECONDS": "1",
    }
    with running_server(database_url, settings) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            await authorize(http, tenant_credentials)
            await http.put("/v1/partnerbill/settings", json={"lockWaitMs": 20_000})
            created = await http.post("/v1/accounts", content=dumps(account_body()), headers=JSON)
            account = loads(created.content)
            body = dumps(invoice_body(account["accountNumber"], "10"))
            async with metrics_row_held(
                engine, tenant_credentials.tenant.id, account["accountId"]
            ) as held:
                # This write holds the server's one connection while it waits on the row.
                holding = asyncio.create_task(http.post("/v1/invoices", content=body, headers=JSON))
                await blocked_backend(engine, held)
                started = time.monotonic()
                starved = await http.get(f"/v1/accounts/{account['accountId']}")
                waited = time.monotonic() - started
            assert starved.status_code == 503, starved.text
            assert_envelope(loads(starved.content), TEMPORARY)
            assert 0.9 <= waited < 3, waited
            held_write = await holding
            assert held_write.status_code == 200 and loads(held_write.content)["success"] is True
            again = await http.get(f"/v1/accounts/{account['accountId']}")
            assert again.status_code == 200


async def test_a_read_behind_a_table_lock_ends_at_the_statement_timeout(
    database_url: str, engine: AsyncEngine, tenant_credentials: TenantCredentials
) -> None:
    with running_server(database_url, {"PARTNERBILL_STATEMENT_TIMEOUT_MS": "500"}) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            await authorize(http, tenant_credentials)
            created = await http.post("/v1/accounts", content=dumps(account_body()), headers=JSON)
            path = f"/v1/accounts/{loads(created.content)['accountId']}"
            assert (await http.get(path)).status_code == 200
            async with engine.connect() as conn:
                await conn.begin()
                await conn.execute(text("LOCK TABLE account_metrics IN ACCESS EXCLUSIVE MODE"))
                started = time.monotonic()
                stalled = await http.get(path)
                waited = time.monotonic() - started
                await conn.rollback()
            assert stalled.status_code == 503, stalled.text
            reasons = assert_envelope(loads(stalled.content), TEMPORARY)
            assert "in time" in reasons[0]["message"]
            assert waited < 3, waited
            assert (await http.get(path)).status_code == 200


def _error_count(metrics: str, category: str) -> float:
    found = re.search(
        rf'^partnerbill_error_answers_total{{category="{category}"}} (\S+)$', metrics, re.M
    )
    return float(found.group(1)) if found else 0.0


async def test_error_answers_are_counted_by_category_across_workers(
    database_url: str, engine: AsyncEngine, tenant_credentials: TenantCredentials, tmp_path: Path
) -> None:
    prometheus = tmp_path / "prometheus"
    prometheus.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(prometheus)}
    with running_server(database_url, env, workers=2) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            auth = {"Authorization": f"Bearer {await authorize(http, tenant_credentials)}"}
            for _ in range(3):
                assert (await http.get("/v1/accounts/A404", headers=auth)).status_code == 404
            bad = dumps(account_body(currency="XXX"))
            for _ in range(2):
                response = await http.post("/v1/accounts", content=bad, headers={**auth, **JSON})
                assert response.status_code == 400
            unauthorized = await http.get("/v1/accounts/A1", headers={"Authorization": "Bearer x"})
            assert unauthorized.status_code == 401
            await http.put("/v1/partnerbill/settings", json={"lockWaitMs": 100}, headers=auth)
            created = await http.post(
                "/v1/accounts", content=dumps(account_body()), headers={**auth, **JSON}
            )
            account = loads(created.content)
            async with metrics_row_held(engine, tenant_credentials.tenant.id, account["accountId"]):
                competing = await http.post(
                    "/v1/invoices",
                    content=dumps(invoice_body(account["accountNumber"], "1")),
                    headers={**auth, **JSON},
                )
                assert_envelope(loads(competing.content), LOCK_COMPETITION)
            async with account_inserts_fail(engine, tenant_credentials.tenant.id):
                failed = await http.post(
                    "/v1/accounts", content=dumps(account_body()), headers={**auth, **JSON}
                )
                assert failed.status_code == 500
            metrics = (await http.get("/metrics")).text
    assert _error_count(metrics, "not_found") == 3
    assert _error_count(metrics, "invalid_value") == 2
    assert _error_count(metrics, "authentication_failed") == 1
    assert _error_count(metrics, "lock_competition") == 1
    assert _error_count(metrics, "internal") == 1
