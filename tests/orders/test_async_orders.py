"""Asynchronous orders: `POST /v1/async/orders` records the job and defers it in the request's
transaction; a real worker process (`partnerbill worker`) runs it; `GET /v1/async-jobs/{jobId}`
reports Processing, then Completed (with `result`) or Failed (with `errors`); a job whose
worker died mid-job is recovered by the stalled-job task; and the official zuora-sdk drives it.
"""

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import procrastinate
import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine
from zuora_sdk import CreateOrderAsyncRequest
from zuora_sdk.zuora_client import ZuoraClient

from partnerbill.core.db import libpq_url
from partnerbill.core.jobs import QUEUES, defer_in_transaction
from partnerbill.core.json import dumps
from partnerbill.tables.orders import async_jobs
from tests.async_order_support import (
    SEAT_PRICE,
    catalog_bodies,
    order_body,
    post_async_order,
    procrastinate_jobs,
    raw_job_status,
    seat_plan,
    tenant_job_rows,
)
from tests.helpers import ApiClient, TenantCredentials, assert_envelope
from tests.job_worker import running_worker

# The SDK's generated models use pydantic APIs deprecated in v2; that is the SDK's business.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:zuora_sdk")

JOB_DEADLINE_SECONDS = 30


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture
async def live_api(
    live_server: str, tenant_credentials: TenantCredentials
) -> AsyncIterator[ApiClient]:
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as http:
        client = ApiClient(http, tenant_credentials)
        await client.authenticate()
        yield client


@pytest.fixture(scope="module")
def worker_tasks(database_url: str) -> dict[str, str]:
    """The tasks a worker process registers (name → queue), read in a fresh process exactly as
    the worker builds them."""
    script = (
        "import json, sys\n"
        "from partnerbill import tasks\n"
        "from partnerbill.core.jobs import build_app\n"
        "tasks.register()\n"
        "app = build_app(sys.argv[1])\n"
        "print(json.dumps({name: task.queue for name, task in app.tasks.items()}))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", script, database_url], check=True, capture_output=True, text=True
    ).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def task_named(worker_tasks: dict[str, str], short_name: str) -> str:
    """The registered name of a task ("orders:process_async_order" for "process_async_order")."""
    (name,) = [n for n in worker_tasks if n.rsplit(":", 1)[-1] == short_name]
    return name


def bare_jobs_app(database_url: str) -> procrastinate.App:
    """A procrastinate app with no tasks of its own: it defers jobs by explicit name and queue,
    whatever `build_app` did to the task objects of this process."""
    return procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=libpq_url(database_url))
    )


async def wait_for_job(
    api: ApiClient, job_id: str, worker: subprocess.Popen[bytes]
) -> dict[str, Any]:
    """Poll `GET /v1/async-jobs/{jobId}` until the job leaves Processing."""
    deadline = time.monotonic() + JOB_DEADLINE_SECONDS
    while True:
        payload = await api.ok("GET", f"/v1/async-jobs/{job_id}")
        if payload["status"] != "Processing":
            return payload
        assert worker.poll() is None, "the worker died"
        assert time.monotonic() < deadline, f"job {job_id} still Processing"
        await asyncio.sleep(0.2)


# --- recorded and deferred in one transaction ---------------------------------------------------


async def test_async_order_is_recorded_and_deferred_in_the_request_transaction(
    live_api: ApiClient,
    engine: AsyncEngine,
    database_url: str,
    worker_tasks: dict[str, str],
) -> None:
    tenant = live_api.tenant
    plan_id = await seat_plan(live_api)
    account = (await live_api.create_account(partner=True))["accountNumber"]

    job_id = await post_async_order(live_api, order_body(account, plan_id))

    (job,) = await procrastinate_jobs(engine, job_id)
    assert job["args"] == {"tenant_id": tenant.id, "tenant_number": tenant.number, "job_id": job_id}
    async with engine.connect() as conn:
        recorded = (
            await conn.execute(
                text("SELECT job_type, status, request FROM async_jobs WHERE tenant_id = :t"),
                {"t": tenant.id},
            )
        ).one()
    assert recorded.job_type == "AsyncCreateOrder"
    assert recorded.request["existingAccountNumber"] == account
    # No worker runs in this test: the job is still waiting.
    assert job["status"] == "todo", job
    status = await live_api.ok("GET", f"/v1/async-jobs/{job_id}")
    assert status["status"] == "Processing"
    assert status["result"] is None and status["errors"] is None

    # Over the tenant's async limit: an error, and neither the job nor the record stays.
    settings = await live_api.ok("PUT", "/v1/partnerbill/settings", {"orderAsyncLimit": 1})
    assert settings["orderAsyncLimit"] == 1
    before = await tenant_job_rows(engine, tenant)
    status_code, payload = await live_api.call(
        "POST", "/v1/async/orders", order_body(account, plan_id, subscriptions=2), expect=None
    )
    assert status_code == 400, payload
    assert_envelope(payload, 70)
    assert await tenant_job_rows(engine, tenant) == before == (1, 1)

    # The same route's writes in a transaction that rolls back after the defer: nothing stays.
    task_name = task_named(worker_tasks, "process_async_order")
    other_job = str(uuid.uuid4())
    async with engine.connect() as conn:
        transaction = await conn.begin()
        await conn.execute(
            insert(async_jobs).values(
                tenant_id=tenant.id,
                id=other_job,
                job_type="AsyncCreateOrder",
                status="Processing",
                request=order_body(account, plan_id),
            )
        )
        await defer_in_transaction(
            conn,
            task_name,
            tenant_id=tenant.id,
            tenant_number=tenant.number,
            job_id=other_job,
        )
        # Visible inside the transaction, invisible outside it.
        inside = await conn.scalar(
            text("SELECT count(*) FROM procrastinate_jobs WHERE args->>'job_id' = :j"),
            {"j": other_job},
        )
        assert inside == 1
        assert await procrastinate_jobs(engine, other_job) == []
        await transaction.rollback()
    assert await procrastinate_jobs(engine, other_job) == []
    assert await tenant_job_rows(engine, tenant) == (1, 1)

    # The job names the task a worker has registered, on the queue the worker listens to; a
    # job under an unknown name sits on procrastinate's "default" queue forever.
    assert job["task_name"] == task_named(worker_tasks, "process_async_order"), job
    assert job["queue_name"] == worker_tasks[job["task_name"]] == "orders", job
    assert job["queue_name"] in QUEUES


