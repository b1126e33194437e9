"""`Idempotency-Key` on POST: replay, conflicts (409), misuse (422), and real parallel requests."""

import asyncio
import hashlib
import threading
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.core.idempotency import purge_expired_keys
from partnerbill.core.json import dumps, loads
from partnerbill.core.tables import idempotency_keys
from tests.async_order_support import order_body, procrastinate_jobs, seat_plan, tenant_job_rows
from tests.faults import authorize, blocked_backend, metrics_row_held
from tests.helpers import (
    ApiClient,
    TenantCredentials,
    account_body,
    assert_envelope,
    client_for,
    count_accounts,
    count_invoices,
    idempotency_record,
    invoice_body,
    new_tenant,
)


def _key() -> str:
    return f"idem-{uuid.uuid4().hex}"


async def _post(
    api: ApiClient,
    path: str,
    content: bytes,
    key: str | None,
    *,
    method: str = "POST",
    token: str | None = None,
) -> httpx.Response:
    headers = {
        "Authorization": f"Bearer {token or api.token}",
        "Content-Type": "application/json",
    }
    if key is not None:
        headers["Idempotency-Key"] = key
    return await api.http.request(method, path, content=content, headers=headers)


async def test_replay_returns_same_status_and_body_and_creates_once(
    api: ApiClient, engine: AsyncEngine
) -> None:
    key = _key()
    body = dumps(account_body(name="Once"))
    first = await _post(api, "/v1/accounts", body, key)
    assert first.status_code == 200, first.text
    created = loads(first.content)
    assert created["success"] is True
    assert "idempotent-replayed" not in first.headers

    for _ in range(3):
        again = await _post(api, "/v1/accounts", body, key)
        assert again.status_code == 200
        assert again.content == first.content  # byte for byte, the same accountId
        assert loads(again.content)["accountId"] == created["accountId"]
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["content-type"].startswith("application/json")
        assert again.headers["zuora-request-id"]
        assert again.headers["zuora-request-id"] != first.headers["zuora-request-id"]

    assert await count_accounts(engine, api.tenant.id) == 1
    record = await idempotency_record(engine, key)
    assert record is not None
    assert record["status_code"] == 200
    assert record["tenant_id"] == api.tenant.id
    assert record["method"] == "POST"
    assert record["path"] == "/v1/accounts"
    assert record["request_sha256"] == hashlib.sha256(body).hexdigest()
    assert record["expires_at"] - record["created_at"] >= timedelta(hours=23, minutes=59)

    # Without the key, the same body creates a second account: the key was what deduplicated.
    plain = await _post(api, "/v1/accounts", body, None)
    assert plain.status_code == 200
    assert loads(plain.content)["accountId"] != created["accountId"]
    assert await count_accounts(engine, api.tenant.id) == 2


async def test_distinct_keys_create_distinct_accounts(api: ApiClient, engine: AsyncEngine) -> None:
    body = dumps(account_body())
    ids = set()
    for _ in range(3):
        response = await _post(api, "/v1/accounts", body, _key())
        assert response.status_code == 200
        ids.add(loads(response.content)["accountId"])
    assert len(ids) == 3
    assert await count_accounts(engine, api.tenant.id) == 3


async def test_same_key_on_another_path_is_422(api: ApiClient, engine: AsyncEngine) -> None:
    key = _key()
    first = await _post(api, "/v1/accounts", dumps(account_body()), key)
    assert first.status_code == 200
    number = loads(first.content)["accountNumber"]

    other_path = await _post(api, "/v1/invoices", dumps(invoice_body(number, "10")), key)
    assert other_path.status_code == 422, other_path.text
    reasons = assert_envelope(loads(other_path.content), 20)
    assert "path" in reasons[0]["message"]
    assert await count_invoices(engine, api.tenant.id) == 0

    # A query string makes another path too.
    with_query = await _post(api, "/v1/accounts?x=1", dumps(account_body()), key)
    assert with_query.status_code == 422, with_query.text
    assert await count_accounts(engine, api.tenant.id) == 1

    # The record is untouched: the original request still replays.
    replay = await _post(api, "/v1/accounts", dumps(account_body()), key)
    assert replay.status_code == 200 and replay.content == first.content


async def test_same_key_with_another_method_is_422(api: ApiClient, engine: AsyncEngine) -> None:
    key = _key()
    body = dumps(account_body())
    first = await _post(api, "/v1/accounts", body, key)
    assert first.status_code == 200
    # PATCH is not routed, but the key check comes first: the key belongs to a POST.
    patched = await _post(api, "/v1/accounts", body, key, method="PATCH")
    assert patched.status_code == 422, patched.text
    reasons = assert_envelope(loads(patched.content), 20)
    assert "method" in reasons[0]["message"]
    assert await count_accounts(engine, api.tenant.id) == 1


