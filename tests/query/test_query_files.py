"""Result files and query job records, on the real PostgreSQL and over real HTTP.

Files: written streaming in every compression (several chunks), served by `/v1/files/{id}` and
`/v1/file/{id}` byte for byte, 404 for anything not servable, purged when expired or abandoned,
and written and read in bounded memory. Jobs: the queued limit holds under parallel submits on
separate connections, the running limit holds at start, and cancel and finish never undo each
other.
"""

import asyncio
import gzip
import io
import random
import subprocess
import tracemalloc
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from procrastinate.jobs import Job
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill import tasks
from partnerbill.core.errors import DATABASE_TOO_SLOW_MESSAGE
from partnerbill.core.jobs import QUEUES, build_app
from partnerbill.core.tenants import Tenant
from partnerbill.query import files, jobs
from partnerbill.query.files import (
    CHUNK_BYTES,
    Compression,
    RowCounter,
    StoredFile,
    delete_file,
    find_file,
    read_file,
    write_result_file,
)
from partnerbill.query.jobs import JobStatus, QueryLimitExceeded, RunningLimitReached
from partnerbill.query.tasks import QUERY_JOB_RETRY, RETRY_WAIT_SECONDS, purge_files, purge_jobs
from partnerbill.tables.query import query_jobs, result_file_chunks, result_files
from tests.faults import running_server
from tests.helpers import ApiClient, TenantCredentials, assert_envelope, client_for, new_tenant
from tests.job_worker import running_worker

DAY = timedelta(days=1)
MiB = 1024 * 1024
# A task every worker has; the limit tests only defer it (their jobs are removed afterwards).
TASK = "query:purge_query_results"


def _content(size: int, seed: int = 7) -> bytes:
    """Incompressible bytes with CSV-like line breaks: compressed files still span chunks."""
    return random.Random(seed).randbytes(size).replace(b"\r", b"\n")


