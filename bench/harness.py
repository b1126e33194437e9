"""The benchmark harness behind `partnerbill bench SCENARIO`.

- **Target**: a live server over HTTP. Without `--url` the harness starts one with the production
  settings (uvicorn with several workers + a job worker) on a free loopback port, on DATABASE_URL
  or the embedded PostgreSQL, after applying the migrations, and stops it at the end (Ctrl-C too).
  Every run gets a fresh tenant and OAuth client unless credentials are given.
- **Load**: an asyncio + aiohttp generator; each variant is bounded in time *and* in request
  count; only 127.0.0.1.
- **Per variant**: requests/s, business objects/s, latency p50/p95/p99/max, errors by reason
  code (category-50 lock errors counted apart), the server's peak RSS (VmRSS of its processes,
  sampled), then the refresh duration and lag of the accounts it touched.
- **Reconciliation** after the load: every touched account is refreshed over the API (partner
  accounts), then its stored metrics and its API metrics must equal `recompute` read straight
  from PostgreSQL; any mismatch fails the run.
- **Output**: `bench/results/<scenario>-<timestamp>.json`, `.md` (a Markdown table) and `.png`
  (throughput and p50/p99 per variant).

Comparisons are ratios within one run with the variants interleaved: the machine is shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import account_body
from partnerbill.cli import worker_commands
from partnerbill.core import auth, db, migrate, tenants
from partnerbill.core.tables import oauth_clients
from partnerbill.core.tables import tenants as tenants_table
from partnerbill.metrics.service import AccountMetrics, read_metrics, recompute
from partnerbill.settings import get_settings
from partnerbill.tables.accounts import accounts as accounts_table

RESULTS_DIR = Path(__file__).resolve().parent / "results"
LOOPBACK_HOSTS = frozenset({"127.0.0.1"})
LOCK_CATEGORY = 50
# A variant never issues more than this many requests per client per second of its duration:
# the count bound that goes with the time bound.
MAX_REQUESTS_PER_CLIENT_SECOND = 2_000
REQUEST_TIMEOUT_SECONDS = 60
SERVER_START_SECONDS = 90
RSS_SAMPLE_SECONDS = 0.25
API_METRICS = {
    # API field -> AccountMetrics attribute (balance is a property)
    "balance": "balance",
    "totalInvoiceBalance": "total_invoice_balance",
    "totalDebitMemoBalance": "total_debit_memo_balance",
    "unappliedPaymentAmount": "unapplied_payment_amount",
    "unappliedCreditMemoAmount": "unapplied_credit_memo_amount",
    "creditBalance": "credit_balance",
    "contractedMrr": "contracted_mrr",
}

console = Console()


# ---------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class BenchConfig:
    scenario: str
    clients: int = 32
    seconds: float = 10.0
    rounds: int = 3
    tiny: bool = False
    url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    results_dir: Path = RESULTS_DIR
    api_workers: int | None = None
    invoices: int | None = None  # migration: invoices per variant
    sizes: str | None = None  # growth: account sizes, comma-separated
    subscriptions: int | None = None  # reseller: subscriptions ordered

    @classmethod
    def build(
        cls,
        scenario: str,
        *,
        clients: int | None = None,
        seconds: float | None = None,
        rounds: int | None = None,
        tiny: bool = False,
        **rest: Any,
    ) -> BenchConfig:
        """Defaults: 32 clients, 10 s per variant, 3 rounds; `tiny`: 2 clients, 1 s, 1 round."""
        return cls(
            scenario=scenario,
            clients=clients or (2 if tiny else 32),
            seconds=seconds or (1.0 if tiny else 10.0),
            rounds=rounds or (1 if tiny else 3),
            tiny=tiny,
            **{k: v for k, v in rest.items() if v is not None},
        )

    @property
    def max_requests(self) -> int:
        """The count bound of one variant (the time bound is `seconds`)."""
        return max(1, int(self.clients * self.seconds * MAX_REQUESTS_PER_CLIENT_SECOND))


def check_loopback(url: str) -> str:
    host = urlsplit(url).hostname
    if host not in LOOPBACK_HOSTS:
        raise SystemExit(f"bench drives 127.0.0.1 only, not {host!r}: {url}")
    return url.rstrip("/")


# ---------------------------------------------------------------------------------------------
# Server processes and their memory


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _proc_status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
        fields_ = stat[stat.rfind(")") + 2 :].split()
        if len(fields_) > 1 and int(fields_[1]) == pid:
            found.append(int(entry.name))
    return found


def process_tree(roots: Sequence[int]) -> list[int]:
    seen: list[int] = []
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid in seen or not Path(f"/proc/{pid}").exists():
            continue
        seen.append(pid)
        todo.extend(_children(pid))
    return seen


def listening_pids(port: int) -> list[int]:
    """Processes holding the loopback listening socket of `port` (uvicorn's master and workers
    share it), for a server the harness did not start. Empty when /proc does not tell."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if int(parts[1].rsplit(":", 1)[1], 16) == port and parts[3] == "0A":  # LISTEN
                    inodes.add(parts[9])
    if not inodes:
        return []
    pids = []
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in wanted:
                        pids.append(int(entry.name))
                        break
    return pids


