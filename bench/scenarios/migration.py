"""Scenario 5, `migration`: N standalone Posted invoices into one partner account through
`POST /v1/invoices/batch`, 50 per call (Zuora's limit) and 500 per call (the tenant's
`invoiceBatchLimit` raised through `PUT /v1/partnerbill/settings` for the run, then restored),
16 clients; the same N into a non-partner account at 50 per call, for the ratio. Each variant has
an account of its own; the variants are interleaved: every round migrates N / rounds invoices of
each variant, in a rotated order. Then "a day's" load (15 % of N) into the 50-per-call partner
account, then an on-demand refresh of that account, whose `durationMs` is reported.

N is `--invoices`, by default 200,000 (`--tiny`: 500). Clients:
16 unless `--clients` gives another number than the harness default.

Targets (information only): 200,000 invoices in <= 60 s at 50 per call (that is, >=
3,333 invoices/s when N differs); the refresh afterwards <= 0.5 s; server RSS <= 300 MB per
process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.harness import Bench, BenchConfig, Measurement, invoice_body

NAME = "migration"
DESCRIPTION = "N invoices into one partner account via POST /v1/invoices/batch (50 and 500/call)"

DEFAULT_INVOICES = 200_000
TINY_INVOICES = 500
CLIENTS = 16
DAY_FRACTION = 0.15
SMALL_BATCH, LARGE_BATCH = 50, 500
P50, P500, NP50, DAY = "partner-50", "partner-500", "non-partner-50", "day-partner-50"
TARGET_INVOICES, TARGET_SECONDS = 200_000, 60.0
TARGET_RATE = TARGET_INVOICES / TARGET_SECONDS
TARGET_REFRESH_MS = 500.0
TARGET_RSS_MB = 300.0
# The time bound of one load (its count bound is the number of calls it has to make).
MIN_LOAD_SECONDS = 120.0
LOAD_SECONDS_PER_INVOICE = 0.01
BATCH_PATH = "/v1/invoices/batch"
SETTINGS_PATH = "/v1/partnerbill/settings"


def invoice_count(bench: Bench) -> int:
    """`--invoices`, else the default."""
    configured = bench.config.invoices
    if configured:
        count = int(configured)
        if count < 1:
            raise SystemExit(f"--invoices must be at least 1, not {count}")
        return count
    return TINY_INVOICES if bench.config.tiny else DEFAULT_INVOICES


def client_count(bench: Bench) -> int:
    """16 unless `--clients` says otherwise (the harness default of 32 is for other scenarios)."""
    if bench.config.tiny or bench.config.clients != BenchConfig.build("x").clients:
        return bench.config.clients
    return CLIENTS


@dataclass
class Batches:
    """The outcome of one bounded batch load."""

    measurement: Measurement
    wanted: int
    created: int
    unsent: int


def load_seconds(invoices: int) -> float:
    return max(MIN_LOAD_SECONDS, invoices * LOAD_SECONDS_PER_INVOICE)


async def post_batches(
    bench: Bench,
    variant: str,
    round_number: int,
    account_number: str,
    invoices: int,
    per_call: int,
    clients: int,
    *,
    record: bool = True,
    sample_rss: bool = True,
) -> Batches:
    """`invoices` posted invoices into one account, `per_call` per `POST /v1/invoices/batch`, by
    `clients` concurrent clients. Bounded: each call is made once (failures are recorded, not
    retried) and the load stops at its deadline. The server's RSS is sampled meanwhile."""
    sizes = [min(per_call, invoices - start) for start in range(0, invoices, per_call)]
    pending = iter(sizes)  # shared by the clients: one event loop, no lock needed
    measurement = Measurement(variant, round_number)
    task = bench.progress.add_task(
        f"round {round_number + 1} {variant}: {invoices:,} invoices", total=invoices
    )
    created = 0
    sent = 0
    deadline = time.perf_counter() + load_seconds(invoices)

    async def client() -> None:
        nonlocal created, sent
        for size in pending:
            if time.perf_counter() >= deadline:
                return
            sent += size
            body = {
                "invoices": [invoice_body(account_number, bench.next_index()) for _ in range(size)]
            }
            t0 = time.perf_counter()
            try:
                reply = await bench.api.call("POST", BATCH_PATH, body)
            except (aiohttp.ClientError, TimeoutError) as exc:
                measurement.record(
                    time.perf_counter() - t0, False, 0, f"exception:{type(exc).__name__}"
                )
                continue
            seconds = time.perf_counter() - t0
            made = 0
            if reply.status == 200 and isinstance(reply.payload, dict):
                made = sum(
                    1
                    for invoice in reply.payload.get("invoices") or []
                    if isinstance(invoice, dict) and invoice.get("success") is True
                )
            created += made
            measurement.record(seconds, reply.ok, made, None if reply.ok else reply.reason)
            bench.progress.advance(task, size)

    started = time.perf_counter()
    async with _maybe_sampling(bench, sample_rss):
        await asyncio.gather(*(client() for _ in range(clients)))
    measurement.seconds = time.perf_counter() - started
    if sample_rss:
        measurement.rss = bench.rss.as_json()
    bench.progress.update(task, visible=False)
    if record:
        bench.measurements.append(measurement)
    return Batches(measurement, invoices, created, invoices - sent)


