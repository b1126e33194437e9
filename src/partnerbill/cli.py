"""The `partnerbill` command: serve, worker, migrate, tenants and clients, settings, refresh."""

import asyncio
import json
import os
import shutil
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import httpx
import typer
from fastapi import FastAPI
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core import auth, db, migrate, tenants
from partnerbill.core.errors import ZuoraError
from partnerbill.core.logging import configure_logging, process_started, process_stopped
from partnerbill.core.processes import SUPERVISOR_PID_ENV, Supervised, die_with_supervisor
from partnerbill.core.tables import tenants as tenants_table
from partnerbill.settings import Settings, get_settings

app = typer.Typer(help="partnerbill: Zuora-compatible billing for hot partner accounts.")
tenant_app = typer.Typer(help="Manage tenants.")
client_app = typer.Typer(help="Manage OAuth clients.")
user_app = typer.Typer(help="Manage web UI users.")
app.add_typer(tenant_app, name="tenant")
app.add_typer(client_app, name="client")
app.add_typer(user_app, name="user")
console = Console()
T = TypeVar("T")

DEMO_TENANT = "demo"
DEMO_ADMIN_EMAIL = "admin@demo.example.com"
TenantOption = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        help="Tenant name (default: the demo tenant saved by the first `serve`, else the only "
        "tenant).",
    ),
]
# `partnerbill bench` names its tenants so; they never stand in for the demo tenant.
BENCH_TENANT_PREFIX = "bench-"


def _default_tenant(given: str | None) -> str | None:
    """The tenant a command works on: the one given, else the demo tenant the first start
    saved in `var/demo-client.json` (other tenants, a benchmark's included, do not change that
    default), else none (then the only tenant, see `tenants.find_tenant`)."""
    if given is not None:
        return given
    saved = get_settings().var_dir / "demo-client.json"
    if not saved.exists():
        return None
    return str(json.loads(saved.read_text()).get("tenant", DEMO_TENANT))


