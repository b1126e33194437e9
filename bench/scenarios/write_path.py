"""Scenario 12, `write-path`: the choices of the partner-account write path measured in one run
— the ASGI server (uvicorn, granian) and group commit (`PARTNERBILL_GROUP_COMMIT`, on or off),
two by two — against the database's ceiling (scenario 2's direct psycopg inserts). Each variant
runs scenario 1a's load (clients posting single invoices to one partner account of its own) on
a server of its own, started for the run on the same database (API processes only; the run's
server does the jobs); variants interleaved and rotated, several rounds. Ratios per round:
each variant over the ceiling, group commit on over off per server, granian over uvicorn.

Target: the default configuration (what `serve` runs) is within 5% of the fastest variant:
the defaults are what won.
"""

import contextlib
import statistics
from typing import Any

import psycopg

from bench.harness import ASGI_SERVERS, Api, Bench, Operation, http_operation, invoice_body
from bench.scenarios.ceiling import direct_inserts
from bench.scenarios.hot_account import warm_up
from partnerbill.core import db

NAME = "write-path"
DESCRIPTION = "uvicorn vs granian, group commit on vs off, against the psycopg ceiling"

CEILING = "ceiling-psycopg"
DEFAULT = "uvicorn-group"
MODES = {"group": "true", "each": "false"}
WITHIN_BEST = 0.95


def variant_name(asgi_server: str, mode: str) -> str:
    return f"{asgi_server}-{mode}"


def invoices_on(api: Api, number: str) -> Operation:
    return http_operation(api, "POST", lambda client, i: ("/v1/invoices", invoice_body(number, i)))


async def run(bench: Bench) -> list[dict[str, Any]]:
    clients = bench.config.clients
    operations: dict[str, Operation] = {}
    async with contextlib.AsyncExitStack() as stack:
        for asgi_server in ASGI_SERVERS:
            for mode, setting in MODES.items():
                variant = variant_name(asgi_server, mode)
                api = await stack.enter_async_context(
                    bench.other_server(asgi_server, {"PARTNERBILL_GROUP_COMMIT": setting})
                )
                number = (await api.create_account(f"Bench {variant}", True))["accountNumber"]
                bench.describe(
                    variant,
                    f"{clients} HTTP clients, POST /v1/invoices, one partner account; "
                    f"{asgi_server}, group commit {'on' if setting == 'true' else 'off'}",
                )
                bench.touch(variant, number)
                operations[variant] = invoices_on(api, number)
        created = await bench.api.create_account(f"Bench {CEILING}", True)
        bench.describe(
            CEILING, f"{clients} psycopg connections, one INSERT ... CTE per invoice (scenario 2)"
        )
        bench.touch(CEILING, created["accountNumber"])
        url = db.libpq_url(bench.database_url)
        connections = [
            await stack.enter_async_context(
                await psycopg.AsyncConnection.connect(url, autocommit=True)
            )
            for _ in range(clients)
        ]
        operations[CEILING] = direct_inserts(bench, connections, created["accountId"])
        for variant, operation in operations.items():
            await warm_up(bench, operation, variant)
        await _rounds(bench, operations)
    return _targets(bench, list(operations))


async def _rounds(bench: Bench, operations: dict[str, Operation]) -> None:
    order = list(operations)
    for round_number in range(bench.config.rounds):
        rates: dict[str, float] = {}
        shift = round_number % len(order)
        for variant in order[shift:] + order[:shift]:
            (m,) = await bench.load(
                [(variant, operations[variant], bench.config.clients)], round_number
            )
            rates[variant] = m.ok / m.seconds
        _round_ratios(bench, rates)


def _round_ratios(bench: Bench, rates: dict[str, float]) -> None:
    def ratio(a: str, b: str) -> float:
        return rates[a] / rates[b] if rates[b] else 0.0

    for variant in rates:
        if variant != CEILING:
            bench.ratio(f"{variant}/ceiling", ratio(variant, CEILING), "invoices/s over psycopg")
    for asgi_server in ASGI_SERVERS:
        group, each = (variant_name(asgi_server, mode) for mode in MODES)
        bench.ratio(f"{group}/{each}", ratio(group, each), "group commit on / off")
    for mode in MODES:
        granian, uvicorn = (variant_name(s, mode) for s in ("granian", "uvicorn"))
        bench.ratio(f"{granian}/{uvicorn}", ratio(granian, uvicorn), "granian / uvicorn")


def _targets(bench: Bench, variants: list[str]) -> list[dict[str, Any]]:
    rates = {
        v: statistics.median(m.ok / m.seconds for m in bench.measurements if m.variant == v)
        for v in variants
        if v != CEILING
    }
    best = max(rates, key=lambda v: rates[v])
    share = rates[DEFAULT] / rates[best] if rates[best] else 0.0
    ceiling = statistics.median(bench.ratios[f"{DEFAULT}/ceiling"])
    errors = sum(sum(m.errors.values()) for m in bench.measurements)
    return [
        {
            "target": f"default ({DEFAULT}) >= {WITHIN_BEST:.2f} x the fastest ({best})",
            "measured": round(share, 3),
            "met": share >= WITHIN_BEST,
        },
        {
            "target": f"{DEFAULT}/ceiling >= 0.35 (median of rounds)",
            "measured": round(ceiling, 3),
            "met": ceiling >= 0.35,
        },
        {"target": "zero errors", "measured": errors, "met": errors == 0},
    ]
