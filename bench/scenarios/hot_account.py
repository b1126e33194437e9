"""Scenario 1, `hot-account`: clients posting standalone invoices (`POST /v1/invoices`) for a
fixed time — (a) all to one partner account, (b) all to one non-partner account, (c) spread over
as many partner accounts as there are clients. Variants interleaved, several rounds; ratios a/c
and a/b per round, errors of each.

Targets: zero errors for (a) and (c); a/c >= 0.90; a/b reported.
"""

import statistics
from typing import Any

from bench.harness import Api, Bench, Operation, http_operation, invoice_body

NAME = "hot-account"
DESCRIPTION = "standalone invoices: one hot partner account vs one non-partner vs spread out"

A, B, C = "a-partner-hot", "b-nonpartner-hot", "c-partner-spread"
WARMUP_SECONDS = 2.0


def invoices_to(bench: Bench, numbers: list[str], api: Api | None = None) -> Operation:
    """Each client posts single invoices; client k writes to `numbers[k % len(numbers)]`. On
    `api`'s server, else the run's."""
    return http_operation(
        api or bench.api,
        "POST",
        lambda client, i: ("/v1/invoices", invoice_body(numbers[client % len(numbers)], i)),
    )


async def hot_partner_account(bench: Bench, variant: str, description: str) -> list[str]:
    number = (await bench.api.create_account(f"Bench {variant}", True))["accountNumber"]
    bench.describe(variant, description)
    bench.touch(variant, number)
    return [number]


async def warm_up(bench: Bench, operation: Operation, variant: str) -> None:
    """Opens the connections and pools of every layer before anything is measured."""
    await bench.load(
        [(f"warm-up {variant}", operation, bench.config.clients)],
        -1,
        seconds=min(WARMUP_SECONDS, bench.config.seconds),
        record=False,
    )


async def run(bench: Bench) -> list[dict[str, Any]]:
    clients = bench.config.clients
    hot = await hot_partner_account(bench, A, f"{clients} clients, one partner account")
    plain = [(await bench.api.create_account(f"Bench {B}", False))["accountNumber"]]
    bench.describe(B, f"{clients} clients, one non-partner account")
    bench.touch(B, *plain)
    spread = [
        (await bench.api.create_account(f"Bench {C} {k}", True))["accountNumber"]
        for k in range(clients)
    ]
    bench.describe(C, f"{clients} clients, each on its own partner account")
    bench.touch(C, *spread)
    operations = {
        A: invoices_to(bench, hot),
        B: invoices_to(bench, plain),
        C: invoices_to(bench, spread),
    }
    await warm_up(bench, operations[C], C)
    order = [A, B, C]
    for round_number in range(bench.config.rounds):
        rates: dict[str, float] = {}
        # Interleaved, and rotated so no variant always runs first after a pause.
        shift = round_number % len(order)
        for variant in order[shift:] + order[:shift]:
            (m,) = await bench.load([(variant, operations[variant], clients)], round_number)
            rates[variant] = m.ok / m.seconds
        bench.ratio(
            "a/c", rates[A] / rates[C] if rates[C] else 0.0, "invoices/s, hot partner / spread"
        )
        bench.ratio(
            "a/b",
            rates[A] / rates[B] if rates[B] else 0.0,
            "invoices/s, hot partner / hot non-partner",
        )
    return targets(bench)


def targets(bench: Bench) -> list[dict[str, Any]]:
    errors = {
        v: sum(sum(m.errors.values()) for m in bench.measurements if m.variant == v) for v in (A, C)
    }
    ratio = statistics.median(bench.ratios["a/c"])
    return [
        {"target": "(a) zero errors", "measured": errors[A], "met": errors[A] == 0},
        {"target": "(c) zero errors", "measured": errors[C], "met": errors[C] == 0},
        {
            "target": "a/c >= 0.90 (median of rounds)",
            "measured": round(ratio, 3),
            "met": ratio >= 0.90,
        },
    ]
