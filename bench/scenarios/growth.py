"""Scenario 8, `growth`: the latency of one invoice request (`POST /v1/invoices`, one client,
sequential) on accounts of different sizes — 0, 10k, 100k and 200k posted invoices — partner and
non-partner. Every (flag, size) has an account of its own, all seeded first through
`POST /v1/invoices/batch` (500 per call; the tenant's `invoiceBatchLimit` raised meanwhile, then
restored; the partner accounts refreshed afterwards, as their periodic refresh would). Then the
requests go round-robin over all those accounts, `rounds` times, the order rotating: every size
is measured in the same moments and on the same database, so the ratio isolates the size of the
account from the size of the database and from the machine's noise.

Sizes: `--sizes` (comma-separated, e.g. `0,10000,100000`), by default 0, 10k, 100k,
200k; `--tiny`: 0, 200, 500 with 20 requests per account and round.

Then the fold cost: per round, `FOLD_CHANGES` partner writes (single invoices, 16 clients) on
each partner account, then its on-demand refresh, whose `durationMs` (the server's own time for
the fold) is the figure, the sizes in rotating order.

Targets (information only): latency at the largest size within 1.2x of latency at 0, for
both flags (p50; the p99 ratio is reported beside it); folding `FOLD_CHANGES` changes at the
largest size within 1.2x of at 0 and within 10 ms (median of rounds).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import aiohttp

from bench.harness import Bench, Measurement, invoice_body, latency_json
from bench.scenarios.migration import batch_limit, post_batches, refresh

NAME = "growth"
DESCRIPTION = "latency of one invoice request at account sizes 0 .. 200k, partner and non-partner"

DEFAULT_SIZES = (0, 10_000, 100_000, 200_000)
TINY_SIZES = (0, 200, 500)
REQUESTS, TINY_REQUESTS = 200, 20
WARMUP_REQUESTS = 20
SEED_PER_CALL = 500
# The partner account takes parallel writes; the non-partner one serializes on its metrics row,
# so it is seeded by one client (no lock competition to retry).
SEED_CLIENTS = {True: 4, False: 1}
SEED_ATTEMPTS = 3
TARGET_RATIO = 1.2
FLAGS = {"partner": True, "non-partner": False}
FOLD_CHANGES, TINY_FOLD_CHANGES = 1_000, 50
FOLD_CLIENTS = 16
FOLD_MS_TARGET = 10.0


def sizes_of(bench: Bench) -> list[int]:
    configured = bench.config.sizes
    if configured:
        raw = configured.split(",") if isinstance(configured, str) else configured
        sizes = sorted({int(str(size).strip()) for size in raw if str(size).strip()})
        if not sizes or sizes[0] < 0:
            raise SystemExit(f"sizes must be non-negative integers, not {configured!r}")
        return sizes
    return list(TINY_SIZES if bench.config.tiny else DEFAULT_SIZES)


def label(size: int) -> str:
    return f"{size // 1000}k" if size >= 1000 and size % 1000 == 0 else str(size)


def variant(flag: str, size: int) -> str:
    return f"{flag}@{label(size)}"


async def single_invoice(bench: Bench, number: str, m: Measurement) -> None:
    t0 = time.perf_counter()
    try:
        reply = await bench.api.call(
            "POST", "/v1/invoices", invoice_body(number, bench.next_index())
        )
    except (aiohttp.ClientError, TimeoutError) as exc:
        m.record(time.perf_counter() - t0, False, 0, f"exception:{type(exc).__name__}")
        return
    m.record(time.perf_counter() - t0, reply.ok, 1, None if reply.ok else reply.reason)


async def measure(
    bench: Bench, accounts: dict[str, str], round_number: int, requests: int
) -> dict[str, Measurement]:
    """`requests` single invoices per account (variant), one client, round-robin over the
    accounts, the starting account rotating. A measurement's seconds are its own requests' time."""
    ms = {name: Measurement(name, round_number) for name in accounts}
    order = list(accounts)
    task = bench.progress.add_task(f"round {round_number + 1}", total=requests * len(order))
    async with bench.rss.sampling():
        for k in range(requests):  # bounded: `requests` per account
            shift = (k + round_number) % len(order)
            for name in order[shift:] + order[:shift]:
                await single_invoice(bench, accounts[name], ms[name])
                bench.progress.advance(task)
    bench.progress.update(task, visible=False)
    for m in ms.values():
        m.seconds = sum(m.latencies)
        m.rss = bench.rss.as_json()
        bench.measurements.append(m)
    return ms


async def seed(
    bench: Bench, flag: str, number: str, wanted: int, size: int
) -> tuple[int, float, list[str]]:
    """`wanted` more posted invoices into the account (top-ups after failed calls, bounded)."""
    created = 0
    seconds = 0.0
    problems: list[str] = []
    for attempt in range(SEED_ATTEMPTS):
        if created >= wanted:
            break
        done = await post_batches(
            bench,
            f"seed {flag} to {label(size)}",
            attempt,
            number,
            wanted - created,
            SEED_PER_CALL,
            SEED_CLIENTS[FLAGS[flag]],
            record=False,
            sample_rss=False,
        )
        created += done.created
        seconds += done.measurement.seconds
        problems += [f"{code}: {n}" for code, n in sorted(done.measurement.errors.items())]
    return created, seconds, problems


async def run(bench: Bench) -> list[dict[str, Any]]:
    sizes = sizes_of(bench)
    requests = TINY_REQUESTS if bench.config.tiny else REQUESTS
    rounds = max(1, bench.config.rounds)
    accounts: dict[str, str] = {}
    warm: dict[str, str] = {}
    for flag, partner in FLAGS.items():
        for size in sizes:
            name = variant(flag, size)
            accounts[name] = (await bench.api.create_account(f"Bench growth {name}", partner))[
                "accountNumber"
            ]
            bench.touch(name, accounts[name])
        warm[flag] = (await bench.api.create_account(f"Bench growth warm-up {flag}", partner))[
            "accountNumber"
        ]
        bench.touch("warm-up", warm[flag])
    # Opens the connections and pools of every layer before anything is measured.
    warm_up = {flag: Measurement("warm-up", 0) for flag in FLAGS}
    for _ in range(WARMUP_REQUESTS):
        for flag in FLAGS:
            await single_invoice(bench, warm[flag], warm_up[flag])
    async with batch_limit(bench, SEED_PER_CALL):
        for flag, partner in FLAGS.items():
            for size in sizes:
                name = variant(flag, size)
                held = 0
                if size:
                    held, seconds, problems = await seed(bench, flag, accounts[name], size, size)
                    bench.notes.append(
                        f"Seeded {held:,} invoices into the {name} account in {seconds:,.1f} s"
                        + (f"; failed calls: {', '.join(problems)}" if problems else "")
                        + "."
                    )
                if partner:
                    refreshed = await refresh(bench, accounts[name])
                    bench.notes.append(
                        f"Refresh of the {name} account at {held:,} invoices: "
                        f"{refreshed['durationMs']:,.1f} ms ({refreshed['foldedChanges']:,} "
                        "changes folded)."
                    )
                bench.describe(
                    name,
                    f"one client, sequential POST /v1/invoices on a {flag} account holding "
                    f"{held:,} posted invoices, round-robin with the other sizes and flag",
                )
    per_size: dict[int, list[dict[str, Measurement]]] = {size: [] for size in sizes}
    for round_number in range(rounds):
        ms = await measure(bench, accounts, round_number, requests)
        for size in sizes:
            per_size[size].append({flag: ms[variant(flag, size)] for flag in FLAGS})
    partner_accounts = {size: accounts[variant("partner", size)] for size in sizes}
    folds = await fold_costs(bench, partner_accounts, rounds)
    return report(bench, sizes, per_size) + fold_report(bench, sizes, folds)


async def fold_costs(bench: Bench, accounts: dict[int, str], rounds: int) -> dict[int, list[float]]:
    """Per size, the server's fold time (ms) of `FOLD_CHANGES` fresh changes, once per round."""
    changes = TINY_FOLD_CHANGES if bench.config.tiny else FOLD_CHANGES
    folds: dict[int, list[float]] = {size: [] for size in accounts}
    gate = asyncio.Semaphore(FOLD_CLIENTS)

    async def write(number: str) -> None:
        async with gate:
            await bench.api.ok("POST", "/v1/invoices", invoice_body(number, bench.next_index()))

    sizes = list(accounts)
    # Fold what the latency rounds left (and run a verification that is due) beforehand.
    for number in accounts.values():
        await refresh(bench, number)
    for round_number in range(rounds):
        shift = round_number % len(sizes)
        for size in sizes[shift:] + sizes[:shift]:
            await asyncio.gather(*(write(accounts[size]) for _ in range(changes)))
            refreshed = await refresh(bench, accounts[size])
            assert refreshed["foldedChanges"] == changes, refreshed
            folds[size].append(float(refreshed["durationMs"]))
    return folds