class RssSampler:
    """Samples the summed VmRSS of the server's processes while a variant runs."""

    def __init__(self, roots: Callable[[], list[int]]) -> None:
        self._roots = roots
        self.peak_total_kb = 0
        self.peak_process_kb = 0
        self._task: asyncio.Task[None] | None = None

    def _sample(self) -> None:
        pids = process_tree(self._roots())
        sizes = [_proc_status_kb(pid, "VmRSS") for pid in pids]
        if sizes:
            self.peak_total_kb = max(self.peak_total_kb, sum(sizes))
            self.peak_process_kb = max(self.peak_process_kb, max(sizes))

    async def _loop(self) -> None:
        while True:
            await asyncio.to_thread(self._sample)
            await asyncio.sleep(RSS_SAMPLE_SECONDS)

    @contextlib.asynccontextmanager
    async def sampling(self) -> AsyncIterator[RssSampler]:
        self.peak_total_kb = self.peak_process_kb = 0
        self._task = asyncio.create_task(self._loop())
        try:
            yield self
        finally:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._sample()

    def as_json(self) -> dict[str, float | None]:
        if not self.peak_total_kb:
            return {"serverRssPeakMb": None, "serverRssPeakProcessMb": None}
        return {
            "serverRssPeakMb": round(self.peak_total_kb / 1024, 1),
            "serverRssPeakProcessMb": round(self.peak_process_kb / 1024, 1),
        }


ASGI_SERVERS = ("uvicorn", "granian")


def api_command(asgi_server: str, port: int, workers: int) -> list[str]:
    """The API processes' command (less the interpreter) under `asgi_server`."""
    app = "partnerbill.app:create_app"
    where = ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    quiet = ["--log-level", "warning"]
    if asgi_server == "granian":
        return ["-m", "granian", "--interface", "asgi", "--factory", *where, *quiet, "--no-ws", app]
    return ["-m", "uvicorn", app, "--factory", *where, *quiet, "--no-access-log"]


class LiveServer:
    """uvicorn (several workers) + the job workers `serve` runs, on one database, on a free
    loopback port. A scenario comparing servers starts more of them: `asgi_server` and `env`
    (settings) vary, and `job_workers=False` leaves the jobs to the harness's own server."""

    def __init__(
        self,
        database_url: str,
        api_workers: int,
        *,
        asgi_server: str = "uvicorn",
        env: dict[str, str] | None = None,
        job_workers: bool = True,
    ) -> None:
        self.database_url = database_url
        self.api_workers = api_workers
        self.asgi_server = asgi_server
        self.settings_env = env or {}
        self.job_workers = job_workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen[bytes]] = []
        self._metrics_dir = tempfile.TemporaryDirectory(prefix="partnerbill-bench-prom-")

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "PARTNERBILL_LOG_LEVEL": "WARNING",
            "PROMETHEUS_MULTIPROC_DIR": self._metrics_dir.name,
            **self.settings_env,
        }

    def _spawn(self, args: list[str]) -> None:
        # A session of their own: Ctrl-C reaches the harness only, which then stops them in order.
        self.processes.append(
            subprocess.Popen([sys.executable, *args], env=self._env(), start_new_session=True)
        )

    def start(self) -> None:
        self._spawn(api_command(self.asgi_server, self.port, self.api_workers))
        if self.job_workers:
            for command in worker_commands(get_settings()).values():
                self._spawn(command[1:])  # what `serve` runs, less the interpreter _spawn adds
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"server process {process.args!r} exited: {process.returncode}"
                    )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock,
            ):
                sock.sendall(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                if b" 200 " in sock.recv(64):
                    return
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not answer /health in time")
            time.sleep(0.2)

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.poll() is None]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self._metrics_dir.cleanup()


# ---------------------------------------------------------------------------------------------
# HTTP client


def loads(raw: bytes) -> Any:
    """JSON with exact Decimals."""
    return json.loads(raw, parse_float=Decimal)


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value))


def dumps(value: object) -> str:
    return json.dumps(value, default=_default)


