"""The procrastinate app: background jobs on the same PostgreSQL, and the job worker's run loop.

Jobs that business rows need are deferred inside the same transaction as those rows (a rolled
back request leaves no job), by name. Features declare their tasks on blueprints, and the task
registry (`partnerbill.tasks`, outside `core`: core imports no feature) hands them to
`register_tasks`; `build_app` builds the app of those and core's own maintenance tasks. A
process defers or runs jobs only after the registry registered them (an unknown task name is an
error, never a job no worker would run).

The worker outlives its database: losing PostgreSQL (a restart, a dropped connection) pauses the
jobs and the worker reconnects with backoff, it never ends the process. Only an error that is not
the database's ends it, with a non-zero exit code, for a supervisor to restart it.
"""

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import procrastinate
import psycopg
import structlog
from procrastinate import Blueprint
from procrastinate.exceptions import ConnectorException
from procrastinate.worker import Worker
from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from partnerbill.core import db
from partnerbill.core.db import libpq_url
from partnerbill.core.idempotency import purge_expired_keys
from partnerbill.core.processes import Backoff
from partnerbill.settings import get_settings

log = structlog.get_logger(__name__)
QUEUES = ["metrics", "maintenance", "orders", "billruns", "exports"]
# `serve` runs the query surfaces' jobs (Data Query, AQuA, exports) in a worker of their own at a
# lower CPU priority: an export of 200,000 rows then takes the cycles API requests leave idle.
EXPORT_QUEUES = ["exports"]
LOCAL_HOSTS = frozenset({None, "", "localhost", "127.0.0.1", "::1"})
# A worker that has not sent a heartbeat for this long is presumed dead; its jobs are retried.
STALLED_AFTER_SECONDS = get_settings().stalled_job_seconds
# Several heartbeats fit in that window, so a live worker is never taken for a dead one; and the
# stalled jobs are looked for twice per window (each minute when the window is a minute or more).
HEARTBEAT_SECONDS = min(10.0, STALLED_AFTER_SECONDS / 3)
STALLED_SWEEP_CRON = (
    "* * * * *"
    if STALLED_AFTER_SECONDS >= 60
    else f"* * * * * */{max(1, STALLED_AFTER_SECONDS // 2)}"  # croniter's 6th field: seconds
)
PURGED_KEYS_PER_RUN = 100_000
DATABASE_ERRORS = (ConnectorException, psycopg.Error, exc.DBAPIError, OSError)

maintenance = Blueprint()


@maintenance.periodic(cron=STALLED_SWEEP_CRON, periodic_id="retry-stalled-jobs")
@maintenance.task(queue="maintenance", pass_context=True, name="retry_stalled_jobs")
async def retry_stalled_jobs(context: procrastinate.JobContext, timestamp: int) -> int:
    """Jobs of a worker that died mid-job stay `doing`; put them back in the queue."""
    assert context.app is not None
    manager = context.app.job_manager
    stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER_SECONDS))
    for job in stalled:
        await manager.retry_job(job)
    return len(stalled)


@maintenance.periodic(cron="17 * * * *", periodic_id="purge-idempotency-keys")
@maintenance.task(queue="maintenance", name="purge_idempotency_keys")
async def purge_idempotency_keys(timestamp: int) -> int:
    """Drop expired Idempotency-Key records, a bounded batch an hour."""
    return await purge_expired_keys(PURGED_KEYS_PER_RUN)


_apps: dict[str, procrastinate.App] = {}
# (blueprint, namespace) of the features' tasks, from the task registry.
_feature_tasks: list[tuple[Blueprint, str]] = []


def register_tasks(blueprints: Sequence[tuple[Blueprint, str]]) -> None:
    """The features' task blueprints, each under its namespace (`namespace:name` is a task's
    name for deferring), from the task registry; again: nothing. An app built before (a process
    that ran only core's tasks so far) takes them too: a blueprint goes into one app only."""
    if _feature_tasks:
        return
    if len(_apps) > 1:
        raise RuntimeError("tasks registered after job apps for several databases were built")
    _feature_tasks.extend(blueprints)
    for app in _apps.values():
        for blueprint, namespace in blueprints:
            app.add_tasks_from(blueprint, namespace=namespace)


def build_app(database_url: str) -> procrastinate.App:
    """The process's procrastinate app for `database_url`, built once: adding the blueprints'
    tasks renames them in place (`namespace:name`), so they must be added only once."""
    conninfo = libpq_url(database_url)
    if conninfo in _apps:
        return _apps[conninfo]
    app = procrastinate.App(
        # procrastinate's pool checks each connection out alive (a restart breaks them).
        connector=procrastinate.PsycopgConnector(conninfo=conninfo, min_size=1, max_size=4)
    )
    app.add_tasks_from(maintenance, namespace="maintenance")
    for blueprint, namespace in _feature_tasks:
        app.add_tasks_from(blueprint, namespace=namespace)
    _apps[conninfo] = app
    return app