def fold_report(
    bench: Bench, sizes: list[int], folds: dict[int, list[float]]
) -> list[dict[str, Any]]:
    changes = TINY_FOLD_CHANGES if bench.config.tiny else FOLD_CHANGES
    bench.notes.append(
        f"Fold of {changes:,} changes, partner account (ms per round): "
        + "; ".join(
            f"{label(size)}: {', '.join(f'{v:.2f}' for v in folds[size])}" for size in sizes
        )
        + "."
    )
    smallest, largest = sizes[0], sizes[-1]
    if largest == smallest:
        return []
    for base, grown in zip(folds[smallest], folds[largest], strict=True):
        bench.ratio(
            f"fold {label(largest)}/{label(smallest)}",
            grown / base if base else 0.0,
            f"fold time of {changes:,} changes at {largest:,} invoices / at {smallest:,}",
        )
    ratio = statistics.median(bench.ratios[f"fold {label(largest)}/{label(smallest)}"])
    at_largest = statistics.median(folds[largest])
    return [
        {
            "target": f"fold of {changes:,} changes at {label(largest)} <= {TARGET_RATIO}x "
            f"at {label(smallest)}",
            "measured": round(ratio, 3),
            "met": ratio <= TARGET_RATIO,
            "flag": "partner",
        },
        {
            "target": f"fold of {changes:,} changes at {label(largest)} <= {FOLD_MS_TARGET} ms",
            "measured": round(at_largest, 2),
            "met": at_largest <= FOLD_MS_TARGET,
            "flag": "partner",
        },
    ]