async def test_same_key_in_another_tenant_is_that_tenants_own(
    api: ApiClient, engine: AsyncEngine
) -> None:
    key = _key()
    body = dumps(account_body())
    first = await _post(api, "/v1/accounts", body, key)
    assert first.status_code == 200
    other = await client_for(api.http, await new_tenant(engine))
    theirs = await _post(other, "/v1/accounts", body, key)
    assert theirs.status_code == 200, theirs.text
    assert "idempotent-replayed" not in theirs.headers
    # Tenant B got an account of its own, not A's response.
    assert loads(theirs.content)["accountId"] != loads(first.content)["accountId"]
    assert await count_accounts(engine, other.tenant.id) == 1
    assert await count_accounts(engine, api.tenant.id) == 1
    replayed = await _post(other, "/v1/accounts", body, key)
    assert replayed.content == theirs.content
    assert replayed.headers["idempotent-replayed"] == "true"
    assert (await _post(api, "/v1/accounts", body, key)).content == first.content


async def test_same_key_with_another_body_is_422(api: ApiClient, engine: AsyncEngine) -> None:
    key = _key()
    first = await _post(api, "/v1/accounts", dumps(account_body(name="One")), key)
    assert first.status_code == 200
    changed = await _post(api, "/v1/accounts", dumps(account_body(name="Two")), key)
    assert changed.status_code == 422, changed.text
    reasons = assert_envelope(loads(changed.content), 20)
    assert "body" in reasons[0]["message"]
    assert await count_accounts(engine, api.tenant.id) == 1
    _, account = await api.call("GET", f"/v1/accounts/{loads(first.content)['accountId']}")
    assert account["basicInfo"]["name"] == "One"


async def test_failed_validation_is_stored_and_replayed(
    api: ApiClient, engine: AsyncEngine
) -> None:
    key = _key()
    bad = dumps({"currency": "USD", "billToContact": {"firstName": "A", "lastName": "B"}})
    first = await _post(api, "/v1/accounts", bad, key)
    assert first.status_code == 400, first.text
    assert_envelope(loads(first.content), 22)

    replay = await _post(api, "/v1/accounts", bad, key)
    assert replay.status_code == 400
    assert replay.content == first.content  # the stored answer, original requestId included
    assert replay.headers["idempotent-replayed"] == "true"
    record = await idempotency_record(engine, key)
    assert record is not None and record["status_code"] == 400

    # Fixing the body under the same key is a different request: 422, still nothing written.
    fixed = await _post(api, "/v1/accounts", dumps(account_body()), key)
    assert fixed.status_code == 422
    assert await count_accounts(engine, api.tenant.id) == 0


async def test_business_rule_failure_is_stored_and_replayed(
    api: ApiClient, engine: AsyncEngine
) -> None:
    await api.create_account(accountNumber="DUP-1")
    key = _key()
    body = dumps(account_body(accountNumber="DUP-1"))
    first = await _post(api, "/v1/accounts", body, key)
    assert first.status_code == 200, first.text
    assert_envelope(loads(first.content), 30)
    replay = await _post(api, "/v1/accounts", body, key)
    assert (replay.status_code, replay.content) == (200, first.content)
    assert replay.headers["idempotent-replayed"] == "true"
    assert await count_accounts(engine, api.tenant.id) == 1


async def _synchronous_account_waiting_long(api: ApiClient) -> dict[str, Any]:
    """A non-partner account (its writes take the metrics row lock) on a tenant whose writes
    wait up to 20 s for it."""
    await api.ok("PUT", "/v1/partnerbill/settings", {"lockWaitMs": 20_000})
    return await api.create_account()


async def test_duplicate_while_the_first_runs_gets_409(api: ApiClient, engine: AsyncEngine) -> None:
    account = await _synchronous_account_waiting_long(api)
    key = _key()
    body = dumps(invoice_body(account["accountNumber"], "10"))
    async with metrics_row_held(engine, api.tenant.id, account["accountId"]) as held:
        first = asyncio.create_task(_post(api, "/v1/invoices", body, key))
        await blocked_backend(engine, held)
        duplicate = await _post(api, "/v1/invoices", body, key)
        assert duplicate.status_code == 409, duplicate.text
        assert_envelope(loads(duplicate.content), 30)
        # The first holds the key by a lock of its transaction, not by a row: a crash of it
        # leaves nothing behind.
        assert await idempotency_record(engine, key) is None
        # Another body under the held key: the key is checked under its lock, so 409 as well.
        other = await _post(api, "/v1/invoices", dumps(invoice_body("X", "1")), key)
        assert other.status_code == 409, other.text
    response = await first
    assert response.status_code == 200, response.text
    assert loads(response.content)["success"] is True
    assert await count_invoices(engine, api.tenant.id) == 1
    replay = await _post(api, "/v1/invoices", body, key)
    assert replay.content == response.content
    assert replay.headers["idempotent-replayed"] == "true"
    assert await count_invoices(engine, api.tenant.id) == 1