async def defer_in_transaction(conn: AsyncConnection, task_name: str, **arguments: Any) -> None:
    """Defer a job on the caller's transaction: it exists exactly if the transaction commits.
    `task_name` is procrastinate's `namespace:name`; an unknown one is an error, not a job no
    worker would ever run."""
    if not _feature_tasks:
        raise RuntimeError("no task registry in this process: call partnerbill.tasks.register()")
    app = build_app(conn.engine.url.render_as_string(hide_password=False))
    raw = await conn.get_raw_connection()
    deferrer = app.configure_task(task_name, allow_unknown=False, connection=raw.driver_connection)
    await deferrer.defer_async(**arguments)


def _ping_on_checkout(engine: AsyncEngine) -> None:
    """The worker's SQLAlchemy connections idle between jobs, and a PostgreSQL restart meanwhile
    breaks them all: each is pinged when checked out, and a dead one is replaced by a new one
    (the pool retries a checkout that raises DisconnectionError), so the first job after a
    restart does not fail on a dead connection. The ping's transaction is ended at once: a
    connection must come out of the pool idle, or `autocommit()` cannot be set on it."""

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def ping(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
            dbapi_connection.rollback()
        except Exception as error:
            raise exc.DisconnectionError() from error
        finally:
            cursor.close()


def _lower_backend_priority(engine: AsyncEngine, niceness: int) -> None:
    """Give the worker's database sessions the worker's lower CPU priority, when PostgreSQL runs
    on this host and the operating system lets this user (the embedded server's user, or root):
    an export's query and text formatting run in its session. Best effort: elsewhere it is a
    no-op. Such a session holds only the shared locks of a read."""
    host = engine.url.host
    if not (host in LOCAL_HOSTS or str(host).startswith("/")):
        return

    @event.listens_for(engine.sync_engine.pool, "connect")
    def lower(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT pg_backend_pid()")
            (pid,) = cursor.fetchone()
            dbapi_connection.rollback()
        finally:
            cursor.close()
        with contextlib.suppress(OSError):
            current = os.getpriority(os.PRIO_PROCESS, pid)
            os.setpriority(os.PRIO_PROCESS, pid, max(current, niceness))


def _run_when_idle() -> None:
    """Put this process in Linux's idle scheduling class, before it starts any thread (threads
    inherit it): it runs only on a CPU no other task wants, and a request's process waking up
    takes the CPU from it at once. A niceness alone is not enough for an export beside busy API
    writers: the kernel lets a niced task finish its time slice before a woken writer runs, and
    the writers, which wake up many times per request, lose milliseconds at each wake-up. Where
    the class does not exist, the lowest niceness stands in. Its database sessions keep only
    their niceness: a session starved while holding one of PostgreSQL's internal locks would
    stall the writers waiting for that lock."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, 0, 19)


async def run_worker(
    database_url: str,
    concurrency: int,
    queues: list[str] | None = None,
    niceness: int = 0,
    idle_cpu: bool = False,
    loops: Sequence[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = (),
) -> None:
    """Run the job worker on `queues` (all by default) until SIGTERM or SIGINT, `niceness`
    below the normal CPU priority (its database sessions too, where that can be done), and with
    `idle_cpu` at the idle scheduling class (`_run_when_idle`). Each of `loops` runs beside the
    jobs until the worker stops (it is given the stopping event, and must survive a lost
    database itself).

    procrastinate's worker stops quietly when one of its side tasks (heartbeat, LISTEN, periodic
    deferrer) loses the database, and raises when fetching a job does: either way the app is
    opened again after a `Backoff` delay (1 s, doubling up to 30 s). Other errors propagate."""
    if niceness:
        os.nice(niceness)
    if idle_cpu:
        _run_when_idle()
    engine = db.create_engine(database_url)
    _ping_on_checkout(engine)
    if niceness:
        _lower_backend_priority(engine, niceness)
    db.set_engine(engine)
    app = build_app(database_url)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    running: list[Worker] = []

    def stop() -> None:
        stopping.set()
        for worker in running:
            worker.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)
    backoff = Backoff()
    side_tasks = [asyncio.create_task(run(stopping)) for run in loops]
    try:
        while not stopping.is_set():
            backoff.started()
            try:
                async with app.open_async():
                    worker = Worker(
                        app,
                        queues=queues or QUEUES,
                        concurrency=concurrency,
                        install_signal_handlers=False,
                        update_heartbeat_interval=HEARTBEAT_SECONDS,
                        stalled_worker_timeout=STALLED_AFTER_SECONDS,
                    )
                    running[:] = [worker]
                    await worker.run()
            except DATABASE_ERRORS as error:
                log.warning("job_worker_lost_database", error=repr(error))
            finally:
                running.clear()
            if stopping.is_set():
                break
            delay = backoff.next_delay()
            log.warning("job_worker_reconnecting", in_seconds=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
    finally:
        stopping.set()
        await asyncio.gather(*side_tasks, return_exceptions=True)
        await engine.dispose()
        db.set_engine(None)