def _run(work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run `work` in one transaction on the configured (or embedded) database (the jobs it may
    defer registered)."""
    from partnerbill import tasks

    tasks.register()

    async def main() -> T:
        engine = db.create_engine(db.resolve_database_url())
        db.set_engine(engine)
        try:
            async with engine.begin() as conn:
                return await work(conn)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except ZuoraError as error:
        console.print(f"[red]{error.reasons[0].message}[/red]")
        raise typer.Exit(1) from error


@app.command("migrate")
def migrate_command() -> None:
    """Apply database migrations (also done by `serve`)."""
    migrate.upgrade(db.resolve_database_url())
    console.print("Database is up to date.")


@tenant_app.command("create")
def tenant_create(name: str) -> None:
    """Create a tenant."""
    tenant = _run(lambda conn: tenants.create_tenant(conn, name))
    console.print(f"Tenant [bold]{name}[/bold] created: id {tenant.id}, number {tenant.number}.")


@tenant_app.command("list")
def tenant_list() -> None:
    """List the tenants: name, id, number."""
    table = Table("name", "id", "number")
    for name, tenant_id, number in _run(tenants.list_tenants):
        table.add_row(name, tenant_id, str(number))
    console.print(table)


@client_app.command("list")
def client_list(tenant: TenantOption = None) -> None:
    """List OAuth clients (of the demo tenant by default): client id, tenant, label, created."""

    async def work(conn: AsyncConnection) -> list[tuple[str, str, str, str]]:
        found = await tenants.find_tenant(conn, _default_tenant(tenant))
        return [
            (client_id, tenant_name, label, f"{created:%Y-%m-%d %H:%M:%S}")
            for client_id, tenant_name, label, created in await auth.list_clients(conn, found)
        ]

    table = Table("client_id", "tenant", "name", "created")
    for row in _run(work):
        table.add_row(*row)
    console.print(table)


@client_app.command("revoke")
def client_revoke(client_id: str) -> None:
    """Delete an OAuth client: it gets no new token. Tokens already issued stay valid until they
    expire (at most an hour)."""
    if not _run(lambda conn: auth.revoke_client(conn, client_id)):
        console.print(f"[red]No OAuth client {client_id}.[/red]")
        raise typer.Exit(1)
    console.print(f"Client {client_id} revoked: no new tokens; those issued expire within an hour.")


@client_app.command("create")
def client_create(
    tenant: TenantOption = None,
    name: Annotated[str, typer.Option(help="A label for the client.")] = "api",
) -> None:
    """Create an OAuth client; prints its 36-character client id and its secret (shown once)."""

    async def work(conn: AsyncConnection) -> auth.ClientCredentials:
        return await auth.create_client(
            conn, await tenants.find_tenant(conn, _default_tenant(tenant)), name
        )

    credentials = _run(work)
    console.print(f"client_id:     {credentials.client_id}")
    console.print(f"client_secret: {credentials.client_secret}")


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="The e-mail the user signs in with.")],
    tenant: TenantOption = None,
    admin: Annotated[bool, typer.Option(help="May manage features and billing settings.")] = False,
    password: Annotated[
        str | None, typer.Option(help="At least 12 characters (default: one is generated).")
    ] = None,
) -> None:
    """Create a web UI user; prints the password when it was generated (shown once)."""
    from partnerbill.users.service import CreatedUser, Role, create_user

    async def work(conn: AsyncConnection) -> CreatedUser:
        found = await tenants.find_tenant(conn, _default_tenant(tenant))
        return await create_user(conn, found, email, Role.ADMIN if admin else Role.USER, password)

    created = _run(work)
    role = "admin" if admin else "user"
    console.print(f"UI {role} [bold]{created.email}[/bold] created.")
    if created.generated:
        console.print(f"password: {created.password}")


@app.command("settings")
def settings_command(
    tenant: TenantOption = None,
    refresh_interval_seconds: Annotated[
        int | None, typer.Option(help="Metrics refresh interval of partner accounts.")
    ] = None,
    lock_wait_ms: Annotated[
        int | None, typer.Option(help="How long a non-partner write waits for the metrics lock.")
    ] = None,
    invoice_batch_limit: Annotated[
        int | None, typer.Option(help="Invoices per POST /v1/invoices/batch (1 to 1,000).")
    ] = None,
    order_sync_limit: Annotated[
        int | None, typer.Option(help="Subscriptions and actions per synchronous order.")
    ] = None,
    order_async_limit: Annotated[
        int | None, typer.Option(help="Subscriptions and actions per asynchronous order.")
    ] = None,
    reseller_account: Annotated[
        bool | None,
        typer.Option(
            "--reseller-account/--no-reseller-account",
            help="Enable or disable the Reseller Account feature (partnerAccount); disabling is "
            "refused while any account is a partner account.",
        ),
    ] = None,
) -> None:
    """Show the tenant's settings, changing those given."""

    async def work(conn: AsyncConnection) -> tenants.TenantSettings:
        found = await tenants.find_tenant(conn, _default_tenant(tenant))
        return await tenants.update_settings(
            conn,
            found,
            metrics_refresh_interval_seconds=refresh_interval_seconds,
            lock_wait_ms=lock_wait_ms,
            invoice_batch_limit=invoice_batch_limit,
            order_sync_limit=order_sync_limit,
            order_async_limit=order_async_limit,
            reseller_account_enabled=reseller_account,
        )

    table = Table("setting", "value")
    for key, value in _run(work).as_json().items():
        table.add_row(key, str(value))
    console.print(table)


@app.command("refresh-metrics")
def refresh_metrics(
    account: Annotated[str, typer.Option(help="Account id or number.")],
    tenant: TenantOption = None,
) -> None:
    """Refresh one account's metrics now, folding its pending changes."""
    from partnerbill.accounts.service import refresh_metrics as refresh

    async def work(conn: AsyncConnection) -> dict[str, object]:
        return await refresh(
            conn, await tenants.find_tenant(conn, _default_tenant(tenant)), account
        )

    console.print_json(json.dumps(_run(work)))


@app.command("worker")
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Jobs run at once.")] = None,
    queues: Annotated[
        str | None, typer.Option(help="Comma-separated queues to run (default: all).")
    ] = None,
    niceness: Annotated[int, typer.Option(min=0, max=19, help="Lower CPU priority by N.")] = 0,
    idle_cpu: Annotated[
        bool,
        typer.Option(
            help="Run only when no other task wants a CPU (Linux SCHED_IDLE; else niceness 19)."
        ),
    ] = False,
) -> None:
    """Run the job worker: the metrics refresh loop, stalled-job recovery, async orders, bill
    runs, query and export jobs. It reconnects when the database goes away; it exits on SIGTERM
    or Ctrl-C (0), or on an error it cannot recover from (non-zero)."""
    from partnerbill import tasks
    from partnerbill.core.jobs import run_worker
    from partnerbill.metrics.tasks import refresh_loop

    tasks.register()

    die_with_supervisor()
    settings = get_settings()
    configure_logging(settings.log_level)
    url = db.resolve_database_url(settings)
    chosen = [queue.strip() for queue in queues.split(",") if queue.strip()] if queues else None
    process_started("worker", queues=chosen or "all")
    # The worker of the metrics queue also runs the refresh loop.
    loops = [refresh_loop] if chosen is None or "metrics" in chosen else []
    try:
        asyncio.run(
            run_worker(
                url, concurrency or settings.job_concurrency, chosen, niceness, idle_cpu, loops
            )
        )
    finally:
        process_stopped("worker")


def worker_commands(settings: Settings) -> dict[str, list[str]]:
    """The job workers `serve` (and the benchmark's server) runs: one for the business jobs,
    one for query and export jobs at a lower CPU priority."""
    from partnerbill.core.jobs import EXPORT_QUEUES, QUEUES

    worker = [sys.executable, "-m", "partnerbill.cli", "worker"]
    business = [queue for queue in QUEUES if queue not in EXPORT_QUEUES]
    return {
        "job worker": [*worker, "--queues", ",".join(business)],
        "export worker": [
            *worker,
            "--queues",
            ",".join(EXPORT_QUEUES),
            "--niceness",
            str(settings.export_niceness),
            "--idle-cpu" if settings.export_idle_cpu else "--no-idle-cpu",
        ],
    }


def _kept(saved: Path, created: dict[str, str] | None) -> dict[str, str] | None:
    """Demo credentials just created, written to `saved` (owner-only); else those saved there by
    the first start."""
    if created is not None:
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(created))
        saved.chmod(0o600)
        return created
    return json.loads(saved.read_text()) if saved.exists() else None


def _demo_credentials(var_dir: Path) -> dict[str, str] | None:
    """Create the demo tenant and client on a fresh database (one without tenants, a
    benchmark's aside); return the saved demo client and its tenant's name."""

    async def work(conn: AsyncConnection) -> dict[str, str] | None:
        others = select(tenants_table.c.id).where(
            ~tenants_table.c.name.startswith(BENCH_TENANT_PREFIX)
        )
        if await conn.scalar(others.limit(1)) is not None:
            return None
        tenant = await tenants.create_tenant(conn, DEMO_TENANT)
        credentials = await auth.create_client(conn, tenant, "demo")
        return {
            "tenant": DEMO_TENANT,
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
        }

    return _kept(var_dir / "demo-client.json", _run(work))


def _demo_admin(var_dir: Path) -> dict[str, str] | None:
    """Create the demo tenant's UI admin once (on a database whose demo tenant has no UI user
    yet); return the saved e-mail and password."""
    from partnerbill.tables.users import ui_users
    from partnerbill.users.service import Role, create_user

    async def work(conn: AsyncConnection) -> dict[str, str] | None:
        demo = await conn.scalar(
            select(tenants_table.c.id).where(tenants_table.c.name == DEMO_TENANT)
        )
        if demo is None or await conn.scalar(
            select(ui_users.c.email).where(ui_users.c.tenant_id == demo).limit(1)
        ):
            return None
        tenant = await tenants.find_tenant(conn, DEMO_TENANT)
        created = await create_user(conn, tenant, DEMO_ADMIN_EMAIL, Role.ADMIN)
        return {"email": created.email, "password": created.password}

    return _kept(var_dir / "demo-admin.json", _run(work))


def api_app() -> FastAPI:
    """The app factory `serve` gives uvicorn: an API worker process dies with `serve`."""
    from partnerbill.app import create_app

    die_with_supervisor()
    return create_app()


def _refuse_busy_port(host: str, port: int) -> None:
    """Fail before anything is touched (database, metrics directory, banner) when another
    process listens on the port, e.g. a `serve` already running."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # What uvicorn sets too: a port left in TIME_WAIT by a stopped server is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            console.print(
                f"[red]Cannot listen on {host}:{port}: {error.strerror}. Is partnerbill "
                "already running there? Nothing was started.[/red]"
            )
            raise typer.Exit(1) from error


def _database_in_use(settings: Settings, url: str) -> str:
    """The banner's database line: the embedded data directory, or the server without password."""
    if settings.database_url is None:
        return f"embedded PostgreSQL, data directory {(settings.var_dir / 'pg').resolve()}"
    parsed = make_url(url)
    return f"PostgreSQL {parsed.host or 'local socket'}:{parsed.port or 5432}/{parsed.database}"


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    workers: Annotated[int | None, typer.Option(help="uvicorn worker processes.")] = None,
    job_worker: Annotated[bool, typer.Option(help="Also run the job worker.")] = True,
) -> None:
    """Start the API (and the job worker) on the configured or the embedded PostgreSQL.

    Its children (API workers, job worker) die with it, even on `kill -9`; a job worker that
    exits is started again."""
    import uvicorn

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    _refuse_busy_port(host, port)
    url = db.resolve_database_url(settings)  # starts the embedded server when needed
    migrate.upgrade(url)
    credentials = _demo_credentials(settings.var_dir)
    demo_admin = _demo_admin(settings.var_dir)
    api_workers = workers or settings.api_workers
    metrics_dir = settings.var_dir.resolve() / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    os.environ[SUPERVISOR_PID_ENV] = str(os.getpid())
    supervised = []
    if job_worker:
        for name, command in worker_commands(settings).items():
            supervised.append(Supervised(name, command, console.print))
            supervised[-1].start()
    base_url = f"http://{host}:{port}"
    console.print(f"partnerbill API at [bold]{base_url}[/bold]  (OpenAPI: {base_url}/docs)")
    console.print(f"database: {_database_in_use(settings, url)}")
    console.print(f"stop with Ctrl-C or SIGTERM (kill {os.getpid()}); its workers stop with it")
    if credentials is not None:
        console.print(f"demo tenant:        {credentials.get('tenant', DEMO_TENANT)}")
        console.print(f"demo client_id:     {credentials['client_id']}")
        console.print(f"demo client_secret: {credentials['client_secret']}")
    if demo_admin is not None:
        console.print(f"web UI at {base_url}/ui/sign-in")
        console.print(f"demo UI admin:      {demo_admin['email']}")
        console.print(f"demo UI password:   {demo_admin['password']}")
    # uvicorn re-raises SIGTERM after its graceful shutdown; exiting through Python (not the
    # default handler) runs the `finally` below and stops the embedded PostgreSQL.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        uvicorn.run(
            "partnerbill.cli:api_app",
            factory=True,
            host=host,
            port=port,
            workers=api_workers,
            log_level="warning",
        )
    finally:
        for process in supervised:
            process.stop()


@app.command("demo")
def demo(
    url: Annotated[
        str | None, typer.Option(help="The running server (default: serve's host and port).")
    ] = None,
) -> None:
    """Load a sample reseller into the demo tenant through the HTTP API of a running `serve`
    (it needs the job worker for the bill run): a partner invoice owner, three partner
    subscription owners, a small catalog, orders, a bill run, payments. A second run loads
    nothing and prints the same accounts (delete var/demo-reseller.json for another set)."""
    from partnerbill.demo import DemoError, load_demo

    settings = get_settings()
    saved = settings.var_dir / "demo-client.json"
    if not saved.exists():
        console.print("[red]No demo client: start `partnerbill serve` once first.[/red]")
        raise typer.Exit(1)
    client = json.loads(saved.read_text())
    base_url = url or f"http://{settings.host}:{settings.port}"
    try:
        loaded = load_demo(
            base_url,
            client["client_id"],
            client["client_secret"],
            settings.var_dir / "demo-reseller.json",
        )
    except (DemoError, httpx.HTTPError) as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from error
    tenant = client.get("tenant", DEMO_TENANT)
    if loaded.already_loaded:
        console.print(f"The sample reseller is already loaded in tenant {tenant}.")
    else:
        console.print(f"Sample reseller loaded into tenant {tenant}.")
    console.print(f"reseller (invoice owner):  {loaded.reseller}")
    console.print(f"subscription owners:       {', '.join(loaded.owners)}")
    console.print(f"subscriptions:             {', '.join(loaded.subscriptions)}")
    console.print(f"invoices:                  {', '.join(loaded.invoices)}")
    console.print(f"payments:                  {', '.join(loaded.payments)}")
    console.print(
        f"look at them: {base_url}/ (the web UI, demo admin in var/demo-admin.json), or "
        f'curl -s {base_url}/v1/accounts/{loaded.reseller} -H "Authorization: Bearer $TOKEN"'
    )


CHECKOUT = Path(__file__).resolve().parents[2]
BENCH_SCENARIOS = (
    "hot-account",
    "ceiling",
    "reads",
    "reseller",
    "distributor",
    "migration",
    "owner-transfer",
    "mixed",
    "growth",
    "export",
    "freshness",
    "write-path",
    "all",
)


@app.command("bench")
def bench(
    scenario: Annotated[str, typer.Argument(help=f"One of: {', '.join(BENCH_SCENARIOS)}.")],
    url: Annotated[
        str | None,
        typer.Option(help="A running server on 127.0.0.1 (default: start one for the run)."),
    ] = None,
    client_id: Annotated[
        str | None, typer.Option(help="OAuth client (default: a fresh tenant and client).")
    ] = None,
    client_secret: Annotated[str | None, typer.Option()] = None,
    seconds: Annotated[float | None, typer.Option(help="Seconds per variant (10).")] = None,
    clients: Annotated[int | None, typer.Option(help="Parallel clients (32).")] = None,
    rounds: Annotated[int | None, typer.Option(help="Interleaved rounds (3).")] = None,
    tiny: Annotated[
        bool, typer.Option(help="Smoke sizes: 2 clients, 1 s per variant, 1 round.")
    ] = False,
    results_dir: Annotated[
        Path | None, typer.Option(help="Where results go (default: bench/results).")
    ] = None,
    invoices: Annotated[
        int | None, typer.Option(help="migration: invoices per variant (200,000).")
    ] = None,
    sizes: Annotated[
        str | None, typer.Option(help="growth: account sizes, e.g. 0,10000,100000,200000.")
    ] = None,
    subscriptions: Annotated[
        int | None, typer.Option(min=1, help="reseller: subscriptions ordered (3,000; --tiny: 10).")
    ] = None,
) -> None:
    """Measure a benchmark scenario on a live server; writes JSON, Markdown and a PNG plot.

    Fails (exit 1) when an account's metrics differ from `recompute` after the load.
    """
    if not (CHECKOUT / "bench" / "harness.py").exists():
        console.print("[red]bench runs from a source checkout (bench/ beside src/).[/red]")
        raise typer.Exit(2)
    if str(CHECKOUT) not in sys.path:
        sys.path.insert(0, str(CHECKOUT))
    from bench import harness

    code = harness.main(
        scenario,
        url=url,
        client_id=client_id,
        client_secret=client_secret,
        seconds=seconds,
        clients=clients,
        rounds=rounds,
        tiny=tiny,
        results_dir=results_dir,
        invoices=invoices,
        sizes=sizes,
        subscriptions=subscriptions,
        # The command line as typed, for the result files (a secret given is not written out).
        command=" ".join(
            ["partnerbill", *("***" if arg == client_secret else arg for arg in sys.argv[1:])]
        ),
    )
    raise typer.Exit(code)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