@dataclass
class Reply:
    status: int
    payload: Any
    seconds: float

    @property
    def ok(self) -> bool:
        """HTTP 200 and no `success: false` (query answers carry no `success` at all)."""
        return (
            self.status == 200
            and isinstance(self.payload, dict)
            and self.payload.get("success") is not False
        )

    @property
    def reason(self) -> str:
        """The first reason code, else `http-<status>`."""
        if isinstance(self.payload, dict):
            reasons = self.payload.get("reasons") or []
            if reasons and isinstance(reasons[0], dict) and reasons[0].get("code") is not None:
                return str(reasons[0]["code"])
        return f"http-{self.status}"


class Api:
    """An authenticated aiohttp session on a loopback server, sized for `clients` at once."""

    def __init__(self, url: str, clients: int) -> None:
        self.url = check_loopback(url)
        self.clients = clients
        self.http: aiohttp.ClientSession | None = None
        self.headers: dict[str, str] = {"Content-Type": "application/json"}

    async def open(self, client_id: str, client_secret: str) -> Api:
        connector = aiohttp.TCPConnector(limit=self.clients + 8, force_close=False)
        self.http = aiohttp.ClientSession(
            base_url=self.url + "/",
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS),
        )
        async with self.http.post(
            "oauth/token",
            data={
                "client_id": client_id,
                "client_secret": client_secret,
                "grant_type": "client_credentials",
            },
        ) as response:
            body = loads(await response.read())
            if response.status != 200:
                raise RuntimeError(f"could not get a token: {response.status} {body}")
        self.headers["Authorization"] = f"Bearer {body['access_token']}"
        return self

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()

    async def call(self, method: str, path: str, body: Any = None) -> Reply:
        assert self.http is not None
        data = None if body is None else dumps(body)
        started = time.perf_counter()
        async with self.http.request(
            method, path.lstrip("/"), data=data, headers=self.headers
        ) as response:
            raw = await response.read()
        seconds = time.perf_counter() - started
        try:
            payload = loads(raw) if raw else {}
        except ValueError:
            payload = {"raw": raw[:200].decode(errors="replace")}
        return Reply(response.status, payload, seconds)

    async def ok(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        reply = await self.call(method, path, body)
        if not reply.ok:
            raise RuntimeError(f"{method} {path} failed: {reply.status} {reply.payload}")
        payload: dict[str, Any] = reply.payload
        return payload

    async def create_account(self, name: str, partner: bool) -> dict[str, Any]:
        return await self.ok("POST", "/v1/accounts", account_body(name, partner))


def invoice_body(account_number: str, i: int) -> dict[str, Any]:
    """A posted standalone invoice with one item; amounts and dates vary with `i`, so the
    reconciliation checks sums and the last invoice date, not a multiple of one figure."""
    day = 1 + i % 28
    return {
        "accountNumber": account_number,
        "invoiceDate": f"2026-03-{day:02d}",
        "status": "Posted",
        "invoiceItems": [
            {
                "amount": f"{1 + i % 97}.{i % 100:02d}",
                "serviceStartDate": f"2026-03-{day:02d}",
                "chargeName": "bench",
            }
        ],
    }


# ---------------------------------------------------------------------------------------------
# Measurement


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def is_lock_error(code: str) -> bool:
    return code.isdigit() and int(code) % 100 == LOCK_CATEGORY


@dataclass
class Measurement:
    """One variant in one round (or one concurrent role of it)."""

    variant: str
    round: int
    seconds: float = 0.0
    requests: int = 0
    ok: int = 0
    objects: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    rss: dict[str, float | None] = field(default_factory=dict)

    def record(self, seconds: float, ok: bool, objects: int, reason: str | None) -> None:
        self.requests += 1
        self.latencies.append(seconds)
        if ok:
            self.ok += 1
            self.objects += objects
        else:
            key = reason or "unknown"
            self.errors[key] = self.errors.get(key, 0) + 1

    @property
    def lock_errors(self) -> int:
        return sum(n for code, n in self.errors.items() if is_lock_error(code))

    def as_json(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        seconds = self.seconds or math.nan
        return {
            "round": self.round,
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "ok": self.ok,
            "requestsPerSecond": round(self.requests / seconds, 1),
            "objectsPerSecond": round(self.objects / seconds, 1),
            "latencyMs": latency_json(ordered),
            "errors": dict(sorted(self.errors.items())),
            "lockErrors": self.lock_errors,
            **self.rss,
        }


def latency_json(ordered: Sequence[float]) -> dict[str, float | None]:
    def ms(value: float) -> float | None:
        return None if math.isnan(value) else round(value * 1000, 2)

    return {
        "p50": ms(percentile(ordered, 0.50)),
        "p95": ms(percentile(ordered, 0.95)),
        "p99": ms(percentile(ordered, 0.99)),
        "max": ms(ordered[-1] if ordered else math.nan),
    }


class Operation(Protocol):
    """One unit of load: returns (succeeded, business objects, reason code when failed)."""

    def __call__(self, client: int, i: int, /) -> Awaitable[tuple[bool, int, str | None]]: ...


def http_operation(
    api: Api, method: str, build: Callable[[int, int], tuple[str, Any]], objects: int = 1
) -> Operation:
    """An operation that sends `build(client, i) -> (path, body)` as one request."""

    async def run(client: int, i: int) -> tuple[bool, int, str | None]:
        path, body = build(client, i)
        try:
            reply = await api.call(method, path, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return False, 0, f"exception:{type(exc).__name__}"
        return reply.ok, objects, None if reply.ok else reply.reason

    return run


class Bench:
    """What a scenario works with: the API session, the database, the config, progress, and the
    record of variants, touched accounts and notes that becomes the result."""

    def __init__(
        self,
        config: BenchConfig,
        api: Api,
        engine: AsyncEngine,
        tenant: tenants.Tenant,
        server_pids: Callable[[], list[int]],
        progress: Progress,
        credentials: tuple[str, str],
    ) -> None:
        self.config = config
        self.api = api
        self.credentials = credentials
        self._server_pids = server_pids
        self._other_servers: list[LiveServer] = []
        self.engine = engine
        self.tenant = tenant
        self.database_url = engine.url.render_as_string(hide_password=False)
        self.progress = progress
        self.rss = RssSampler(self._all_server_pids)
        self.measurements: list[Measurement] = []
        self.descriptions: dict[str, str] = {}
        # variant -> account numbers it wrote to (reconciled after the load)
        self.touched: dict[str, set[str]] = {}
        self.ratios: dict[str, list[float]] = {}
        self.ratio_descriptions: dict[str, str] = {}
        self.notes: list[str] = []
        # The scenario lists the reconciliation among its targets (`reconciliation_target`).
        self.reconciliation_is_target = False
        self._counter = 0

    def _all_server_pids(self) -> list[int]:
        return self._server_pids() + [pid for s in self._other_servers for pid in s.pids()]

    @contextlib.asynccontextmanager
    async def other_server(
        self, asgi_server: str, env: dict[str, str] | None = None
    ) -> AsyncIterator[Api]:
        """A second API server on the same database (no job workers: the run's server does the
        jobs), started for a comparison of server choices; its session for the run's tenant.
        Its processes count in the RSS columns while it runs."""
        workers = self.config.api_workers or get_settings().api_workers
        server = LiveServer(
            self.database_url, workers, asgi_server=asgi_server, env=env, job_workers=False
        )
        await asyncio.to_thread(server.start)
        self._other_servers.append(server)
        api = Api(server.url, self.config.clients)
        try:
            yield await api.open(*self.credentials)
        finally:
            await api.close()
            self._other_servers.remove(server)
            await asyncio.to_thread(server.stop)

    def describe(self, variant: str, description: str) -> None:
        self.descriptions[variant] = description

    def touch(self, variant: str, *account_numbers: str) -> None:
        self.touched.setdefault(variant, set()).update(account_numbers)

    def next_index(self) -> int:
        """A run-wide counter, so bodies differ across variants and rounds."""
        self._counter += 1
        return self._counter

    async def load(
        self,
        roles: Sequence[tuple[str, Operation, int]],
        round_number: int,
        *,
        seconds: float | None = None,
        record: bool = True,
    ) -> list[Measurement]:
        """Run each role `(variant, operation, clients)` concurrently for `seconds`, bounded in
        time and count; the server's RSS is sampled meanwhile. Returns one measurement per role."""
        duration = self.config.seconds if seconds is None else seconds
        max_requests = max(1, int(duration * MAX_REQUESTS_PER_CLIENT_SECOND))
        label = " + ".join(variant for variant, _, _ in roles)
        task = self.progress.add_task(
            f"round {round_number + 1}/{self.config.rounds} {label}", total=duration
        )
        measurements = [Measurement(variant, round_number) for variant, _, _ in roles]
        started = time.perf_counter()
        deadline = started + duration

        async def client_loop(m: Measurement, operation: Operation, client: int) -> None:
            for _ in range(max_requests):
                if time.perf_counter() >= deadline:
                    return
                i = self.next_index()
                t0 = time.perf_counter()
                ok, objects, reason = await operation(client, i)
                m.record(time.perf_counter() - t0, ok, objects, reason)

        async def ticker() -> None:
            while True:
                elapsed = time.perf_counter() - started
                done = sum(m.requests for m in measurements)
                self.progress.update(
                    task, completed=min(elapsed, duration), description=f"{label}: {done} req"
                )
                await asyncio.sleep(0.2)

        ticking = asyncio.create_task(ticker())
        try:
            async with self.rss.sampling():
                await asyncio.gather(
                    *(
                        client_loop(m, operation, client)
                        for m, (_, operation, clients) in zip(measurements, roles, strict=True)
                        for client in range(clients)
                    )
                )
        finally:
            ticking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticking
        elapsed = time.perf_counter() - started
        self.progress.update(task, completed=duration, visible=False)
        for m in measurements:
            m.seconds = elapsed
            m.rss = self.rss.as_json()
        if record:
            self.measurements.extend(measurements)
        return measurements

    def ratio(self, name: str, value: float, description: str) -> None:
        self.ratios.setdefault(name, []).append(round(value, 4))
        self.ratio_descriptions[name] = description


# ---------------------------------------------------------------------------------------------
# Reconciliation


def _parse_v1(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def _differences(expected: AccountMetrics, actual: AccountMetrics) -> dict[str, list[str]]:
    out = {}
    for name in AccountMetrics.__dataclass_fields__:
        want, got = getattr(expected, name), getattr(actual, name)
        if want != got:
            out[name] = [str(want), str(got)]
    return out


async def reconcile(bench: Bench) -> dict[str, Any]:
    """Refresh every touched account over the API, then compare its metrics (stored, and as the
    API shows them) with `recompute` read straight from PostgreSQL."""
    owners: dict[str, str] = {}
    for variant, numbers in bench.touched.items():
        for number in numbers:
            owners.setdefault(number, variant)
    task = bench.progress.add_task("reconciliation", total=len(owners))
    details = []
    mismatches = []
    for number in sorted(owners):
        before = await bench.api.ok("GET", f"/v1/accounts/{number}")
        # Absent when the tenant has the Reseller Account feature disabled.
        partner = bool(before["basicInfo"].get("partnerAccount"))
        freshness = before.get("metricsFreshness") or {}
        oldest = _parse_v1(freshness.get("oldestPendingChange"))
        entry: dict[str, Any] = {
            "account": number,
            "variant": owners[number],
            "partnerAccount": partner,
            "pendingChanges": freshness.get("pendingChanges"),
            "refreshLagSeconds": (
                round((datetime.now(UTC) - oldest).total_seconds(), 1) if oldest else None
            ),
            "refreshDurationMs": None,
            "foldedChanges": None,
        }
        if partner:
            refreshed = await bench.api.ok(
                "POST", f"/v1/partnerbill/accounts/{number}/refresh-metrics"
            )
            entry["refreshDurationMs"] = refreshed["durationMs"]
            entry["foldedChanges"] = refreshed["foldedChanges"]
        shown = (await bench.api.ok("GET", f"/v1/accounts/{number}"))["metrics"]
        async with bench.engine.connect() as conn:
            account_id = str(
                await conn.scalar(
                    select(accounts_table.c.id).where(
                        accounts_table.c.tenant_id == bench.tenant.id,
                        accounts_table.c.account_number == number,
                    )
                )
            )
            expected = await recompute(conn, bench.tenant, account_id)
            stored = (await read_metrics(conn, bench.tenant, account_id)).metrics
        problems: dict[str, Any] = {}
        stored_diff = _differences(expected, stored)
        if stored_diff:
            problems["stored"] = stored_diff
        api_diff = {
            api_name: [str(getattr(expected, attr)), str(shown.get(api_name))]
            for api_name, attr in API_METRICS.items()
            if Decimal(str(shown.get(api_name))) != getattr(expected, attr)
        }
        if api_diff:
            problems["api"] = api_diff
        if problems:
            mismatches.append({"account": number, "variant": owners[number], **problems})
        entry["totalInvoiceBalance"] = str(expected.total_invoice_balance)
        details.append(entry)
        bench.progress.advance(task)
    bench.progress.update(task, visible=False)
    return {
        "passed": not mismatches,
        "accounts": len(details),
        "mismatches": mismatches,
        "details": details,
    }


def reconciliation_target(reconciliation: dict[str, Any]) -> dict[str, Any]:
    mismatches = len(reconciliation["mismatches"])
    return {
        "target": "reconciliation exact (metrics = recompute)",
        "measured": f"{reconciliation['accounts']} accounts, {mismatches} mismatches",
        "met": reconciliation["passed"],
    }


# ---------------------------------------------------------------------------------------------
# Summaries, files and the plot


def summarize(bench: Bench, reconciliation: dict[str, Any]) -> dict[str, Any]:
    variants: dict[str, Any] = {}
    for variant in dict.fromkeys(m.variant for m in bench.measurements):
        rounds = [m for m in bench.measurements if m.variant == variant]
        pooled = sorted(x for m in rounds for x in m.latencies)
        errors: dict[str, int] = {}
        for m in rounds:
            for code, n in m.errors.items():
                errors[code] = errors.get(code, 0) + n
        refreshes = [d for d in reconciliation["details"] if d["variant"] == variant]
        durations = [
            d["refreshDurationMs"] for d in refreshes if d["refreshDurationMs"] is not None
        ]
        lags = [d["refreshLagSeconds"] for d in refreshes if d["refreshLagSeconds"] is not None]
        rss_total = [m.rss.get("serverRssPeakMb") for m in rounds]
        rss_process = [m.rss.get("serverRssPeakProcessMb") for m in rounds]
        variants[variant] = {
            "description": bench.descriptions.get(variant, ""),
            "rounds": [m.as_json() for m in rounds],
            "summary": {
                "requests": sum(m.requests for m in rounds),
                "ok": sum(m.ok for m in rounds),
                "requestsPerSecond": _median([m.requests / m.seconds for m in rounds]),
                "objectsPerSecond": _median([m.objects / m.seconds for m in rounds]),
                "latencyMs": latency_json(pooled),
                "errors": dict(sorted(errors.items())),
                "lockErrors": sum(m.lock_errors for m in rounds),
                "serverRssPeakMb": max((x for x in rss_total if x is not None), default=None),
                "serverRssPeakProcessMb": max(
                    (x for x in rss_process if x is not None), default=None
                ),
                "refreshDurationMs": max(durations, default=None),
                "refreshLagSeconds": max(lags, default=None),
                "accountsTouched": len(bench.touched.get(variant, ())),
            },
        }
    ratios = {
        name: {
            "description": bench.ratio_descriptions[name],
            "perRound": values,
            "median": _median(values),
        }
        for name, values in bench.ratios.items()
    }
    return {"variants": variants, "ratios": ratios}


def _median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 4) if values else None


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# partnerbill bench {result['scenario']} — {result['startedAt']}",
        "",
        f"`{result['command']}`",
        "",
        f"{result['config']['clients']} clients, {result['config']['seconds']} s per variant, "
        f"{result['config']['rounds']} round(s), variants interleaved; "
        f"{result['machine']['cpus']} CPUs; PostgreSQL {result['machine']['postgres']}.",
        "",
        "| variant | req/s | objects/s | p50 ms | p95 ms | p99 ms | max ms | errors | lock errors "
        "| refresh ms | refresh lag s | server RSS peak MB (max process) |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for name, variant in result["variants"].items():
        s = variant["summary"]
        lat = s["latencyMs"]
        errors = ", ".join(f"{k}: {v}" for k, v in s["errors"].items()) or "none"
        lines.append(
            f"| {name} | {_fmt(s['requestsPerSecond'])} | {_fmt(s['objectsPerSecond'])} "
            f"| {_fmt(lat['p50'])} | {_fmt(lat['p95'])} | {_fmt(lat['p99'])} | {_fmt(lat['max'])} "
            f"| {errors} | {s['lockErrors']} | {_fmt(s['refreshDurationMs'])} "
            f"| {_fmt(s['refreshLagSeconds'])} | {_fmt(s['serverRssPeakMb'])} "
            f"({_fmt(s['serverRssPeakProcessMb'])}) |"
        )
    if result["ratios"]:
        lines += ["", "| ratio | per round | median |", "|---|---|---:|"]
        for name, ratio in result["ratios"].items():
            rounds = ", ".join(f"{v:.3f}" for v in ratio["perRound"])
            lines.append(
                f"| {name} ({ratio['description']}) | {rounds} | {_fmt(ratio['median'], 3)} |"
            )
    if result.get("targets"):
        lines += ["", "| target | measured | met |", "|---|---|---|"]
        for target in result["targets"]:
            met = "yes" if target["met"] else "**no**"
            lines.append(f"| {target['target']} | {target['measured']} | {met} |")
    rec = result["reconciliation"]
    lines += [
        "",
        f"Reconciliation: {'passed' if rec['passed'] else '**FAILED**'} "
        f"({rec['accounts']} accounts, {len(rec['mismatches'])} mismatches).",
    ]
    for note in result.get("notes", []):
        lines.append(f"\n{note}")
    return "\n".join(lines) + "\n"


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["variants"])
    summaries = [result["variants"][n]["summary"] for n in names]
    rps = [s["requestsPerSecond"] or 0 for s in summaries]
    p50 = [s["latencyMs"]["p50"] or 0 for s in summaries]
    p99 = [s["latencyMs"]["p99"] or 0 for s in summaries]
    fig, (left, right) = plt.subplots(1, 2, figsize=(max(8, 2.4 * len(names)), 4.5))
    positions = range(len(names))
    left.bar(positions, rps, color="#4c72b0")
    left.set_title("throughput (median of rounds)")
    left.set_ylabel("requests/s")
    width = 0.38
    right.bar([p - width / 2 for p in positions], p50, width, label="p50", color="#55a868")
    right.bar([p + width / 2 for p in positions], p99, width, label="p99", color="#c44e52")
    right.set_title("latency")
    right.set_ylabel("ms")
    right.legend(fontsize=8, framealpha=0.8)
    for axis in (left, right):
        axis.set_xticks(list(positions))
        axis.set_xticklabels(names, rotation=20, ha="right", fontsize=8)
    fig.suptitle(f"partnerbill bench {result['scenario']} ({result['startedAt']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results(result: dict[str, Any], results_dir: Path) -> dict[str, Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = result["startedAt"].replace(":", "").replace("-", "")
    base = results_dir / f"{result['scenario']}-{stamp}"
    paths = {
        "json": base.with_suffix(".json"),
        "md": base.with_suffix(".md"),
        "png": base.with_suffix(".png"),
    }
    result["files"] = {kind: str(path) for kind, path in paths.items()}
    paths["json"].write_text(json.dumps(result, indent=2, default=_default) + "\n")
    paths["md"].write_text(markdown(result))
    plot(result, paths["png"])
    return paths


# ---------------------------------------------------------------------------------------------
# Running a scenario


class Scenario(Protocol):
    NAME: str
    DESCRIPTION: str

    async def run(self, bench: Bench) -> list[dict[str, Any]]:
        """Drive the load (recording measurements, touched accounts and ratios); return the
        targets checked as `{"target", "measured", "met"}` (informative, never a failure)."""
        ...


async def _new_tenant(engine: AsyncEngine, scenario: str) -> tuple[tenants.Tenant, str, str]:
    name = f"bench-{scenario}-{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
    async with engine.begin() as conn:
        tenant = await tenants.create_tenant(conn, name)
        credentials = await auth.create_client(conn, tenant, "bench")
    return tenant, credentials.client_id, credentials.client_secret


async def _tenant_of_client(engine: AsyncEngine, client_id: str) -> tenants.Tenant:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(tenants_table.c.id, tenants_table.c.number)
                .join(oauth_clients, oauth_clients.c.tenant_id == tenants_table.c.id)
                .where(oauth_clients.c.client_id == client_id)
            )
        ).one_or_none()
    if row is None:
        raise SystemExit(
            f"client {client_id} is not in the database at DATABASE_URL: the harness reads "
            "metrics straight from the server's database, so point DATABASE_URL at it."
        )
    return tenants.Tenant(id=row.id, number=row.number)


@contextlib.contextmanager
def _server(
    config: BenchConfig, database_url: str
) -> Iterator[tuple[str, Callable[[], list[int]]]]:
    if config.url is not None:
        url = check_loopback(config.url)
        port = urlsplit(url).port or 80
        yield url, lambda: listening_pids(port)
        return
    workers = config.api_workers or get_settings().api_workers
    server = LiveServer(database_url, workers)
    console.print(f"starting the server: uvicorn --workers {workers} + job worker on {server.url}")
    try:
        server.start()
        yield server.url, server.pids
    finally:
        server.stop()


def _postgres_version(database_url: str) -> str:
    """The server's version, and whether it runs autovacuum: without it no table of a fresh
    database gets statistics, and plans over tables grown from empty can scan whole tenants."""
    import psycopg

    with psycopg.connect(db.libpq_url(database_url)) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'), current_setting('autovacuum')"
        ).fetchone()
    return f"{row[0]} (autovacuum {row[1]})" if row else "?"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(config: BenchConfig, scenario: Scenario, command: str) -> dict[str, Any]:
    """Run one scenario end to end; returns the result (also written to files)."""
    if config.client_id and not config.client_secret:
        raise SystemExit("--client-id needs --client-secret")
    database_url = db.resolve_database_url()  # DATABASE_URL, else the embedded server
    if config.url is None:
        migrate.upgrade(database_url)
    started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # SIGTERM and SIGHUP end the run like Ctrl-C does, so the server processes are stopped too.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    with _server(config, database_url) as (url, pids):
        result = asyncio.run(_run_async(config, scenario, url, pids, database_url))
    result = {
        "scenario": config.scenario,
        "startedAt": started_at,
        "finishedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command,
        "config": {
            "clients": config.clients,
            "seconds": config.seconds,
            "rounds": config.rounds,
            "tiny": config.tiny,
            "url": config.url,
            "serverStartedByHarness": config.url is None,
            "apiWorkers": (config.api_workers or get_settings().api_workers)
            if config.url is None
            else None,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "postgres": _postgres_version(database_url),
        },
        **result,
    }
    result["passed"] = result["reconciliation"]["passed"]
    paths = write_results(result, config.results_dir)
    console.print(markdown(result), soft_wrap=True, markup=False, highlight=False)
    console.print(f"results: {paths['json']}  {paths['md']}  {paths['png']}")
    return result