def _pooled(rounds: list[dict[str, Measurement]], flag: str) -> dict[str, float | None]:
    return latency_json(sorted(x for ms in rounds for x in ms[flag].latencies))


def report(
    bench: Bench, sizes: list[int], per_size: dict[int, list[dict[str, Measurement]]]
) -> list[dict[str, Any]]:
    smallest, largest = sizes[0], sizes[-1]
    for flag in FLAGS:
        bench.notes.append(
            f"{flag}: "
            + "; ".join(
                f"{label(size)}: p50 {_pooled(per_size[size], flag)['p50']} ms, "
                f"p99 {_pooled(per_size[size], flag)['p99']} ms"
                for size in sizes
            )
        )
    targets: list[dict[str, Any]] = []
    if largest == smallest:
        bench.notes.append("One size only: no growth ratio.")
        return targets
    for flag in FLAGS:
        for stat in ("p50", "p99"):
            for first, last in zip(per_size[smallest], per_size[largest], strict=True):
                base = latency_json(sorted(first[flag].latencies))[stat]
                grown = latency_json(sorted(last[flag].latencies))[stat]
                bench.ratio(
                    f"{flag} {stat} {label(largest)}/{label(smallest)}",
                    grown / base if base and grown is not None else 0.0,
                    f"{stat} latency of one invoice request at {largest:,} invoices / at "
                    f"{smallest:,}, {flag} account",
                )
        for stat in ("p50", "p99"):
            ratio = statistics.median(
                bench.ratios[f"{flag} {stat} {label(largest)}/{label(smallest)}"]
            )
            targets.append(
                {
                    "target": f"{flag}: {stat} latency at {label(largest)} <= {TARGET_RATIO}x "
                    f"latency at {label(smallest)}" + ("" if stat == "p50" else " (information)"),
                    "measured": round(ratio, 3),
                    "met": ratio <= TARGET_RATIO,
                    "flag": flag,
                    "statistic": stat,
                    "latencyMs": {label(size): _pooled(per_size[size], flag) for size in sizes},
                }
            )
    return targets