async def _pieces(data: bytes, piece: int = 300_000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


@pytest.fixture
async def clients(live_server: str, engine: AsyncEngine) -> AsyncIterator[tuple[ApiClient, ...]]:
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as http:
        owner = await client_for(http, await new_tenant(engine))
        other = await client_for(http, await new_tenant(engine))
        yield owner, other


async def _chunk_sizes(engine: AsyncEngine, tenant: Tenant, file_id: str) -> list[int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(func.length(result_file_chunks.c.data))
            .where(
                result_file_chunks.c.tenant_id == tenant.id,
                result_file_chunks.c.file_id == file_id,
            )
            .order_by(result_file_chunks.c.sequence)
        )
        return [size for (size,) in rows]


async def _download(api: ApiClient, path: str) -> httpx.Response:
    return await api.http.get(path, headers={"Authorization": f"Bearer {api.token}"})


def _decoded(body: bytes, compression: Compression, inner_name: str, tmp_path: Path) -> bytes:
    if compression is Compression.GZIP:
        return gzip.decompress(body)
    if compression is Compression.ZIP:
        archive = tmp_path / "result.zip"
        archive.write_bytes(body)
        tested = subprocess.run(["unzip", "-t", str(archive)], capture_output=True, text=True)
        assert tested.returncode == 0 and "No errors detected" in tested.stdout, tested
        with zipfile.ZipFile(io.BytesIO(body)) as read:
            assert read.namelist() == [inner_name]
            assert read.testzip() is None
            return read.read(inner_name)
    return body


@pytest.mark.parametrize("compression", list(Compression))
async def test_a_file_of_several_chunks_is_served_by_both_urls_as_written(
    clients: tuple[ApiClient, ApiClient],
    engine: AsyncEngine,
    compression: Compression,
    tmp_path: Path,
) -> None:
    owner, _ = clients
    content = _content(3 * MiB + 12_345)
    rows = RowCounter()

    async def counted() -> AsyncIterator[bytes]:
        async for piece in _pieces(content):
            rows.add(piece.count(b"\n"))
            yield piece

    name = {Compression.NONE: "rows.csv", Compression.GZIP: "rows.csv.gz"}.get(
        compression, "rows.zip"
    )
    media = {Compression.NONE: "text/csv", Compression.GZIP: "application/gzip"}.get(
        compression, "application/zip"
    )
    stored = await write_result_file(
        owner.tenant,
        name,
        media,
        counted(),
        compression=compression,
        inner_name="rows.csv",
        expires_in=DAY,
        rows=rows,
    )
    assert stored.row_count == content.count(b"\n") > 0
    sizes = await _chunk_sizes(engine, owner.tenant, stored.id)
    assert len(sizes) >= 3 and set(sizes[:-1]) == {CHUNK_BYTES}, sizes
    assert sum(sizes) == stored.size_bytes

    for path in (f"/v1/files/{stored.id}", f"/v1/file/{stored.id}"):
        response = await _download(owner, path)
        assert response.status_code == 200, response.text[:200]
        assert response.headers["content-type"].split(";")[0] == media
        assert response.headers["content-disposition"] == f'attachment; filename="{name}"'
        assert int(response.headers["content-length"]) == stored.size_bytes == len(response.content)
        assert _decoded(response.content, compression, "rows.csv", tmp_path) == content


async def test_a_name_beyond_ascii_is_sent_as_rfc_6266_filename_star(
    clients: tuple[ApiClient, ApiClient],
) -> None:
    owner, _ = clients
    stored = await write_result_file(
        owner.tenant,
        'Übersicht "Q4".csv',
        "text/csv",
        _pieces(b"Id\n1\n"),
        compression=Compression.NONE,
        expires_in=DAY,
    )
    response = await _download(owner, f"/v1/files/{stored.id}")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == (
        "attachment; filename*=utf-8''%C3%9Cbersicht%20%22Q4%22.csv"
    )
    assert response.content == b"Id\n1\n"


async def _assert_not_found(api: ApiClient, file_id: str) -> None:
    for path in (f"/v1/files/{file_id}", f"/v1/file/{file_id}"):
        status, payload = await api.call("GET", path, expect=None)
        assert status == 404, (path, status, payload)
        reasons = assert_envelope(payload, 40)
        assert file_id in reasons[0]["message"], reasons


async def test_files_not_servable_answer_404_in_the_envelope(
    clients: tuple[ApiClient, ApiClient], engine: AsyncEngine
) -> None:
    owner, other = clients
    stored = await write_result_file(
        owner.tenant,
        "a.csv",
        "text/csv",
        _pieces(b"Id\n"),
        compression=Compression.NONE,
        expires_in=DAY,
    )
    await _assert_not_found(other, stored.id)  # another tenant's
    await _assert_not_found(owner, "0" * 32)  # nobody's
    assert (await _download(owner, f"/v1/files/{stored.id}")).status_code == 200

    async with engine.begin() as conn:
        await conn.execute(
            update(result_files)
            .where(result_files.c.id == stored.id)
            .values(expires_at=func.now() - timedelta(seconds=1))
        )
    await _assert_not_found(owner, stored.id)  # expired

    # A writer that dies mid-file (its task cancelled while it waits for the next piece).
    entered = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield _content(2 * MiB + 1)
        entered.set()
        await asyncio.Event().wait()
        yield b""  # never reached

    writer = asyncio.create_task(
        write_result_file(
            owner.tenant,
            "b.csv",
            "text/csv",
            stalls(),
            compression=Compression.NONE,
            expires_in=DAY,
        )
    )
    await entered.wait()
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    async with engine.connect() as conn:
        (incomplete,) = (
            await conn.execute(
                select(result_files.c.id).where(
                    result_files.c.tenant_id == owner.tenant.id, ~result_files.c.complete
                )
            )
        ).one()
    assert len(await _chunk_sizes(engine, owner.tenant, incomplete)) == 2
    await _assert_not_found(owner, incomplete)


async def test_a_database_that_cannot_serve_answers_in_the_files_error_shape(
    tenant_credentials: TenantCredentials, engine: AsyncEngine, database_url: str
) -> None:
    """A real fault: the files table locked by a test transaction, and a server whose statement
    timeout cuts the read that waits on it."""
    env = {"PARTNERBILL_STATEMENT_TIMEOUT_MS": "500"}
    with running_server(database_url, env) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            api = await client_for(http, tenant_credentials)
            async with engine.connect() as conn:
                await conn.begin()
                await conn.execute(text("LOCK TABLE result_files IN ACCESS EXCLUSIVE MODE"))
                response = await _download(api, f"/v1/files/{'0' * 32}")
                await conn.rollback()
            assert response.status_code == 503, response.text
            assert response.json() == {
                "reasons": [
                    {"code": "SystemError", "message": DATABASE_TOO_SLOW_MESSAGE},
                ]
            }
            status, payload = await api.call("GET", f"/v1/files/{'0' * 32}", expect=None)
            assert status == 404 and assert_envelope(payload, 40)


async def test_a_writer_that_fails_keeps_nothing(
    tenant_credentials: TenantCredentials, engine: AsyncEngine
) -> None:
    tenant = tenant_credentials.tenant

    async def breaks() -> AsyncIterator[bytes]:
        yield _content(CHUNK_BYTES * 2)
        raise RuntimeError("the query failed")

    with pytest.raises(RuntimeError, match="the query failed"):
        await write_result_file(
            tenant,
            "c.csv.gz",
            "application/gzip",
            breaks(),
            compression=Compression.GZIP,
            expires_in=DAY,
        )
    async with engine.connect() as conn:
        for table in (result_files, result_file_chunks):
            count = await conn.scalar(
                select(func.count()).select_from(table).where(table.c.tenant_id == tenant.id)
            )
            assert count == 0, table.name


async def test_the_purge_removes_expired_and_abandoned_files_and_old_finished_jobs(
    tenant_credentials: TenantCredentials, engine: AsyncEngine
) -> None:
    tenant = tenant_credentials.tenant

    async def write(name: str) -> StoredFile:
        return await write_result_file(
            tenant,
            name,
            "text/csv",
            _pieces(_content(CHUNK_BYTES + 10)),
            compression=Compression.NONE,
            expires_in=DAY,
        )

    expired, abandoned, kept = await write("e.csv"), await write("a.csv"), await write("k.csv")
    async with engine.begin() as conn:
        await conn.execute(
            update(result_files)
            .where(result_files.c.id == expired.id)
            .values(expires_at=func.now() - timedelta(minutes=1))
        )
        await conn.execute(
            update(result_files)
            .where(result_files.c.id == abandoned.id)
            .values(complete=False, created_at=func.now() - timedelta(hours=7))
        )
    while await purge_files(batch=1):  # bounded batches, until nothing is left to purge
        pass
    async with engine.connect() as conn:
        left = (
            await conn.scalars(
                select(result_files.c.id).where(result_files.c.tenant_id == tenant.id)
            )
        ).all()
        chunks = (
            await conn.scalars(
                select(result_file_chunks.c.file_id)
                .where(result_file_chunks.c.tenant_id == tenant.id)
                .distinct()
            )
        ).all()
    assert left == [kept.id] and chunks == [kept.id]
    assert await find_file(tenant, kept.id) == kept

    async with engine.begin() as conn:
        ids = [await jobs.submit_job(conn, tenant, "aqua", {"n": n}, TASK) for n in range(3)]
    await _cleanup_deferred(engine, ids)
    assert await jobs.start_job(tenant, ids[0]) and await jobs.start_job(tenant, ids[1])
    assert await jobs.finish_job(tenant, ids[0], {"fileId": kept.id})
    async with engine.begin() as conn:
        await conn.execute(
            update(query_jobs)
            .where(query_jobs.c.tenant_id == tenant.id)
            .values(updated_at=func.now() - timedelta(days=181))
        )
    assert await purge_jobs() >= 1
    async with engine.connect() as conn:
        statuses = dict(
            (
                await conn.execute(
                    select(query_jobs.c.id, query_jobs.c.status).where(
                        query_jobs.c.tenant_id == tenant.id
                    )
                )
            ).all()
        )
    # The finished job is gone; a running and a queued one, however old, are kept.
    assert statuses == {ids[1]: "in_progress", ids[2]: "accepted"}


def test_the_purge_runs_periodically_on_every_worker(database_url: str) -> None:
    tasks.register()  # what the worker does before it builds its app
    app = build_app(database_url)
    assert "exports" in QUEUES and app.tasks["query:purge_query_results"].queue in QUEUES
    periodic = {p.periodic_id: p for p in app.periodic_registry.periodic_tasks.values()}
    assert periodic["purge-query-results"].cron == "*/10 * * * *"


def test_a_job_over_the_running_limit_is_retried_for_as_long_as_it_takes() -> None:
    job = Job(id=1, queue="exports", lock=None, queueing_lock=None, task_name="t", attempts=10_000)
    retried = QUERY_JOB_RETRY.get_retry_decision(exception=RunningLimitReached("aqua"), job=job)
    assert retried is not None and retried.retry_at is not None
    waits = (retried.retry_at - datetime.now(UTC)).total_seconds()
    assert RETRY_WAIT_SECONDS - 1 < waits <= RETRY_WAIT_SECONDS, waits
    assert QUERY_JOB_RETRY.get_retry_decision(exception=RuntimeError("bug"), job=job) is None


async def test_a_real_worker_runs_query_tasks_from_the_exports_queue(
    tenant_credentials: TenantCredentials, engine: AsyncEngine, database_url: str
) -> None:
    tenant = tenant_credentials.tenant
    expired = await write_result_file(
        tenant,
        "old.csv",
        "text/csv",
        _pieces(b"Id\n"),
        compression=Compression.NONE,
        expires_in=DAY,
    )
    async with engine.begin() as conn:
        await conn.execute(
            update(result_files)
            .where(result_files.c.id == expired.id)
            .values(expires_at=func.now() - timedelta(seconds=1))
        )
        raw = await conn.get_raw_connection()
        task = build_app(database_url).configure_task(
            "query:purge_query_results", queue="exports", connection=raw.driver_connection
        )
        job_id = await task.defer_async(timestamp=0)
    with running_worker(database_url) as worker:
        for _ in range(600):
            async with engine.connect() as conn:
                status = await conn.scalar(
                    text("SELECT status FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
                )
            if status in ("succeeded", "failed"):
                break
            assert worker.poll() is None, "the worker died"
            await asyncio.sleep(0.1)
    assert status == "succeeded"
    async with engine.connect() as conn:
        left = await conn.scalar(select(result_files.c.id).where(result_files.c.id == expired.id))
    assert left is None


async def test_files_are_written_and_read_in_bounded_memory(
    tenant_credentials: TenantCredentials,
) -> None:
    tenant = tenant_credentials.tenant
    block = _content(256 * 1024, seed=11)
    blocks = 200  # 50 MiB

    async def big() -> AsyncIterator[bytes]:
        for _ in range(blocks):
            yield block

    tracemalloc.start()
    try:
        stored = await write_result_file(
            tenant,
            "big.zip",
            "application/zip",
            big(),
            compression=Compression.ZIP,
            expires_in=DAY,
        )
        _, written_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        read = 0
        async for chunk in read_file(tenant, stored):
            read += len(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stored.size_bytes > blocks * len(block) == 50 * MiB  # incompressible: zip adds a little
    assert read == stored.size_bytes
    assert written_peak < 8 * MiB, written_peak
    assert read_peak < 8 * MiB, read_peak
    assert await delete_file(tenant, stored.id)
    assert await find_file(tenant, stored.id) is None


# --- jobs --------------------------------------------------------------------------------------


async def _cleanup_deferred(engine: AsyncEngine, job_ids: list[str]) -> None:
    """The limit tests' deferred tasks are not meant to run: remove them from the queue."""
    async with engine.begin() as conn:
        await conn.execute(
            text("DELETE FROM procrastinate_jobs WHERE args->>'job_id' = ANY(:ids)"),
            {"ids": job_ids},
        )


async def test_parallel_submits_on_separate_connections_never_pass_the_queued_limit(
    tenant_credentials: TenantCredentials, engine: AsyncEngine
) -> None:
    tenant = tenant_credentials.tenant
    attempts = jobs.QUEUED_LIMIT + 5

    async def submit(n: int) -> str | None:
        try:
            async with engine.begin() as conn:
                job_id = await jobs.submit_job(conn, tenant, "dataquery", {"n": n}, TASK)
                # Hold the transaction open: without the lock every submit would count 0.
                await asyncio.sleep(0.05)
                return job_id
        except QueryLimitExceeded as error:
            assert (error.kind, error.limit, error.status) == ("dataquery", 10, "queued")
            return None

    results = await asyncio.gather(*(submit(n) for n in range(attempts)))
    submitted = [job_id for job_id in results if job_id is not None]
    await _cleanup_deferred(engine, submitted)
    assert len(submitted) == jobs.QUEUED_LIMIT, results
    async with engine.connect() as conn:
        page = await jobs.list_jobs(conn, tenant, "dataquery", status=JobStatus.ACCEPTED)
        # Another kind has limits of its own.
        async with engine.begin() as other:
            aqua = await jobs.submit_job(other, tenant, "aqua", {}, TASK)
        await _cleanup_deferred(engine, [aqua])
    assert sorted(job.id for job in page.jobs) == sorted(submitted)


async def test_the_running_limit_holds_at_start_and_frees_when_a_job_ends(
    tenant_credentials: TenantCredentials, engine: AsyncEngine
) -> None:
    tenant = tenant_credentials.tenant
    async with engine.begin() as conn:
        ids = [
            await jobs.submit_job(conn, tenant, "export", {"n": n}, TASK)
            for n in range(jobs.RUNNING_LIMIT + 2)
        ]
    await _cleanup_deferred(engine, ids)
    running, waiting, last = ids[: jobs.RUNNING_LIMIT], ids[-2], ids[-1]
    assert all([await jobs.start_job(tenant, job_id) for job_id in running])
    with pytest.raises(RunningLimitReached) as limit:
        await jobs.start_job(tenant, waiting)
    assert (limit.value.kind, limit.value.limit, limit.value.status) == ("export", 5, "running")
    async with engine.connect() as conn:
        job = await jobs.read_job(conn, tenant, "export", waiting)
    assert job is not None and job.status == "accepted"
    assert await jobs.fail_job(tenant, running[0], "Column x cannot be resolved")
    assert await jobs.start_job(tenant, waiting)
    # A task run again (its worker died) resumes its running job; the limit still holds.
    assert await jobs.start_job(tenant, running[1])
    with pytest.raises(RunningLimitReached):
        await jobs.start_job(tenant, last)
    assert not await jobs.start_job(tenant, running[0])  # failed: never run again


async def test_cancel_and_finish_never_undo_each_other(
    tenant_credentials: TenantCredentials, engine: AsyncEngine
) -> None:
    tenant = tenant_credentials.tenant
    async with engine.begin() as conn:
        queued, running, done = [
            await jobs.submit_job(conn, tenant, "dataquery", {"n": n}, TASK) for n in range(3)
        ]
    await _cleanup_deferred(engine, [queued, running, done])
    assert await jobs.start_job(tenant, running) and await jobs.start_job(tenant, done)
    assert await jobs.finish_job(tenant, done, {"dataFile": "f"})

    async with engine.begin() as conn:
        assert not await jobs.cancel_job(conn, tenant, "aqua", queued)  # not an aqua job
        assert await jobs.cancel_job(conn, tenant, "dataquery", queued)
        assert await jobs.cancel_job(conn, tenant, "dataquery", running)
        assert not await jobs.cancel_job(conn, tenant, "dataquery", done)  # finished: unchanged
        assert not await jobs.cancel_job(conn, tenant, "dataquery", queued)  # once only
    assert await jobs.is_cancelled(tenant, queued) and await jobs.is_cancelled(tenant, running)
    assert not await jobs.is_cancelled(tenant, done)
    assert not await jobs.start_job(tenant, queued)  # a cancelled job's task does not run it
    assert not await jobs.finish_job(tenant, running, {"dataFile": "late"})
    assert not await jobs.fail_job(tenant, running, "late")

    async with engine.connect() as conn:
        finished = await jobs.read_job(conn, tenant, "dataquery", done)
        cancelled = await jobs.read_job(conn, tenant, "dataquery", running)
        assert await jobs.read_job(conn, tenant, "export", done) is None
        first = await jobs.list_jobs(conn, tenant, "dataquery", page_size=2)
        second = await jobs.list_jobs(
            conn, tenant, "dataquery", page_size=2, after=first.next_after
        )
        only_cancelled = await jobs.list_jobs(conn, tenant, "dataquery", status=JobStatus.CANCELLED)
    assert finished is not None and finished.status == "completed"
    assert finished.result == {"dataFile": "f"} and finished.request == {"n": 2}
    assert cancelled is not None and cancelled.status == "cancelled" and cancelled.result == {}
    # Newest first, by keyset.
    assert [job.id for job in first.jobs] == [done, running] and first.next_after == running
    assert [job.id for job in second.jobs] == [queued] and second.next_after is None
    assert {job.id for job in only_cancelled.jobs} == {queued, running}


async def test_the_writer_rests_its_ratio_of_the_time_each_piece_took() -> None:
    now = [100.0]
    rests: list[float] = []

    async def sleep(seconds: float) -> None:
        rests.append(seconds)
        now[0] += seconds

    pace = files.Pace(1.5, clock=lambda: now[0], sleep=sleep)
    for worked in (0.2, 0.0, 1.0):
        now[0] += worked
        await pace.rest()
    assert rests == pytest.approx([0.3, 0.0, 1.5])

    idle = files.Pace(0, clock=lambda: now[0], sleep=sleep)
    now[0] += 5
    await idle.rest()
    assert len(rests) == 3


async def test_exports_have_zuoras_own_queued_limit(
    tenant_credentials: TenantCredentials, engine: AsyncEngine
) -> None:
    """An ETL tool's discovery probes every object with an export before the worker has run
    any: Zuora lets 50 exports wait, and so must this server."""
    tenant = tenant_credentials.tenant
    submitted = []
    async with engine.begin() as conn:
        for n in range(jobs.EXPORT_QUEUED_LIMIT):
            submitted.append(await jobs.submit_job(conn, tenant, "export", {"n": n}, TASK))
    try:
        async with engine.begin() as conn:
            with pytest.raises(QueryLimitExceeded) as refused:
                await jobs.submit_job(conn, tenant, "export", {}, TASK)
        assert refused.value.limit == 50
    finally:
        await _cleanup_deferred(engine, submitted)