# --- the worker runs it -------------------------------------------------------------------------


async def test_worker_completes_an_async_order_and_fails_a_bad_one(
    live_api: ApiClient, engine: AsyncEngine, database_url: str
) -> None:
    plan_id = await seat_plan(live_api)
    created = await live_api.create_account(partner=False)
    account = created["accountNumber"]
    good = await post_async_order(live_api, order_body(account, plan_id, subscriptions=2))
    bad_body = order_body(account, plan_id)
    bad_body["subscriptions"][0]["orderActions"][0]["createSubscription"][
        "subscribeToRatePlans"
    ] = [{"productRatePlanId": "no-such-plan"}]
    bad = await post_async_order(live_api, bad_body)
    # Before any worker runs, both say Processing.
    for job_id in (good, bad):
        status = await live_api.ok("GET", f"/v1/async-jobs/{job_id}")
        assert status["status"] == "Processing", status

    started = time.perf_counter()
    with running_worker(database_url) as worker:
        completed = await wait_for_job(live_api, good, worker)
        failed = await wait_for_job(live_api, bad, worker)
    print(f"\n[async orders] worker finished both jobs {time.perf_counter() - started:.2f} s")

    assert completed["status"] == "Completed", completed
    assert completed["errors"] is None
    result = completed["result"]
    assert result["jobType"] == "AsyncCreateOrder"
    assert result["success"] is True
    assert result["status"] == "Completed"
    assert result["accountNumber"] == account
    assert isinstance(result["orderNumber"], str) and result["orderNumber"]
    assert len(result["subscriptions"]) == 2
    assert len(set(result["subscriptionNumbers"])) == 2
    order = await live_api.ok("GET", f"/v1/orders/{result['orderNumber']}")
    assert order["order"]["status"] == "Completed"
    assert [s["subscriptionNumber"] for s in order["order"]["subscriptions"]] == [
        s["subscriptionNumber"] for s in result["subscriptions"]
    ]
    for sub in result["subscriptions"]:
        assert sub["status"] == "Active"
        shown = await live_api.ok("GET", f"/v1/subscriptions/{sub['subscriptionNumber']}")
        assert shown["subscriptionNumber"] == sub["subscriptionNumber"]
    # A synchronous account: contractedMrr already counts both subscriptions.
    shown_account = await live_api.ok("GET", f"/v1/accounts/{account}")
    assert Decimal(shown_account["metrics"]["contractedMrr"]) == SEAT_PRICE * 2

    assert failed["status"] == "Failed", failed
    assert failed["result"] is None
    assert "no-such-plan" in failed["errors"], failed
    for job_id in (good, bad):
        (job,) = await procrastinate_jobs(engine, job_id)
        assert job["status"] == "succeeded", job  # the outcome is the job's, not the queue's
    async with engine.connect() as conn:
        subscriptions = await conn.scalar(
            text("SELECT count(*) FROM subscriptions WHERE tenant_id = :t"),
            {"t": live_api.tenant.id},
        )
    assert subscriptions == 2  # the failed order left nothing behind


# --- a worker that dies mid-job -----------------------------------------------------------------


async def test_job_of_a_dead_worker_is_retried_and_completed(
    live_api: ApiClient, engine: AsyncEngine, database_url: str, worker_tasks: dict[str, str]
) -> None:
    plan_id = await seat_plan(live_api)
    account = (await live_api.create_account(partner=True))["accountNumber"]
    job_id = await post_async_order(live_api, order_body(account, plan_id))
    (job,) = await procrastinate_jobs(engine, job_id)

    # A worker took the job and died: the job is `doing`, its worker's heartbeat 10 minutes old.
    async with engine.begin() as conn:
        dead_worker = await conn.scalar(
            text(
                "INSERT INTO procrastinate_workers (last_heartbeat) "
                "VALUES (now() - interval '10 minutes') RETURNING id"
            )
        )
        claimed = await conn.execute(
            text(
                "UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w "
                "WHERE id = :j AND status = 'todo'"
            ),
            {"w": dead_worker, "j": job["id"]},
        )
        assert claimed.rowcount == 1
    (job,) = await procrastinate_jobs(engine, job_id)
    assert job["status"] == "doing"
    assert (await live_api.ok("GET", f"/v1/async-jobs/{job_id}"))["status"] == "Processing"

    with running_worker(database_url) as worker:
        # What the once-a-minute cron defers; deferring it here avoids waiting for the minute.
        jobs = bare_jobs_app(database_url)
        retry_stalled = task_named(worker_tasks, "retry_stalled_jobs")
        async with jobs.open_async():
            await jobs.configure_task(retry_stalled, queue=worker_tasks[retry_stalled]).defer_async(
                timestamp=int(time.time())
            )
        completed = await wait_for_job(live_api, job_id, worker)

    assert completed["status"] == "Completed", completed
    assert completed["result"]["jobType"] == "AsyncCreateOrder"
    assert len(completed["result"]["subscriptions"]) == 1
    (job,) = await procrastinate_jobs(engine, job_id)
    assert job["status"] == "succeeded", job
    assert job["attempts"] >= 1, job  # it ran again after the retry
    async with engine.connect() as conn:
        orders = await conn.scalar(
            text("SELECT count(*) FROM orders WHERE tenant_id = :t"), {"t": live_api.tenant.id}
        )
    assert orders == 1  # the dead worker's attempt left nothing; the retry made exactly one


def test_sdk_creates_an_async_order_and_reads_the_job_raw(
    live_server: str, database_url: str, zc: ZuoraClient
) -> None:
    """The SDK's async order flow, and how its result-parsing bug is handled.

    `OrdersApi.create_order_asynchronously` works as is: 202 with `jobId`.

    `OrdersApi.get_job_status_and_response` cannot parse a Completed job: the SDK models
    `result` as a oneOf of GetAsyncCreateOrderJobResponse and GetAsyncPreviewOrderJobResponse,
    whose fields are all optional, so any `result` object matches both and the SDK raises
    `ValueError("Multiple matches found ...")`. It parses fine while the job is Processing
    (`result` is null). A client therefore reads the job status without the SDK's
    deserialization: the same request (the SDK's serializer, auth header and HTTP pool) with the
    raw response body parsed as JSON (`raw_job_status`); the SDK's
    `get_job_status_and_response_without_preload_content` does exactly that in SDK versions
    that generate it (3.21.0 does not). The server keeps Zuora's shape; it does not bend
    `result` to dodge the SDK bug.
    """
    client = zc
    headers = {
        "Authorization": f"Bearer {client.token['access_token']}",
        "Content-Type": "application/json",
    }
    with httpx.Client(base_url=live_server, headers=headers, timeout=30) as http:
        ids: list[str] = []
        for (path, body), parent in zip(
            catalog_bodies(), ("", "ProductId", "ProductRatePlanId"), strict=True
        ):
            if parent:
                body = {**body, parent: ids[-1]}
            response = http.post(path, content=dumps(body))
            assert response.status_code == 200 and response.json()["Success"], response.text
            ids.append(response.json()["Id"])
        account = http.post(
            "/v1/accounts",
            content=dumps(
                {
                    "name": "SDK async",
                    "currency": "USD",
                    "billToContact": {"firstName": "Ada", "lastName": "Lovelace"},
                }
            ),
        ).json()
        assert account["success"] is True, account

    request = CreateOrderAsyncRequest.from_dict(
        {**order_body(account["accountNumber"], ids[1]), "orderDate": date(2026, 1, 1)}
    )
    created = client.orders_api().create_order_asynchronously(request)
    assert created.success is True, created
    job_id = created.job_id
    assert isinstance(job_id, str) and uuid.UUID(job_id)

    # Processing (result null): the SDK's typed call parses it.
    pending = client.orders_api().get_job_status_and_response(job_id)
    assert pending.success is True
    assert str(getattr(pending.status, "value", pending.status)) == "Processing"

    with running_worker(database_url) as worker:
        deadline = time.monotonic() + JOB_DEADLINE_SECONDS
        while (job := raw_job_status(client, job_id))["status"] == "Processing":
            assert worker.poll() is None, "the worker died"
            assert time.monotonic() < deadline, "the job did not complete"
            time.sleep(0.2)

    assert job["status"] == "Completed", job
    assert job["result"]["jobType"] == "AsyncCreateOrder"
    assert job["result"]["orderNumber"]
    assert job["result"]["accountNumber"] == account["accountNumber"]
    assert len(job["result"]["subscriptions"]) == 1
    # The known SDK bug: the typed call cannot deserialize a non-null `result`.
    with pytest.raises(ValueError, match="Multiple matches found"):
        client.orders_api().get_job_status_and_response(job_id)
