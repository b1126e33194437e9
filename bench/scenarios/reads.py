"""Scenario 9, `reads`: `GET /v1/accounts/{key}` latency on a hot partner account while
scenario 1a runs against it (clients posting standalone invoices), against the same reads on an
idle server; and the same loaded pair on a second server whose write admission is the fixed
limit (`PARTNERBILL_WRITE_ADMISSION=fixed`) instead of the default adaptive one, in the same
run. Interleaved rounds. Readers are a few clients reading back to back.

Target: read p99 <= 20 ms under the load, with the default admission.
"""

from typing import Any

from bench.harness import Api, Bench, Operation, http_operation, latency_json
from bench.scenarios.hot_account import hot_partner_account, invoices_to, warm_up

NAME = "reads"
DESCRIPTION = "GET /v1/accounts/{key} p99 while one hot partner account takes invoices"

WRITES, READS_LOADED, READS_IDLE = "writes-partner-hot", "reads-under-load", "reads-idle"
FIXED_WRITES, FIXED_READS = "writes-fixed-admission", "reads-under-load-fixed-admission"
READERS = 4
P99_TARGET_MS = 20.0


def reads_of(api: Api, number: str) -> Operation:
    return http_operation(api, "GET", lambda client, i: (f"/v1/accounts/{number}", None))


def pooled_p99(bench: Bench, variant: str) -> float | None:
    return latency_json(
        sorted(x for m in bench.measurements if m.variant == variant for x in m.latencies)
    )["p99"]


async def run(bench: Bench) -> list[dict[str, Any]]:
    clients = bench.config.clients
    readers = 1 if bench.config.tiny else READERS
    (hot,) = await hot_partner_account(
        bench, WRITES, f"{clients} clients posting invoices to one partner account (1a)"
    )
    bench.describe(READS_LOADED, f"{readers} clients reading that account during the writes")
    bench.describe(READS_IDLE, f"{readers} clients reading that account, no writes")
    (fixed_hot,) = await hot_partner_account(
        bench, FIXED_WRITES, f"as {WRITES}, on a second server whose write admission is fixed"
    )
    bench.describe(FIXED_READS, f"as {READS_LOADED}, on that second server")
    async with bench.other_server("uvicorn", {"PARTNERBILL_WRITE_ADMISSION": "fixed"}) as fixed:
        loads = {
            READS_LOADED: [
                (WRITES, invoices_to(bench, [hot]), clients),
                (READS_LOADED, reads_of(bench.api, hot), readers),
            ],
            FIXED_READS: [
                (FIXED_WRITES, invoices_to(bench, [fixed_hot], fixed), clients),
                (FIXED_READS, reads_of(fixed, fixed_hot), readers),
            ],
            READS_IDLE: [(READS_IDLE, reads_of(bench.api, hot), readers)],
        }
        for variants in loads.values():
            await warm_up(bench, variants[0][1], variants[0][0])
        order = list(loads)
        for round_number in range(bench.config.rounds):
            shift = round_number % len(order)
            p99: dict[str, float] = {}
            for name in order[shift:] + order[:shift]:
                measured = await bench.load(loads[name], round_number)
                p99[name] = latency_json(sorted(measured[-1].latencies))["p99"] or 0.0
            for loaded in (READS_LOADED, FIXED_READS):
                bench.ratio(
                    f"{loaded}/idle p99",
                    p99[loaded] / p99[READS_IDLE] if p99[READS_IDLE] else 0.0,
                    "GET /v1/accounts/{key} p99 during 1a / on an idle server",
                )
    return _targets(bench)


def _targets(bench: Bench) -> list[dict[str, Any]]:
    adaptive, fixed = pooled_p99(bench, READS_LOADED), pooled_p99(bench, FIXED_READS)
    rates = {
        v: sum(m.ok for m in bench.measurements if m.variant == v)
        / (sum(m.seconds for m in bench.measurements if m.variant == v) or 1.0)
        for v in (WRITES, FIXED_WRITES)
    }
    bench.notes.append(
        f"Admission compared: read p99 under load {adaptive} ms adaptive, {fixed} ms fixed; "
        f"writes {rates[WRITES]:.1f}/s adaptive, {rates[FIXED_WRITES]:.1f}/s fixed."
    )
    return [
        {
            "target": f"read p99 under load <= {P99_TARGET_MS:.0f} ms (adaptive admission)",
            "measured": adaptive,
            "met": adaptive is not None and adaptive <= P99_TARGET_MS,
        }
    ]
