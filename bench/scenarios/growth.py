"""Scenario 8, `growth`: the latency of one invoice request (`POST /v1/invoices`, one client,
sequential) as the account grows — at 0, 10k, 100k and 200k posted invoices — on a partner and
on a non-partner account. At each size both accounts are measured in the same loop, requests
alternating between them (interleaved), `rounds` times; between sizes both accounts are seeded
to the next size through `POST /v1/invoices/batch` (500 per call; the tenant's
`invoiceBatchLimit` raised meanwhile, then restored) and the partner account is refreshed, as
its periodic refresh would.

Sizes: `--sizes` (comma-separated, e.g. `0,10000,100000`), by default the issue's 0, 10k, 100k,
200k; `--tiny`: 0, 200, 500 with 20 requests per account and size.

Target (issue 5, information only): latency at the largest size within 1.2x of latency at 0, for
both flags (p50; the p99 ratio is reported beside it).
"""

from __future__ import annotations

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
    bench: Bench, accounts: dict[str, str], size: int, round_number: int, requests: int
) -> dict[str, Measurement]:
    """`requests` single invoices per account, one client, alternating between the accounts
    (which goes first alternates too). A measurement's seconds are its own requests' time."""
    ms = {flag: Measurement(variant(flag, size), round_number) for flag in FLAGS}
    order = list(FLAGS)
    task = bench.progress.add_task(
        f"round {round_number + 1} size {label(size)}", total=requests * len(order)
    )
    async with bench.rss.sampling():
        for k in range(requests):  # bounded: `requests` per account
            for flag in order if k % 2 == 0 else order[::-1]:
                await single_invoice(bench, accounts[flag], ms[flag])
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
        accounts[flag] = (await bench.api.create_account(f"Bench growth {flag}", partner))[
            "accountNumber"
        ]
        warm[flag] = (await bench.api.create_account(f"Bench growth warm-up {flag}", partner))[
            "accountNumber"
        ]
        for size in sizes:
            bench.touch(variant(flag, size), accounts[flag])
        bench.touch("warm-up", warm[flag])
    # Opens the connections and pools of every layer before anything is measured.
    warm_up = {flag: Measurement("warm-up", 0) for flag in FLAGS}
    for _ in range(WARMUP_REQUESTS):
        for flag in FLAGS:
            await single_invoice(bench, warm[flag], warm_up[flag])
    counts = dict.fromkeys(FLAGS, 0)
    per_size: dict[int, list[dict[str, Measurement]]] = {}
    async with batch_limit(bench, SEED_PER_CALL):
        for size in sizes:
            for flag in FLAGS:
                wanted = size - counts[flag]
                if wanted > 0:
                    created, seconds, problems = await seed(
                        bench, flag, accounts[flag], wanted, size
                    )
                    counts[flag] += created
                    bench.notes.append(
                        f"Seeded {created:,} invoices into the {flag} account in {seconds:,.1f} s "
                        f"(to {counts[flag]:,})"
                        + (f"; failed calls: {', '.join(problems)}" if problems else "")
                        + "."
                    )
                if FLAGS[flag]:
                    refreshed = await refresh(bench, accounts[flag])
                    bench.notes.append(
                        f"Refresh of the partner account at {counts[flag]:,} invoices: "
                        f"{refreshed['durationMs']:,.1f} ms ({refreshed['foldedChanges']:,} "
                        "changes folded)."
                    )
            for flag in FLAGS:
                bench.describe(
                    variant(flag, size),
                    f"one client, sequential POST /v1/invoices on a {flag} account holding "
                    f"{counts[flag]:,} posted invoices, alternating with the other flag",
                )
            per_size[size] = []
            for round_number in range(rounds):
                ms = await measure(bench, accounts, size, round_number, requests)
                per_size[size].append(ms)
                for flag in FLAGS:
                    counts[flag] += ms[flag].ok
    return report(bench, sizes, per_size)


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
    targets = []
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