@contextlib.asynccontextmanager
async def _maybe_sampling(bench: Bench, sample: bool) -> AsyncIterator[None]:
    if sample:
        async with bench.rss.sampling():
            yield
    else:
        yield


@contextlib.asynccontextmanager
async def batch_limit(bench: Bench, at_least: int) -> AsyncIterator[int]:
    """The tenant's `invoiceBatchLimit` raised to `at_least` meanwhile, then restored."""
    before = int((await bench.api.ok("GET", SETTINGS_PATH))["invoiceBatchLimit"])
    if before < at_least:
        await bench.api.ok("PUT", SETTINGS_PATH, {"invoiceBatchLimit": at_least})
    try:
        yield before
    finally:
        if before < at_least:
            await bench.api.ok("PUT", SETTINGS_PATH, {"invoiceBatchLimit": before})


async def refresh(bench: Bench, account_number: str) -> dict[str, Any]:
    """The on-demand refresh of one account: the server's `durationMs`, the changes it folded,
    the round trip seen by the client."""
    t0 = time.perf_counter()
    reply = await bench.api.ok("POST", f"/v1/partnerbill/accounts/{account_number}/refresh-metrics")
    return {
        "durationMs": float(reply["durationMs"]),
        "foldedChanges": reply["foldedChanges"],
        "roundTripMs": round((time.perf_counter() - t0) * 1000, 1),
    }


def _split(total: int, parts: int) -> list[int]:
    """`total` in `parts` near-equal shares, larger first (zeros dropped)."""
    share, rest = divmod(total, parts)
    return [share + (1 if k < rest else 0) for k in range(parts) if share or k < rest]


def _rate(created: int, seconds: float) -> float:
    return created / seconds if seconds else 0.0


async def run(bench: Bench) -> list[dict[str, Any]]:
    total = invoice_count(bench)
    clients = client_count(bench)
    day = max(1, round(total * DAY_FRACTION))
    per_call = {P50: SMALL_BATCH, P500: LARGE_BATCH, NP50: SMALL_BATCH}
    partner = {P50: True, P500: True, NP50: False}
    accounts: dict[str, str] = {}
    for variant in (P50, P500, NP50):
        created = await bench.api.create_account(f"Bench {variant}", partner[variant])
        accounts[variant] = created["accountNumber"]
        kind = "partner" if partner[variant] else "non-partner"
        bench.describe(
            variant,
            f"{total:,} invoices into one {kind} account, {per_call[variant]} per call, "
            f"{clients} clients",
        )
        bench.touch(variant, accounts[variant])
    bench.describe(
        DAY, f"a day's {day:,} invoices into the {P50} account after its migration, 50 per call"
    )
    slices = _split(total, max(1, bench.config.rounds))
    order = [P50, P500, NP50]
    outcome: dict[str, list[Batches]] = {v: [] for v in order}
    async with batch_limit(bench, LARGE_BATCH) as limit_before:
        for round_number, count in enumerate(slices):
            rates: dict[str, float] = {}
            shift = round_number % len(order)
            for variant in order[shift:] + order[:shift]:
                done = await post_batches(
                    bench,
                    variant,
                    round_number,
                    accounts[variant],
                    count,
                    per_call[variant],
                    clients,
                )
                outcome[variant].append(done)
                rates[variant] = _rate(done.created, done.measurement.seconds)
            bench.ratio(
                "partner/non-partner",
                rates[P50] / rates[NP50] if rates[NP50] else 0.0,
                "invoices/s at 50 per call, partner / non-partner account",
            )
            bench.ratio(
                "500/50 per call",
                rates[P500] / rates[P50] if rates[P50] else 0.0,
                "invoices/s on a partner account, 500 per call / 50 per call",
            )
        day_load = await post_batches(bench, DAY, 0, accounts[P50], day, SMALL_BATCH, clients)
    async with bench.rss.sampling():
        refreshed = await refresh(bench, accounts[P50])
    refresh_rss = bench.rss.as_json()
    bench.notes.append(
        f"Invoices: {total:,} per variant in {len(slices)} interleaved round(s); a day's load "
        f"of {day:,}; {clients} clients; the tenant's invoiceBatchLimit was {limit_before} "
        f"(raised to {max(limit_before, LARGE_BATCH)} for the run, then restored)."
    )
    return report(bench, total, outcome, day_load, refreshed, refresh_rss)