async def _run_async(
    config: BenchConfig,
    scenario: Scenario,
    url: str,
    pids: Callable[[], list[int]],
    database_url: str,
) -> dict[str, Any]:
    engine = db.create_engine(database_url)
    api = Api(url, config.clients)
    try:
        if config.client_id and config.client_secret:
            tenant = await _tenant_of_client(engine, config.client_id)
            client_id, client_secret = config.client_id, config.client_secret
        else:
            tenant, client_id, client_secret = await _new_tenant(engine, config.scenario)
        await api.open(client_id, client_secret)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            bench = Bench(config, api, engine, tenant, pids, progress, (client_id, client_secret))
            targets = await scenario.run(bench)
            reconciliation = await reconcile(bench)
        if bench.reconciliation_is_target:
            targets.append(reconciliation_target(reconciliation))
        summary = summarize(bench, reconciliation)
        return {
            "tenant": {"id": tenant.id, "number": tenant.number},
            **summary,
            "targets": targets,
            "reconciliation": reconciliation,
            "notes": bench.notes,
        }
    finally:
        await api.close()
        await engine.dispose()


def main(
    scenario_name: str,
    *,
    url: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    seconds: float | None = None,
    clients: int | None = None,
    rounds: int | None = None,
    tiny: bool = False,
    results_dir: Path | None = None,
    invoices: int | None = None,
    sizes: str | None = None,
    subscriptions: int | None = None,
    command: str = "",
) -> int:
    """The CLI entry: run the scenario (`all`: every scenario, one after the other, and a
    summary of their targets), return the exit code (1 when a reconciliation failed)."""
    from bench.scenarios import SCENARIOS, get_scenario

    names = list(SCENARIOS) if scenario_name == ALL else [scenario_name]
    results = []
    for name in names:
        scenario = get_scenario(name)
        # `all` runs each scenario at the size its targets name, where no option says otherwise.
        sized = getattr(scenario, "TARGET_SIZES", {}) if scenario_name == ALL and not tiny else {}
        config = BenchConfig.build(
            name,
            clients=clients,
            seconds=seconds or sized.get("seconds"),
            rounds=rounds,
            tiny=tiny,
            url=url,
            client_id=client_id,
            client_secret=client_secret,
            invoices=invoices,
            sizes=sizes,
            subscriptions=subscriptions or sized.get("subscriptions"),
            results_dir=results_dir,
        )
        typed = command or f"partnerbill bench {scenario_name}"
        results.append(run(config, scenario, typed))
    if scenario_name == ALL:
        summary = write_summary(results, results[0]["files"], command or "partnerbill bench all")
        console.print(f"summary: {summary}")
    failed = [r["scenario"] for r in results if not r["passed"]]
    if failed:
        console.print(
            f"[red]reconciliation FAILED ({', '.join(failed)}): metrics differ from recompute[/red]"
        )
        return 1
    return 0


ALL = "all"


def write_summary(results: list[dict[str, Any]], first_files: dict[str, str], command: str) -> Path:
    """`all-<stamp>.md` beside the scenarios' files: every target of every scenario."""
    first = Path(first_files["md"])
    path = first.with_name(f"all-{first.stem.split('-')[-1]}.md")
    lines = [
        f"# partnerbill bench all — {results[0]['startedAt']} to {results[-1]['finishedAt']}",
        "",
        f"`{command}`",
        "",
        "| scenario | target | measured | met | reconciliation | result |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        reconciled = "passed" if result["passed"] else "**FAILED**"
        for target in result["targets"]:
            met = "yes" if target["met"] else "**no**"
            lines.append(
                f"| `{result['scenario']}` | {target['target']} | {target['measured']} | {met} "
                f"| {reconciled} | {Path(result['files']['md']).name} |"
            )
    path.write_text("\n".join(lines) + "\n")
    return path
