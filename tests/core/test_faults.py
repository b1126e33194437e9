"""Faults, with real processes: `partnerbill serve` (two API workers and the job worker) on a
PostgreSQL of the test's own, which the tests restart under parallel writes; the job worker and
the API workers killed with SIGKILL mid-job and mid-batch. Nothing acknowledged is lost, nothing
is written twice with or without Idempotency-Key, the worker is alive after, and every touched
account's metrics equal `recompute`."""

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import procrastinate
import psutil
import psycopg
import pytest
from bench.harness import API_METRICS
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from partnerbill.core.db import libpq_url
from partnerbill.core.tenants import Tenant
from partnerbill.metrics.service import read_metrics, recompute
from tests.async_order_support import order_body, post_async_order, procrastinate_jobs, seat_plan
from tests.cli_support import _base_env
from tests.faults import free_port
from tests.helpers import ApiClient, TenantCredentials, invoice_body
from tests.private_postgres import PrivatePostgres

STALLED_JOB_SECONDS = 4
START_TIMEOUT = 60
JOB_TIMEOUT = 40
# The longest a tenant's write may wait for a row lock: the tests hold locks on purpose.
LONGEST_LOCK_WAIT_MS = 60_000


@dataclass
class Served:
    base_url: str
    process: subprocess.Popen[bytes]
    database_url: str
    credentials: TenantCredentials
    log: Path

    def children(self) -> list[psutil.Process]:
        return [
            child for child in psutil.Process(self.process.pid).children() if child.is_running()
        ]

    def job_worker(self) -> psutil.Process | None:
        found = [
            c
            for c in self.children()
            if "worker" in c.cmdline() and "--niceness" not in c.cmdline()
        ]
        return found[0] if found else None

    def api_workers(self) -> list[psutil.Process]:
        # uvicorn spawns its workers through multiprocessing (not its resource tracker).
        return [c for c in self.children() if any("spawn_main" in a for a in c.cmdline())]


def _wait_for(check: Any, what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.1)