async def test_lock_competition_leaves_no_record_and_the_retry_runs(
    api: ApiClient, engine: AsyncEngine
) -> None:
    await api.ok("PUT", "/v1/partnerbill/settings", {"lockWaitMs": 100})
    account = await api.create_account()
    key = _key()
    body = dumps(invoice_body(account["accountNumber"], "10"))
    async with metrics_row_held(engine, api.tenant.id, account["accountId"]):
        competing = await _post(api, "/v1/invoices", body, key)
    assert competing.status_code == 200, competing.text
    assert_envelope(loads(competing.content), 50)
    assert await idempotency_record(engine, key) is None
    assert await count_invoices(engine, api.tenant.id) == 0
    retry = await _post(api, "/v1/invoices", body, key)
    assert retry.status_code == 200 and loads(retry.content)["success"] is True, retry.text
    assert "idempotent-replayed" not in retry.headers
    assert await count_invoices(engine, api.tenant.id) == 1
    record = await idempotency_record(engine, key)
    assert record is not None and record["status_code"] == 200
    assert (await api.metrics(account["accountNumber"]))["totalInvoiceBalance"] == 10


async def test_keyed_invoice_on_a_partner_account_is_written_once(
    api: ApiClient, engine: AsyncEngine
) -> None:
    """The partner fast path (one autocommit statement) runs in the key's transaction."""
    account = await api.create_account(partner=True)
    key = _key()
    body = dumps(invoice_body(account["accountNumber"], "7"))
    first = await _post(api, "/v1/invoices", body, key)
    assert first.status_code == 200 and loads(first.content)["success"] is True, first.text
    for _ in range(2):
        again = await _post(api, "/v1/invoices", body, key)
        assert again.content == first.content
    assert await count_invoices(engine, api.tenant.id) == 1
    await api.refresh(account["accountNumber"])
    assert (await api.metrics(account["accountNumber"]))["totalInvoiceBalance"] == 7


async def test_expired_key_is_reusable(api: ApiClient, engine: AsyncEngine) -> None:
    key = _key()
    async with engine.begin() as conn:
        await conn.execute(
            insert(idempotency_keys).values(
                key=key,
                tenant_id=api.tenant.id,
                method="POST",
                path="/v1/invoices",
                request_sha256="0" * 64,
                status_code=200,
                response_body=b'{"success": true}',
                created_at=func.now() - timedelta(hours=25),
                expires_at=func.now() - timedelta(hours=1),
            )
        )
    response = await _post(api, "/v1/accounts", dumps(account_body()), key)
    assert response.status_code == 200, response.text
    assert loads(response.content)["accountId"]
    assert await count_accounts(engine, api.tenant.id) == 1


@pytest.mark.parametrize("length", [256, 1000])
async def test_key_longer_than_255_is_400(api: ApiClient, engine: AsyncEngine, length: int) -> None:
    key = "k" * length
    response = await _post(api, "/v1/accounts", dumps(account_body()), key)
    assert response.status_code == 400, response.text
    reasons = assert_envelope(loads(response.content), 20)
    assert "Idempotency-Key" in reasons[0]["message"]
    assert await count_accounts(engine, api.tenant.id) == 0
    assert await idempotency_record(engine, key) is None


async def test_key_of_255_is_accepted(api: ApiClient, engine: AsyncEngine) -> None:
    key = uuid.uuid4().hex + "k" * (255 - 32)
    response = await _post(api, "/v1/accounts", dumps(account_body()), key)
    assert response.status_code == 200, response.text
    replay = await _post(api, "/v1/accounts", dumps(account_body()), key)
    assert replay.content == response.content
    assert await count_accounts(engine, api.tenant.id) == 1


async def test_unauthenticated_request_with_key_is_401_and_stores_nothing(
    api: ApiClient, engine: AsyncEngine
) -> None:
    key = _key()
    response = await _post(api, "/v1/accounts", dumps(account_body()), key, token="bad.token")
    assert response.status_code == 401
    assert await idempotency_record(engine, key) is None
    # The key is still free for the real request.
    ok = await _post(api, "/v1/accounts", dumps(account_body()), key)
    assert ok.status_code == 200


async def test_get_ignores_the_key(api: ApiClient, engine: AsyncEngine) -> None:
    account = await api.create_account()
    key = _key()
    response = await api.http.get(
        f"/v1/accounts/{account['accountId']}",
        headers={"Authorization": f"Bearer {api.token}", "Idempotency-Key": key},
    )
    assert response.status_code == 200
    assert await idempotency_record(engine, key) is None


