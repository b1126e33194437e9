"""Scenario 2, `ceiling`: the rows one `POST /v1/invoices` writes on a partner account — the
invoice (numbered from the tenant's sequence), its item and the metrics change row — inserted by
direct psycopg connections, no HTTP and no app code: the raw PostgreSQL ceiling for that work on
this machine. Measured against the API doing the same (one hot partner account, same clients),
interleaved in the same run; ratio API/ceiling per round.

The ceiling is one statement per invoice (data-modifying CTEs: one round trip, autocommit),
prepared by psycopg after its first executions, on as many connections as clients, all in the
harness process. The API figure comes from scenario 1a's load on an account of its own.

Target: API/ceiling >= 0.35.
"""

import statistics
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg

from bench.harness import Bench, Operation
from bench.scenarios.hot_account import hot_partner_account, invoices_to, warm_up
from partnerbill.core import db
from partnerbill.core.ids import new_id
from partnerbill.core.tenants import sequence_name

NAME = "ceiling"
DESCRIPTION = "API invoices/s vs the same rows inserted by direct psycopg connections"

API, CEILING = "api-partner-hot", "ceiling-psycopg"

INSERT_INVOICE = """
WITH invoice AS (
    INSERT INTO invoices (tenant_id, id, invoice_number, account_id, status, source_type,
                          currency, invoice_date, due_date, payment_term, amount, balance,
                          posted_date)
    VALUES (%(tenant)s, %(id)s, 'INV' || lpad(nextval(%(sequence)s::regclass)::text, 8, '0'),
            %(account)s, 'Posted', 'Standalone', 'USD', %(day)s, %(day)s, 'Due Upon Receipt',
            %(amount)s, %(amount)s, now())
    RETURNING id
), item AS (
    INSERT INTO invoice_items (tenant_id, id, invoice_id, line_number, charge_name, quantity,
                               unit_price, amount, balance, service_start_date, service_end_date)
    SELECT %(tenant)s, %(item)s, invoice.id, 1, 'bench', 1, %(amount)s, %(amount)s, %(amount)s,
           %(day)s, %(day)s
    FROM invoice
)
INSERT INTO metrics_changes (tenant_id, account_id, total_invoice_balance, posted_invoice_date,
                             recompute)
VALUES (%(tenant)s, %(account)s, %(amount)s, %(day)s, false)
"""


def direct_inserts(
    bench: Bench, connections: list[psycopg.AsyncConnection[Any]], account_id: str
) -> Operation:
    sequence = sequence_name(bench.tenant, "invoice_number")

    async def run(client: int, i: int) -> tuple[bool, int, str | None]:
        params = {
            "tenant": bench.tenant.id,
            "id": new_id(),
            "item": new_id(),
            "sequence": sequence,
            "account": account_id,
            "day": date(2026, 3, 1 + i % 28),
            "amount": Decimal(f"{1 + i % 97}.{i % 100:02d}"),
        }
        try:
            await connections[client].execute(INSERT_INVOICE, params)
        except psycopg.Error as exc:
            return False, 0, f"sqlstate:{exc.sqlstate or type(exc).__name__}"
        return True, 1, None

    return run


async def run(bench: Bench) -> list[dict[str, Any]]:
    clients = bench.config.clients
    api_account = await hot_partner_account(
        bench, API, f"{clients} HTTP clients, POST /v1/invoices, one partner account"
    )
    created = await bench.api.create_account(f"Bench {CEILING}", True)
    bench.describe(
        CEILING,
        f"{clients} psycopg connections, one INSERT ... CTE per invoice (invoice + item + "
        "change row), one partner account",
    )
    bench.touch(CEILING, created["accountNumber"])
    url = db.libpq_url(bench.database_url)
    connections = [
        await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(clients)
    ]
    try:
        operations = {
            API: invoices_to(bench, api_account),
            CEILING: direct_inserts(bench, connections, created["accountId"]),
        }
        await warm_up(bench, operations[API], API)
        await warm_up(bench, operations[CEILING], CEILING)
        order = [API, CEILING]
        for round_number in range(bench.config.rounds):
            rates: dict[str, float] = {}
            for variant in order if round_number % 2 == 0 else order[::-1]:
                (m,) = await bench.load([(variant, operations[variant], clients)], round_number)
                rates[variant] = m.ok / m.seconds
            bench.ratio(
                "api/ceiling",
                rates[API] / rates[CEILING] if rates[CEILING] else 0.0,
                "invoices/s, API / direct psycopg",
            )
    finally:
        for conn in connections:
            await conn.close()
    ratio = statistics.median(bench.ratios["api/ceiling"])
    return [
        {
            "target": "API/ceiling >= 0.35 (median of rounds)",
            "measured": round(ratio, 3),
            "met": ratio >= 0.35,
        }
    ]