def _healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def fault_dir() -> Iterator[Path]:
    """Not under pytest's temporary root: a concurrent pytest session prunes old ones, and this
    holds a running server's data directory."""
    root = Path(tempfile.mkdtemp(prefix="partnerbill-faults-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def private_pg(fault_dir: Path) -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(fault_dir)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def served(private_pg: PrivatePostgres, fault_dir: Path) -> Iterator[Served]:
    """`partnerbill serve` on an empty database of the private server: it migrates and makes
    the demo tenant, whose client the tests use."""
    var_dir = fault_dir / "var"
    var_dir.mkdir()
    database_url = private_pg.url("postgres")
    port = free_port()
    log = var_dir / "serve.log"
    env = _base_env(
        DATABASE_URL=database_url,
        PARTNERBILL_VAR_DIR=str(var_dir),
        PARTNERBILL_LOG_LEVEL="WARNING",
        PARTNERBILL_STALLED_JOB_SECONDS=str(STALLED_JOB_SECONDS),
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "partnerbill.cli",
                "serve",
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(
            lambda: _healthy(base_url) or process.poll() is not None, "serve answers", START_TIMEOUT
        )
        assert process.poll() is None, log.read_text()
        demo = json.loads((var_dir / "demo-client.json").read_text())
        tenant = _demo_tenant(database_url)
        served = Served(
            base_url,
            process,
            database_url,
            TenantCredentials(tenant, demo["client_id"], demo["client_secret"]),
            log,
        )
        _wait_for(served.job_worker, "the job worker runs", START_TIMEOUT)
        yield served
    finally:
        process.terminate()
        process.wait(timeout=60)


def _demo_tenant(database_url: str) -> Tenant:
    with psycopg.connect(libpq_url(database_url)) as conn:
        row = conn.execute("SELECT id, number FROM tenants WHERE name = 'demo'").fetchone()
    assert row is not None
    return Tenant(id=str(row[0]), number=int(row[1]))


@pytest.fixture
async def engine(served: Served) -> AsyncIterator[AsyncEngine]:
    """Straight to the private database; no pool, so a restart leaves no dead connection."""
    engine = create_async_engine(served.database_url, poolclass=NullPool)
    yield engine
    await engine.dispose()


@pytest.fixture
async def api(served: Served) -> AsyncIterator[ApiClient]:
    async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as http:
        client = ApiClient(http, served.credentials)
        await _until_reachable(client)
        deadline = time.monotonic() + START_TIMEOUT
        # A worker may still answer the retryable 503 once on a connection the restart broke.
        while (
            status := (
                await client.call(
                    "PUT",
                    "/v1/partnerbill/settings",
                    {"lockWaitMs": LONGEST_LOCK_WAIT_MS},
                    expect=None,
                )
            )[0]
        ) == 503:
            assert time.monotonic() < deadline, "the server did not reach the database again"
        assert status == 200, status
        yield client


async def _until_reachable(client: ApiClient) -> None:
    """Authenticate, as a client does after a database restart: each API worker may answer the
    retryable 503 once, on the connections the restart broke, before it reconnects."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        response = await client.http.post(
            "/oauth/token",
            data={
                "client_id": client.credentials.client_id,
                "client_secret": client.credentials.client_secret,
                "grant_type": "client_credentials",
            },
        )
        if response.status_code == 200:
            client.token = response.json()["access_token"]
            # Reads on new connections, which the API workers take in turn, so that none
            # still holds a broken database connection.
            answers = [
                (
                    await client.call(
                        "GET",
                        "/v1/partnerbill/settings",
                        headers={"Connection": "close"},
                        expect=None,
                    )
                )[0]
                for _ in range(8)
            ]
            if answers == [200] * 8:
                return
        assert response.status_code == 503 or response.status_code == 200, response.text
        assert time.monotonic() < deadline, "the server did not reach the database again"
        await asyncio.sleep(0.2)


async def _invoices_by_tag(engine: AsyncEngine, tenant: Tenant) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT comments, count(*) FROM invoices WHERE tenant_id = :t GROUP BY comments"),
            {"t": tenant.id},
        )
        return {str(tag): int(count) for tag, count in rows}


async def _assert_metrics_equal_recompute(
    api: ApiClient, engine: AsyncEngine, account: dict[str, Any]
) -> None:
    number = account["accountNumber"]
    if (await api.ok("GET", f"/v1/accounts/{number}"))["basicInfo"]["partnerAccount"]:
        await api.refresh(number)
    shown = await api.metrics(number)
    async with engine.connect() as conn:
        expected = await recompute(conn, api.tenant, account["accountId"])
        stored = (await read_metrics(conn, api.tenant, account["accountId"])).metrics
    assert stored == expected, (number, stored, expected)
    for api_name, attribute in API_METRICS.items():
        assert Decimal(str(shown[api_name])) == getattr(expected, attribute), (number, api_name)


async def _wait_until_completed(api: ApiClient, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        status, payload = await api.call("GET", f"/v1/async-jobs/{job_id}", expect=None)
        if status == 200 and payload.get("status") not in (None, "Processing"):
            return payload
        assert time.monotonic() < deadline, f"async job {job_id} still {payload}"
        await asyncio.sleep(0.2)


# --- PostgreSQL restarted under parallel writes --------------------------------------------------


@dataclass
class Attempted:
    """One invoice a writer asked for (its `comments` is the tag), and every answer it got."""

    tag: str
    keyed: bool
    answers: list[int | str] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return 200 in self.answers


WRITERS = 6
SECONDS_BEFORE_RESTART = 1.5
SECONDS_AFTER_RESTART = 2.5
KEYED_RETRY_SECONDS = 30


async def _write(api: ApiClient, account_number: str, attempt: Attempted, until: float) -> None:
    """Ask once; a keyed request is retried, same key and body, until acknowledged."""
    body = invoice_body(account_number, "1.25", comments=attempt.tag)
    headers = {"Idempotency-Key": attempt.tag} if attempt.keyed else None
    while True:
        try:
            status, payload = await api.call(
                "POST", "/v1/invoices", body, headers=headers, expect=None
            )
            attempt.answers.append(200 if status == 200 and payload.get("success") else status)
        except httpx.HTTPError as error:
            attempt.answers.append(type(error).__name__)  # the answer was lost
        if attempt.acknowledged or not attempt.keyed or time.monotonic() > until:
            return
        await asyncio.sleep(0.2)


async def test_postgres_restart_under_writes_loses_and_duplicates_nothing(
    served: Served, private_pg: PrivatePostgres, api: ApiClient, engine: AsyncEngine
) -> None:
    partner = await api.create_account(partner=True)
    direct = await api.create_account(partner=False)
    worker_before = served.job_worker()
    assert worker_before is not None
    attempts: list[Attempted] = []
    stop_at = time.monotonic() + 60

    async def writer(index: int) -> None:
        account = (partner, direct)[index % 2]["accountNumber"]
        while time.monotonic() < stop_at:
            attempt = Attempted(uuid.uuid4().hex, keyed=index % 3 != 0)
            attempts.append(attempt)
            await _write(api, account, attempt, time.monotonic() + KEYED_RETRY_SECONDS)

    writers = [asyncio.create_task(writer(index)) for index in range(WRITERS)]
    await asyncio.sleep(SECONDS_BEFORE_RESTART)
    acknowledged_before = sum(a.acknowledged for a in attempts)
    await asyncio.to_thread(private_pg.restart, 1.0)
    await asyncio.sleep(SECONDS_AFTER_RESTART)
    stop_at = time.monotonic()  # no new requests; keyed ones still retry until answered
    await asyncio.gather(*writers)

    assert acknowledged_before > 0
    failed_answers = [a for a in attempts if any(answer != 200 for answer in a.answers)]
    assert failed_answers, "the restart cut no request: it tested nothing"
    written = await _invoices_by_tag(engine, api.tenant)
    keyed_problems = []
    for attempt in attempts:
        count = written.get(attempt.tag, 0)
        if attempt.keyed:
            if not attempt.acknowledged:
                keyed_problems.append(("keyed request never acknowledged", attempt))
            if count != 1:
                keyed_problems.append(("keyed request written", count, attempt))
        elif attempt.acknowledged:
            assert count == 1, ("acknowledged request written", count, attempt)
        elif all(isinstance(answer, int) for answer in attempt.answers):
            assert count == 0, ("request answered with an error wrote", count, attempt)
        else:
            assert count <= 1, ("request whose answer was lost written", count, attempt)

    # The job worker lost the database, reconnected in the same process, and works.
    assert served.process.poll() is None
    worker_after = served.job_worker()
    assert worker_after is not None and worker_after.pid == worker_before.pid
    assert "job_worker_reconnecting" in served.log.read_text()
    plan_id = await seat_plan(api)
    job_id = await post_async_order(api, order_body(direct["accountNumber"], plan_id))
    assert (await _wait_until_completed(api, job_id))["status"] == "Completed"
    await _assert_periodic_refresh_runs(api, engine, served, partner)
    for account in (partner, direct):
        await _assert_metrics_equal_recompute(api, engine, account)
    # Last, so that the checks above run whatever this finds.
    assert not keyed_problems, keyed_problems[:5]


async def _assert_periodic_refresh_runs(
    api: ApiClient, engine: AsyncEngine, served: Served, partner: dict[str, Any]
) -> None:
    """The periodic refresh task folds a partner account's pending changes in the worker."""
    number = partner["accountNumber"]
    await api.ok("POST", "/v1/invoices", invoice_body(number, "3.00"))
    async with engine.begin() as conn:
        # The tenant's interval (an hour) has elapsed since the account's last refresh.
        await conn.execute(
            text(
                "UPDATE account_metrics SET last_metrics_update = now() - interval '2 hours' "
                "WHERE tenant_id = :t AND account_id = :a"
            ),
            {"t": api.tenant.id, "a": partner["accountId"]},
        )
    # The worker's refresh loop finds the account due within a poll.
    deadline = time.monotonic() + JOB_TIMEOUT
    while (await api.ok("GET", f"/v1/accounts/{number}"))["metricsFreshness"]["pendingChanges"]:
        assert time.monotonic() < deadline, "the worker did not refresh the partner account"
        await asyncio.sleep(0.2)


@dataclass
class Standalone:
    process: subprocess.Popen[bytes]
    database_url: str
    log: Path


@pytest.fixture
def standalone_worker(private_pg: PrivatePostgres, fault_dir: Path) -> Iterator[Standalone]:
    """`partnerbill worker` alone, on a database of its own on the private server."""
    database_url = private_pg.create_database(f"standalone_{uuid.uuid4().hex[:8]}")
    env = _base_env(
        DATABASE_URL=database_url,
        PARTNERBILL_LOG_LEVEL="WARNING",
        PARTNERBILL_STALLED_JOB_SECONDS=str(STALLED_JOB_SECONDS),
    )
    log = fault_dir / f"worker-{uuid.uuid4().hex[:8]}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "partnerbill.cli", "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Standalone(process, database_url, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


async def test_standalone_worker_survives_a_postgres_restart(
    private_pg: PrivatePostgres, standalone_worker: Standalone
) -> None:
    """It loses the database for two seconds, reconnects, is still running after, runs a job
    deferred after the restart, and stops cleanly on SIGTERM."""
    worker, database_url, log = (
        standalone_worker.process,
        standalone_worker.database_url,
        standalone_worker.log,
    )
    await _wait_for_worker_row(database_url)
    await asyncio.to_thread(private_pg.restart, 2.0)
    await asyncio.sleep(3)
    assert worker.poll() is None, f"the worker exited with {worker.returncode}"
    assert "job_worker_reconnecting" in log.read_text()
    jobs = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=libpq_url(database_url))
    )
    async with jobs.open_async():
        job_id = await jobs.configure_task(
            "maintenance:purge_idempotency_keys", queue="maintenance"
        ).defer_async(timestamp=int(time.time()))
    await _wait_for_job_status(database_url, job_id, "succeeded")
    assert worker.poll() is None
    worker.terminate()
    assert await asyncio.to_thread(worker.wait, 30) == 0, log.read_text()  # a clean stop


async def _wait_for_worker_row(database_url: str) -> None:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            async with engine.connect() as conn:
                if await conn.scalar(text("SELECT count(*) FROM procrastinate_workers")):
                    return
            assert time.monotonic() < deadline, "the worker did not register"
            await asyncio.sleep(0.2)
    finally:
        await engine.dispose()


async def _wait_for_job_status(database_url: str, job_id: int, status: str) -> None:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        deadline = time.monotonic() + JOB_TIMEOUT
        while True:
            async with engine.connect() as conn:
                found = await conn.scalar(
                    text("SELECT status FROM procrastinate_jobs WHERE id = :j"), {"j": job_id}
                )
            if found == status:
                return
            assert time.monotonic() < deadline, f"job {job_id} is {found}"
            await asyncio.sleep(0.2)
    finally:
        await engine.dispose()


# --- the job worker killed mid-job ---------------------------------------------------------------


async def _wait_for_lock_wait(engine: AsyncEngine) -> None:
    """Until a session of the server waits for a lock a test holds."""
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        async with engine.connect() as conn:
            waiting = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        if waiting:
            return
        assert time.monotonic() < deadline, "no request waited for the held lock"
        await asyncio.sleep(0.1)


async def test_job_worker_killed_mid_job_is_restarted_and_the_job_completes_once(
    served: Served, api: ApiClient, engine: AsyncEngine
) -> None:
    plan_id = await seat_plan(api)
    account = await api.create_account(partner=False)
    worker = served.job_worker()
    assert worker is not None
    async with engine.connect() as holder:
        # The order locks its account for key share: holding it for update stalls the job.
        await holder.execute(
            text("SELECT id FROM accounts WHERE id = :a FOR UPDATE"), {"a": account["accountId"]}
        )
        job_id = await post_async_order(api, order_body(account["accountNumber"], plan_id))
        await _wait_for_lock_wait(engine)
        (job,) = await procrastinate_jobs(engine, job_id)
        assert job["status"] == "doing", job
        worker.send_signal(signal.SIGKILL)
        await holder.rollback()

    restarted = await asyncio.to_thread(
        _wait_for,
        lambda: (w := served.job_worker()) is not None and w.pid != worker.pid and w,
        "serve starts the job worker again",
        30,
    )
    assert restarted.pid != worker.pid
    completed = await _wait_until_completed(api, job_id)
    assert completed["status"] == "Completed", completed
    (job,) = await procrastinate_jobs(engine, job_id)
    assert job["status"] == "succeeded", job
    async with engine.connect() as conn:
        subscriptions = await conn.scalar(
            text("SELECT count(*) FROM subscriptions WHERE tenant_id = :t AND account_id = :a"),
            {"t": api.tenant.id, "a": account["accountId"]},
        )
    assert subscriptions == 1  # the killed attempt left nothing; the retry made exactly one
    assert f"job worker (pid {worker.pid}) exited with -9" in served.log.read_text()
    await _assert_metrics_equal_recompute(api, engine, account)


# --- an API worker killed mid-batch --------------------------------------------------------------

BATCH_SIZE = 100


async def test_api_workers_killed_mid_batch_write_nothing_and_a_keyed_retry_writes_once(
    served: Served, api: ApiClient, engine: AsyncEngine
) -> None:
    await api.ok("PUT", "/v1/partnerbill/settings", {"invoiceBatchLimit": BATCH_SIZE})
    account = await api.create_account(partner=False)
    tag = uuid.uuid4().hex
    batch = {
        "useSingleTransaction": True,
        "invoices": [
            invoice_body(account["accountNumber"], "2.00", comments=tag) for _ in range(BATCH_SIZE)
        ],
    }
    key = {"Idempotency-Key": tag}
    api_workers = served.api_workers()
    assert len(api_workers) == 2, api_workers
    async with engine.connect() as holder:
        # The batch locks its account for key share: holding it for update stalls the batch.
        await holder.execute(
            text("SELECT id FROM accounts WHERE id = :a FOR UPDATE"), {"a": account["accountId"]}
        )
        request = asyncio.create_task(
            api.call("POST", "/v1/invoices/batch", batch, headers=key, expect=None)
        )
        await _wait_for_lock_wait(engine)
        # Whichever worker took the batch dies mid-batch: every API worker is killed.
        for process in api_workers:
            process.send_signal(signal.SIGKILL)
        await holder.rollback()
    with pytest.raises(httpx.HTTPError):
        await request

    # uvicorn starts new API workers; the server keeps serving.
    await asyncio.to_thread(_wait_for, lambda: _healthy(served.base_url), "serve answers", 30)
    assert served.process.poll() is None
    async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as http:
        fresh = ApiClient(http, served.credentials)
        await fresh.authenticate()
        await fresh.ok("POST", "/v1/invoices", invoice_body(account["accountNumber"], "1.00"))
        assert (await _invoices_by_tag(engine, api.tenant)).get(tag, 0) == 0  # nothing partial

        status, payload = await fresh.call(
            "POST", "/v1/invoices/batch", batch, headers=key, expect=None
        )
        assert status == 200 and payload.get("success") is True, (status, payload)
        assert (await _invoices_by_tag(engine, api.tenant)).get(tag, 0) == BATCH_SIZE
        status, replayed = await fresh.call(
            "POST", "/v1/invoices/batch", batch, headers=key, expect=None
        )
        assert (status, replayed) == (200, payload)
        assert (await _invoices_by_tag(engine, api.tenant)).get(tag, 0) == BATCH_SIZE
        await _assert_metrics_equal_recompute(fresh, engine, account)
