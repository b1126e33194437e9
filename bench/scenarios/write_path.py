"""Scenario 12, `write-path`: the choices of the partner-account write path measured in one run
— the ASGI server (uvicorn, granian) and group commit (`PARTNERBILL_GROUP_COMMIT`, on or off),
two by two — against the database's ceiling (scenario 2's direct psycopg inserts). Each variant
runs scenario 1a's load (clients posting single invoices to one partner account of its own) on
a server of its own, started for its turn on the same database (API processes only; the run's
server does the jobs) and warmed up; variants interleaved and rotated, several rounds. Ratios
per round: each variant over the ceiling, group commit on over off per server, granian over
uvicorn.

Target: the default configuration (what `serve` runs) is within 5% of the fastest variant:
the defaults are what won.
"""

import contextlib
import statistics
from collections.abc import AsyncIterator
from typing import Any

import psycopg

from bench.harness import ASGI_SERVERS, Bench, Operation
from bench.scenarios.ceiling import direct_inserts
from bench.scenarios.hot_account import invoices_to, warm_up
from partnerbill.core import db

NAME = "write-path"
DESCRIPTION = "uvicorn vs granian, group commit on vs off, against the psycopg ceiling"

CEILING = "ceiling-psycopg"
DEFAULT = "uvicorn-group"
MODES = {"group": "true", "each": "false"}
WITHIN_BEST = 0.95


def variant_name(asgi_server: str, mode: str) -> str:
    return f"{asgi_server}-{mode}"


async def run(bench: Bench) -> list[dict[str, Any]]:
    clients = bench.config.clients
    accounts: dict[str, str] = {}
    for asgi_server in ASGI_SERVERS:
        for mode, setting in MODES.items():
            variant = variant_name(asgi_server, mode)
            accounts[variant] = (await bench.api.create_account(f"Bench {variant}", True))[
                "accountNumber"
            ]
            bench.describe(
                variant,
                f"{clients} HTTP clients, POST /v1/invoices, one partner account; "
                f"{asgi_server}, group commit {'on' if setting == 'true' else 'off'}",
            )
            bench.touch(variant, accounts[variant])
    created = await bench.api.create_account(f"Bench {CEILING}", True)
    bench.describe(
        CEILING, f"{clients} psycopg connections, one INSERT ... CTE per invoice (scenario 2)"
    )
    bench.touch(CEILING, created["accountNumber"])
    order = [*accounts, CEILING]
    for round_number in range(bench.config.rounds):
        rates: dict[str, float] = {}
        shift = round_number % len(order)
        for variant in order[shift:] + order[:shift]:
            # One compared server at a time: their pools together would exceed the database's
            # connection limit.
            async with _load_for(bench, variant, accounts, created["accountId"]) as operation:
                await warm_up(bench, operation, variant)
                (m,) = await bench.load([(variant, operation, clients)], round_number)
            rates[variant] = m.ok / m.seconds
        _round_ratios(bench, rates)
    return _targets(bench, order)


@contextlib.asynccontextmanager
async def _load_for(
    bench: Bench, variant: str, accounts: dict[str, str], ceiling_account_id: str
) -> AsyncIterator[Operation]:
    if variant == CEILING:
        url = db.libpq_url(bench.database_url)
        async with contextlib.AsyncExitStack() as stack:
            connections = [
                await stack.enter_async_context(
                    await psycopg.AsyncConnection.connect(url, autocommit=True)
                )
                for _ in range(bench.config.clients)
            ]
            yield direct_inserts(bench, connections, ceiling_account_id)
        return
    asgi_server, mode = variant.split("-")
    setting = {"PARTNERBILL_GROUP_COMMIT": MODES[mode]}
    async with bench.other_server(asgi_server, setting) as api:
        yield invoices_to(bench, [accounts[variant]], api)


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