# --- real HTTP, two API processes ---------------------------------------------------------------


async def test_parallel_requests_with_one_key_create_one_account(
    live_server: str, engine: AsyncEngine, tenant_credentials: TenantCredentials
) -> None:
    rounds, parallel = 6, 4
    limits = httpx.Limits(max_connections=parallel * 2)
    async with httpx.AsyncClient(base_url=live_server, timeout=30, limits=limits) as http:
        token = await authorize(http, tenant_credentials)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for round_ in range(rounds):
            key = _key()
            body = dumps(account_body(name=f"Parallel {round_}"))
            responses = await asyncio.gather(
                *(
                    http.post(
                        "/v1/accounts", content=body, headers={**headers, "Idempotency-Key": key}
                    )
                    for _ in range(parallel)
                )
            )
            statuses = [r.status_code for r in responses]
            assert set(statuses) <= {200, 409}, [(r.status_code, r.text) for r in responses]
            succeeded = [loads(r.content) for r in responses if r.status_code == 200]
            assert succeeded, statuses
            assert all(p["success"] is True for p in succeeded), succeeded
            assert len({p["accountId"] for p in succeeded}) == 1, succeeded
            for response in responses:
                if response.status_code == 409:
                    assert_envelope(loads(response.content), 30)
            originals = [
                r
                for r in responses
                if r.status_code == 200 and "idempotent-replayed" not in r.headers
            ]
            assert len(originals) == 1, [dict(r.headers) for r in responses]

            # Afterwards the key replays the one stored answer.
            replay = await http.post(
                "/v1/accounts", content=body, headers={**headers, "Idempotency-Key": key}
            )
            assert replay.status_code == 200
            assert loads(replay.content)["accountId"] == succeeded[0]["accountId"]
            assert await count_accounts(engine, tenant_credentials.tenant.id) == round_ + 1

    assert await count_accounts(engine, tenant_credentials.tenant.id) == rounds


def _threaded_posts(base_url: str, token: str, key: str, body: bytes, n: int) -> list[Any]:
    """n truly simultaneous POSTs from n threads (sync clients), released by one barrier."""

    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def worker(i: int) -> None:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            client.get("/health")  # connect first so the barrier releases the requests only
            barrier.wait()
            results[i] = client.post(
                "/v1/accounts",
                content=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/json",
                    "Idempotency-Key": key,
                },
            )

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


async def test_parallel_threads_with_one_key_create_one_account(
    live_server: str, engine: AsyncEngine, tenant_credentials: TenantCredentials
) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as http:
        token = await authorize(http, tenant_credentials)
    key = _key()
    body = dumps(account_body(name="Threads"))
    responses = await asyncio.to_thread(_threaded_posts, live_server, token, key, body, 8)
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 409}, [(r.status_code, r.text) for r in responses]
    ids = {loads(r.content)["accountId"] for r in responses if r.status_code == 200}
    assert len(ids) == 1, statuses
    assert await count_accounts(engine, tenant_credentials.tenant.id) == 1


async def test_purge_drops_expired_keys_only(api: ApiClient, engine: AsyncEngine) -> None:
    expired, live = _key(), _key()
    async with engine.begin() as conn:
        for key, expires_in in ((expired, timedelta(hours=-1)), (live, timedelta(hours=23))):
            await conn.execute(
                insert(idempotency_keys).values(
                    key=key,
                    tenant_id=api.tenant.id,
                    method="POST",
                    path="/v1/accounts",
                    request_sha256="0" * 64,
                    status_code=200,
                    response_body=b"{}",
                    expires_at=func.now() + expires_in,
                )
            )
    assert await purge_expired_keys(limit=100_000) >= 1
    assert await idempotency_record(engine, expired) is None
    assert await idempotency_record(engine, live) is not None


async def test_keyed_async_order_defers_its_job_once_in_the_key_transaction(
    api: ApiClient, engine: AsyncEngine
) -> None:
    """procrastinate defers on the request's connection: job, record and key commit together."""
    plan_id = await seat_plan(api)
    account = (await api.create_account(partner=True))["accountNumber"]
    key = _key()
    body = dumps(order_body(account, plan_id))
    first = await _post(api, "/v1/async/orders", body, key)
    assert first.status_code == 202, first.text
    job_id = loads(first.content)["jobId"]
    again = await _post(api, "/v1/async/orders", body, key)
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    (job,) = await procrastinate_jobs(engine, job_id)
    assert job["status"] == "todo"
    assert await tenant_job_rows(engine, api.tenant) == (1, 1)
    record = await idempotency_record(engine, key)
    assert record is not None and record["status_code"] == 202