def report(
    bench: Bench,
    total: int,
    outcome: dict[str, list[Batches]],
    day_load: Batches,
    refreshed: dict[str, Any],
    refresh_rss: dict[str, float | None],
) -> list[dict[str, Any]]:
    totals: dict[str, dict[str, Any]] = {}
    for variant, loads in [*outcome.items(), (DAY, [day_load])]:
        seconds = sum(b.measurement.seconds for b in loads)
        created = sum(b.created for b in loads)
        errors: dict[str, int] = {}
        for b in loads:
            for code, n in b.measurement.errors.items():
                errors[code] = errors.get(code, 0) + n
        totals[variant] = {
            "variant": variant,
            "invoices": created,
            "wanted": sum(b.wanted for b in loads),
            "unsent": sum(b.unsent for b in loads),
            "seconds": round(seconds, 3),
            "invoicesPerSecond": round(_rate(created, seconds), 1),
            "errors": errors,
        }
        bench.notes.append(
            f"{variant}: {created:,} of {totals[variant]['wanted']:,} invoices in "
            f"{seconds:,.1f} s = {_rate(created, seconds):,.0f} invoices/s; errors: "
            + (", ".join(f"{k}: {v}" for k, v in sorted(errors.items())) or "none")
            + (
                f"; {totals[variant]['unsent']:,} not sent (time bound)"
                if totals[variant]["unsent"]
                else ""
            )
        )
    bench.notes.append(
        f"Refresh of the {P50} account after the migration and the day's load: "
        f"{refreshed['durationMs']:,.1f} ms on the server ({refreshed['foldedChanges']:,} "
        f"changes folded), {refreshed['roundTripMs']:,.1f} ms round trip."
    )
    rss_process = [m.rss.get("serverRssPeakProcessMb") for m in bench.measurements if m.rss] + [
        refresh_rss.get("serverRssPeakProcessMb")
    ]
    rss_peak = max((x for x in rss_process if x is not None), default=None)
    small = totals[P50]
    return [
        {
            "target": f"{TARGET_INVOICES:,} invoices into one partner account in <= "
            f"{TARGET_SECONDS:.0f} s at 50 per call (>= {TARGET_RATE:,.0f} invoices/s)",
            "measured": f"{small['invoices']:,} in {small['seconds']:,.1f} s = "
            f"{small['invoicesPerSecond']:,.0f} invoices/s",
            "met": small["invoices"] == total and small["invoicesPerSecond"] >= TARGET_RATE,
            **small,
        },
        {
            "target": "500 per call (information)",
            "measured": f"{totals[P500]['invoices']:,} in {totals[P500]['seconds']:,.1f} s = "
            f"{totals[P500]['invoicesPerSecond']:,.0f} invoices/s",
            "met": totals[P500]["invoices"] == total,
            **totals[P500],
        },
        {
            "target": "non-partner account, 50 per call (information)",
            "measured": f"{totals[NP50]['invoices']:,} in {totals[NP50]['seconds']:,.1f} s = "
            f"{totals[NP50]['invoicesPerSecond']:,.0f} invoices/s",
            "met": totals[NP50]["invoices"] == total,
            **totals[NP50],
        },
        {
            "target": "a day's load, 50 per call (information)",
            "measured": f"{totals[DAY]['invoices']:,} in {totals[DAY]['seconds']:,.1f} s = "
            f"{totals[DAY]['invoicesPerSecond']:,.0f} invoices/s",
            "met": totals[DAY]["invoices"] == totals[DAY]["wanted"],
            **totals[DAY],
        },
        {
            "target": f"refresh of that account afterwards <= {TARGET_REFRESH_MS:.0f} ms",
            "measured": f"{refreshed['durationMs']:,.1f} ms "
            f"({refreshed['foldedChanges']:,} changes folded)",
            "met": refreshed["durationMs"] <= TARGET_REFRESH_MS,
            **refreshed,
        },
        {
            "target": f"server RSS <= {TARGET_RSS_MB:.0f} MB per process",
            "measured": "-" if rss_peak is None else f"{rss_peak:,.1f} MB (largest process)",
            "met": rss_peak is not None and rss_peak <= TARGET_RSS_MB,
            "serverRssPeakProcessMb": rss_peak,
        },
    ]
