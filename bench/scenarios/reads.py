"""Scenario 9, `reads`: `GET /v1/accounts/{key}` latency on a hot partner account while
scenario 1a runs against it (clients posting standalone invoices), against the same reads on an
idle server; interleaved rounds. Readers are a few clients reading back to back.

Target: read p99 <= 20 ms under the load.
"""

from typing import Any

from bench.harness import Bench, http_operation, latency_json
from bench.scenarios.hot_account import hot_partner_account, invoices_to, warm_up

NAME = "reads"
DESCRIPTION = "GET /v1/accounts/{key} p99 while one hot partner account takes invoices"

WRITES, READS_LOADED, READS_IDLE = "writes-partner-hot", "reads-under-load", "reads-idle"
READERS = 4
P99_TARGET_MS = 20.0


async def run(bench: Bench) -> list[dict[str, Any]]:
    clients = bench.config.clients
    readers = 1 if bench.config.tiny else READERS
    hot = await hot_partner_account(
        bench, WRITES, f"{clients} clients posting invoices to one partner account (1a)"
    )
    bench.describe(READS_LOADED, f"{readers} clients reading that account during the writes")
    bench.describe(READS_IDLE, f"{readers} clients reading that account, no writes")
    write = invoices_to(bench, hot)
    read = http_operation(bench.api, "GET", lambda client, i: (f"/v1/accounts/{hot[0]}", None), 1)
    await warm_up(bench, write, WRITES)
    for round_number in range(bench.config.rounds):
        loaded_first = round_number % 2 == 0
        if not loaded_first:
            await bench.load([(READS_IDLE, read, readers)], round_number)
        _, loaded = await bench.load(
            [(WRITES, write, clients), (READS_LOADED, read, readers)], round_number
        )
        if loaded_first:
            (idle,) = await bench.load([(READS_IDLE, read, readers)], round_number)
        else:
            idle = next(
                m for m in bench.measurements if m.variant == READS_IDLE and m.round == round_number
            )
        loaded_p99 = latency_json(sorted(loaded.latencies))["p99"] or 0.0
        idle_p99 = latency_json(sorted(idle.latencies))["p99"] or 0.0
        bench.ratio(
            "read p99 loaded/idle",
            loaded_p99 / idle_p99 if idle_p99 else 0.0,
            "GET /v1/accounts/{key} p99 during 1a / on an idle server",
        )
    pooled = sorted(x for m in bench.measurements if m.variant == READS_LOADED for x in m.latencies)
    p99 = latency_json(pooled)["p99"]
    return [
        {
            "target": f"read p99 under load <= {P99_TARGET_MS:.0f} ms",
            "measured": p99,
            "met": p99 is not None and p99 <= P99_TARGET_MS,
        }
    ]
