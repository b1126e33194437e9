"""Real faults for tests: a row held locked by a test connection (and the request blocked on it),
uvicorn servers of a test's own (to kill, or to point at a database that is not there), and raw
HTTP/1.1 on one keep-alive socket."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tests.helpers import ApiClient, TenantCredentials

BLOCKED_ON = text("SELECT pid FROM pg_stat_activity WHERE :holder = ANY(pg_blocking_pids(pid))")


@dataclass
class HeldRow:
    conn: AsyncConnection
    pid: int


@asynccontextmanager
async def metrics_row_held(
    engine: AsyncEngine, tenant_id: str, account_id: str
) -> AsyncIterator[HeldRow]:
    """The account's metrics row locked by a transaction of the test until the block ends: a
    write to a synchronous account waits on it (up to the tenant's lockWaitMs)."""
    async with engine.connect() as conn:
        await conn.begin()
        pid = int(await conn.scalar(text("SELECT pg_backend_pid()")) or 0)
        locked = await conn.scalar(
            text(
                "SELECT account_id FROM account_metrics "
                "WHERE tenant_id = :tenant AND account_id = :account FOR UPDATE"
            ),
            {"tenant": tenant_id, "account": account_id},
        )
        assert locked == account_id
        yield HeldRow(conn, pid)
        await conn.rollback()


async def blocked_backend(engine: AsyncEngine, held: HeldRow, seconds: float = 15) -> int:
    """The pid of the backend that waits on `held` (a request that reached its write)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        async with engine.connect() as conn:
            pid = await conn.scalar(BLOCKED_ON, {"holder": held.pid})
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.05)
    raise AssertionError("no request blocked on the held row")


@asynccontextmanager
async def account_inserts_fail(engine: AsyncEngine, tenant_id: str) -> AsyncIterator[None]:
    """Every account insert of the tenant raises an error no layer expects (a trigger of the
    test database): a reliable 500 from production code, without a route made for tests."""
    name = f"fail_accounts_{tenant_id}"
    async with engine.begin() as conn:
        await conn.execute(
            text(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql "
                "AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$"
            )
        )
        await conn.execute(
            text(
                f"CREATE TRIGGER {name} BEFORE INSERT ON accounts FOR EACH ROW "
                f"WHEN (NEW.tenant_id = '{tenant_id}') EXECUTE FUNCTION {name}()"
            )
        )
    try:
        yield
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TRIGGER {name} ON accounts"))
            await conn.execute(text(f"DROP FUNCTION {name}()"))


async def authorize(http: httpx.AsyncClient, credentials: TenantCredentials) -> str:
    """A token from the server `http` talks to, sent by `http` from now on; returned too."""
    client = ApiClient(http, credentials)
    await client.authenticate()
    http.headers["Authorization"] = f"Bearer {client.token}"
    return client.token


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    port: int

    def kill(self) -> None:
        """kill -9: no shutdown, no rollback sent, connections cut."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(
    database_url: str,
    extra_env: dict[str, str] | None = None,
    *,
    workers: int = 1,
    log_path: Path | None = None,
) -> Server:
    """uvicorn serving the app; with one worker the process is the one serving (no supervisor).
    `log_path` receives its output (the app's JSON log lines included)."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PARTNERBILL_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "partnerbill.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    if workers > 1:
        command += ["--workers", str(workers)]
    output = log_path.open("ab") if log_path is not None else None
    process = subprocess.Popen(command, env=env, stdout=output, stderr=output)
    server = Server(process, f"http://127.0.0.1:{port}", port)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{server.base_url}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            server.stop()
            raise RuntimeError("the test server did not start")
        time.sleep(0.1)


@contextmanager
def running_server(
    database_url: str,
    extra_env: dict[str, str] | None = None,
    *,
    workers: int = 1,
    log_path: Path | None = None,
) -> Iterator[Server]:
    server = start_server(database_url, extra_env, workers=workers, log_path=log_path)
    try:
        yield server
    finally:
        server.stop()


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class KeepAliveConnection:
    """HTTP/1.1 requests one after another on one TCP connection, as a keep-alive client sends
    them; a request on a connection the server closed fails."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> RawResponse:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = self._read_until(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parsed = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            parsed[name.strip().lower()] = value.strip()
        return RawResponse(
            int(status_line.split()[1]), parsed, self._read(int(parsed["content-length"]))
        )

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def _read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk
