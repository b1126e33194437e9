"""Account reads before and after a refresh folds a backlog of 1M pending changes.

Works on PostgreSQL directly (no server): creates a database of its own on the server of
`DATABASE_URL`, migrates it, makes a tenant with one partner account (a few posted invoices) and
`--neighbours` other partner accounts with `--neighbour-changes` pending changes each (the change
log is not one account's alone), then seeds `--changes`
change rows for the hot account in one `INSERT ... SELECT generate_series`. It times the account
read (`GET /v1/accounts/{key}`'s query, `--reads` times in a row, one connection) with no
backlog, with the backlog pending, and after the scheduler's refresh folded it; then the same
again with the fold as one DELETE and no vacuum (the old refresh), for comparison. The database
is dropped at the end.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python -m bench.refresh_backlog --changes 1000000
"""

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from partnerbill.accounts import service as accounts
from partnerbill.accounts.schemas import CreateAccountRequest
from partnerbill.billing import creation as billing
from partnerbill.billing.schemas import CreateInvoiceRequest
from partnerbill.core import db, migrate
from partnerbill.core.tenants import Tenant, create_tenant
from partnerbill.metrics import refresh as metric_refresh
from partnerbill.metrics import service as metrics
from partnerbill.metrics.tasks import refresh_partner_account

# Change rows per INSERT: one statement for a million rows would hold its whole WAL at once.
SEED_ROWS_PER_STATEMENT = 250_000

# Rows with deltas (of nothing: the metrics stay exact), as partner writes log them.
_SEED = text(
    "INSERT INTO metrics_changes (tenant_id, account_id, recompute) "
    "SELECT :tenant_id, :account_id, false FROM generate_series(1, :rows)"
)


async def seed_changes(engine: AsyncEngine, tenant: Tenant, account_id: str, changes: int) -> None:
    """`changes` pending change rows for the account, as that many partner writes would leave
    (each with a zero delta, so the metrics stay what the documents say)."""
    for start in range(0, changes, SEED_ROWS_PER_STATEMENT):
        rows = min(SEED_ROWS_PER_STATEMENT, changes - start)
        async with engine.begin() as conn:
            await conn.execute(
                _SEED, {"tenant_id": tenant.id, "account_id": account_id, "rows": rows}
            )
    async with engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("ANALYZE metrics_changes"))


def read_statement(tenant: Tenant, account_id: str) -> str:
    """The account read's metrics query (with the pending-count subquery), as SQL text."""
    statement = metrics.READ_METRICS.params(tenant_id=tenant.id, account_id=account_id)
    return str(
        statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    )


async def read_plan(conn: AsyncConnection, tenant: Tenant, account_id: str) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of the account read, as PostgreSQL's JSON plan."""
    plan = await conn.scalar(
        text(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {read_statement(tenant, account_id)}")
    )
    assert isinstance(plan, list)
    result: dict[str, Any] = plan[0]
    return result


def change_log_scans(node: dict[str, Any]) -> list[dict[str, Any]]:
    """Every plan node that reads `metrics_changes`."""
    found = [node] if node.get("Relation Name") == "metrics_changes" else []
    for child in node.get("Plans", []):
        found.extend(change_log_scans(child))
    return found


async def new_partner_account(conn: AsyncConnection, tenant: Tenant, name: str) -> str:
    request = CreateAccountRequest.model_validate(
        {
            "name": name,
            "currency": "USD",
            "billCycleDay": 1,
            "billToContact": {"firstName": "Bench", "lastName": "Mark"},
            "partnerAccount": True,
        }
    )
    return str((await accounts.create_account(conn, tenant, request))["accountId"])


async def post_invoices(conn: AsyncConnection, tenant: Tenant, account_id: str, count: int) -> None:
    requests = [
        CreateInvoiceRequest.model_validate(
            {
                "accountId": account_id,
                "invoiceDate": date(2026, 11, 1),
                "status": "Posted",
                "invoiceItems": [
                    {"amount": Decimal("12.34"), "serviceStartDate": date(2026, 11, 1)}
                ],
            }
        )
        for _ in range(count)
    ]
    await billing.create_invoices(conn, tenant, requests, all_or_nothing=True)


async def time_reads(engine: AsyncEngine, tenant: Tenant, account_id: str, reads: int) -> str:
    """p50 / p99 / max of the account read, in ms."""
    took = []
    async with engine.connect() as conn:
        for _ in range(reads):
            started = time.perf_counter()
            async with conn.begin():
                await accounts.get_account(conn, tenant, account_id)
            took.append((time.perf_counter() - started) * 1000)
    took.sort()
    p99 = took[min(len(took) - 1, int(len(took) * 0.99))]
    return f"p50 {statistics.median(took):.2f} ms, p99 {p99:.2f} ms, max {took[-1]:.2f} ms"


async def describe_plan(engine: AsyncEngine, tenant: Tenant, account_id: str) -> str:
    async with engine.connect() as conn:
        plan = await read_plan(conn, tenant, account_id)
    scans = change_log_scans(plan["Plan"])
    kinds = sorted({scan["Node Type"] for scan in scans})
    buffers = sum(
        scan.get("Shared Hit Blocks", 0) + scan.get("Shared Read Blocks", 0) for scan in scans
    )
    took = plan["Execution Time"]
    return f"change log read by {', '.join(kinds)}, {buffers} buffers, query {took:.2f} ms"


async def old_fold(engine: AsyncEngine, tenant: Tenant, account_id: str) -> None:
    """The refresh before chunks and vacuum: one DELETE of every change, dead rows left."""
    async with engine.begin() as conn:
        result = await metric_refresh.fold_changes(conn, tenant, account_id, wait=True, chunk=None)
    assert result is not None and result.result is not None


async def measure(
    engine: AsyncEngine, changes: int, neighbours: int, neighbour_changes: int, reads: int
) -> None:
    async with engine.begin() as conn:
        tenant = await create_tenant(conn, f"backlog-{uuid.uuid4().hex[:8]}")
        hot = await new_partner_account(conn, tenant, "Hot reseller")
        await post_invoices(conn, tenant, hot, 20)
        others = [
            await new_partner_account(conn, tenant, f"Neighbour {i}") for i in range(neighbours)
        ]
        for other in others:
            await post_invoices(conn, tenant, other, 3)
    await refresh_partner_account(tenant, hot, wait=True)
    for other in others:
        await seed_changes(engine, tenant, other, neighbour_changes)

    print(f"account read, no backlog:            {await time_reads(engine, tenant, hot, reads)}")
    for variant in ("chunked fold + vacuum (now)", "one DELETE, no vacuum (before)"):
        started = time.perf_counter()
        await seed_changes(engine, tenant, hot, changes)
        print(f"seeded {changes:,} changes in {time.perf_counter() - started:.1f} s")
        print(
            f"account read, {changes:,} pending:    {await time_reads(engine, tenant, hot, reads)}"
        )
        started = time.perf_counter()
        if variant.startswith("chunked"):
            result = await refresh_partner_account(tenant, hot, wait=True)
            assert result is not None
        else:
            await old_fold(engine, tenant, hot)
        print(f"{variant}: folded in {time.perf_counter() - started:.2f} s")
        print(
            f"account read, after the fold:        {await time_reads(engine, tenant, hot, reads)}"
        )
        print(f"  {await describe_plan(engine, tenant, hot)}")
        async with engine.connect() as conn:
            stored = await metrics.read_metrics(conn, tenant, hot)
            exact = await metrics.recompute(conn, tenant, hot)
        assert stored.metrics == exact and stored.pending_changes == 0, (stored, exact)
        print(f"  metrics equal recompute (totalInvoiceBalance {exact.total_invoice_balance})")
        async with db.autocommit() as conn:
            await metric_refresh.vacuum_change_log(conn)  # the next variant starts clean


async def main(changes: int, neighbours: int, neighbour_changes: int, reads: int) -> None:
    server = make_url(db.sqlalchemy_url(db.resolve_database_url()))
    name = f"partnerbill_backlog_{uuid.uuid4().hex[:8]}"
    admin = db.libpq_url(server.set(database="postgres").render_as_string(False))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = server.set(database=name).render_as_string(hide_password=False)
        migrate.upgrade(url)
        engine = db.create_engine(url)
        db.set_engine(engine)
        try:
            await measure(engine, changes, neighbours, neighbour_changes, reads)
        finally:
            await engine.dispose()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=1_000_000)
    parser.add_argument("--neighbours", type=int, default=50)
    parser.add_argument("--neighbour-changes", type=int, default=500)
    parser.add_argument("--reads", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main(args.changes, args.neighbours, args.neighbour_changes, args.reads))
