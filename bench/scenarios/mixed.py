"""Scenario 7, `mixed`: every kind of write on one partner account at once — orders
(CreateSubscription), standalone invoices, payments applied to invoices, and credit memos from
an invoice (posted) — for a fixed time, two variants interleaved round by round: (a) with an
on-demand refresh of that account every 5 s meanwhile, (b) without. The writers' p99 must not
depend on the refresh: ratio p99(a) / p99(b) per round.

Each client cycles invoice -> payment (applying the whole of its last invoice, plus a part left
unapplied) -> credit memo (from an invoice of its own made before the load, autoPost) -> order.
The refreshes appear as a variant of their own (latency = refresh round trip).

Target: writers' p99 with refresh within 1.1x of without (reported, informative);
reconciliation exact.
"""

import asyncio
import statistics
import time
from decimal import Decimal
from typing import Any

from bench.harness import Bench, Measurement, Operation, invoice_body, latency_json
from bench.scenarios.reseller import (
    outcome,
    quantity_of,
    seat_plan,
    send,
    server_errors,
    subscription_order,
    zero_target,
)

NAME = "mixed"
DESCRIPTION = "orders, invoices, payments and credit memos on one partner account, refresh or not"

WITH, WITHOUT, REFRESHES = "writers-refresh-every-5s", "writers-no-refresh", "refresh-every-5s"
REFRESH_SECONDS = 5.0
P99_RATIO_TARGET = 1.1
KINDS = ("invoice", "payment", "credit-memo", "order")
SOURCE_AMOUNT = "100000.00"  # what each client's credit memos draw from


class Writers:
    """Per-client state of the write cycle (`kinds`, in turn), and latencies per kind of write and
    variant."""

    def __init__(
        self,
        bench: Bench,
        account: dict[str, Any],
        plan: tuple[str, str],
        sources: list[tuple[str, str]],
        kinds: tuple[str, ...] = KINDS,
    ) -> None:
        self.bench = bench
        self.kinds = kinds
        self.number = str(account["accountNumber"])
        self.account_id = str(account["accountId"])
        self.plan_id, self.charge_id = plan
        self.sources = sources  # client -> (invoice id, item id) its credit memos credit
        self.step = [0] * len(sources)
        self.unpaid: list[list[tuple[str, str]]] = [[] for _ in sources]
        self.latencies: dict[tuple[str, str], list[float]] = {}

    def operation(self, variant: str) -> Operation:
        async def write(client: int, i: int) -> tuple[bool, int, str | None]:
            kind = self.kinds[self.step[client] % len(self.kinds)]
            self.step[client] += 1
            t0 = time.perf_counter()
            result = await self.write(kind, client, i)
            self.latencies.setdefault((variant, kind), []).append(time.perf_counter() - t0)
            return result

        return write

    async def write(self, kind: str, client: int, i: int) -> tuple[bool, int, str | None]:
        if kind == "invoice":
            reply = await send(self.bench, "POST", "/v1/invoices", invoice_body(self.number, i))
            if not isinstance(reply, str) and reply.ok:
                self.unpaid[client].append((reply.payload["id"], str(reply.payload["amount"])))
            return outcome(reply)
        if kind == "payment":
            applied = self.unpaid[client].pop() if self.unpaid[client] else None
            amount = Decimal(applied[1] if applied else "0") + Decimal(f"1.{i % 100:02d}")
            body: dict[str, Any] = {
                "accountId": self.account_id,
                "amount": str(amount),
                "currency": "USD",
                "type": "External",
                "effectiveDate": f"2026-03-{1 + i % 28:02d}",
                "invoices": [{"invoiceId": applied[0], "amount": applied[1]}] if applied else [],
            }
            return outcome(await send(self.bench, "POST", "/v1/payments", body))
        if kind == "credit-memo":
            invoice, item = self.sources[client]
            body = {
                "autoPost": True,
                "effectiveDate": f"2026-03-{1 + i % 28:02d}",
                "items": [{"invoiceItemId": item, "amount": f"0.{1 + i % 99:02d}"}],
            }
            return outcome(
                await send(self.bench, "POST", f"/v1/credit-memos/invoice/{invoice}", body)
            )
        body = subscription_order(
            self.number, self.number, self.plan_id, self.charge_id, quantity_of(i)
        )
        return outcome(await send(self.bench, "POST", "/v1/orders", body))


async def source_invoices(bench: Bench, number: str, clients: int) -> list[tuple[str, str]]:
    """One large posted invoice per client, made before the load: (invoice id, item id)."""
    sources = []
    for _ in range(clients):
        body = {
            "accountNumber": number,
            "invoiceDate": "2026-02-01",
            "status": "Posted",
            "invoiceItems": [
                {"amount": SOURCE_AMOUNT, "serviceStartDate": "2026-02-01", "chargeName": "source"}
            ],
        }
        invoice = await bench.api.ok("POST", "/v1/invoices", body)
        (item,) = (await bench.api.ok("GET", f"/v1/invoices/{invoice['id']}/items"))["invoiceItems"]
        sources.append((str(invoice["id"]), str(item["id"])))
    return sources


async def refresher(bench: Bench, number: str, seconds: float, m: Measurement) -> None:
    """Refresh the account at 0, interval, 2 x interval, ... until `seconds` have passed."""
    interval = min(REFRESH_SECONDS, seconds / 2)
    started = time.perf_counter()
    tick = 0
    while True:
        wait = started + tick * interval - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        if time.perf_counter() - started >= seconds:
            break
        t0 = time.perf_counter()
        reply = await send(bench, "POST", f"/v1/partnerbill/accounts/{number}/refresh-metrics")
        ok, objects, reason = outcome(reply)
        folded = reply.payload.get("foldedChanges", 0) if not isinstance(reply, str) else 0
        m.record(time.perf_counter() - t0, ok, int(folded or 0) if ok else objects, reason)
        tick += 1
    m.seconds = time.perf_counter() - started


async def run(bench: Bench) -> list[dict[str, Any]]:
    clients = bench.config.clients
    seconds = bench.config.seconds
    interval = min(REFRESH_SECONDS, seconds / 2)
    plan = await seat_plan(bench)
    account = await bench.api.create_account("Mixed partner", True)
    number = account["accountNumber"]
    sources = await source_invoices(bench, number, clients)
    writers = Writers(bench, account, plan, sources)
    cycle = " -> ".join(KINDS)
    bench.describe(
        WITH, f"{clients} clients ({cycle}) on one partner account, refreshed every {interval} s"
    )
    bench.describe(WITHOUT, f"{clients} clients ({cycle}) on one partner account, no refresh")
    bench.describe(
        REFRESHES, f"on-demand refresh of that account every {interval} s (objects: changes)"
    )
    bench.touch(WITH, number)
    bench.touch(WITHOUT, number)
    operations = {WITH: writers.operation(WITH), WITHOUT: writers.operation(WITHOUT)}
    await bench.load(
        [("warm-up", writers.operation("warm-up"), clients)],
        -1,
        seconds=min(2.0, seconds),
        record=False,
    )
    order = [WITHOUT, WITH]
    for round_number in range(bench.config.rounds):
        p99: dict[str, float] = {}
        for variant in order if round_number % 2 == 0 else order[::-1]:
            roles = [(variant, operations[variant], clients)]
            if variant == WITH:
                refreshes = Measurement(REFRESHES, round_number)
                (m,), _ = await asyncio.gather(
                    bench.load(roles, round_number),
                    refresher(bench, number, seconds, refreshes),
                )
                refreshes.rss = m.rss
                bench.measurements.append(refreshes)
            else:
                (m,) = await bench.load(roles, round_number)
            p99[variant] = latency_json(sorted(m.latencies))["p99"] or 0.0
        bench.ratio(
            "p99 refresh/no-refresh",
            p99[WITH] / p99[WITHOUT] if p99[WITHOUT] else 0.0,
            "writers' p99, with a refresh every 5 s / without",
        )
    for variant in (WITHOUT, WITH):
        per_kind = ", ".join(
            f"{kind} p99 {latency_json(sorted(writers.latencies.get((variant, kind), [])))['p99']}"
            f" ms ({len(writers.latencies.get((variant, kind), []))})"
            for kind in KINDS
        )
        bench.notes.append(f"{variant}: {per_kind}.")
    writer_rounds = [m for m in bench.measurements if m.variant in (WITH, WITHOUT)]
    refresh_rounds = [m for m in bench.measurements if m.variant == REFRESHES]
    bench.notes.append(
        f"Refreshes: {sum(m.requests for m in refresh_rounds)}, folding "
        f"{sum(m.objects for m in refresh_rounds)} changes in all."
    )
    ratio = statistics.median(bench.ratios["p99 refresh/no-refresh"])
    return [
        {
            "target": f"writers' p99 with refresh <= {P99_RATIO_TARGET}x without (median)",
            "measured": round(ratio, 3),
            "met": ratio <= P99_RATIO_TARGET,
        },
        *writer_targets(writer_rounds),
    ]


def writer_targets(writer_rounds: list[Measurement]) -> list[dict[str, Any]]:
    """What the writers to one partner account must never see: a lock error, a 5xx, a failure."""
    return [
        zero_target(
            "zero lock errors on the partner account", sum(m.lock_errors for m in writer_rounds)
        ),
        zero_target(
            "zero server errors (5xx)", sum(server_errors(m.errors) for m in writer_rounds)
        ),
        zero_target("zero failed writes", sum(m.requests - m.ok for m in writer_rounds)),
    ]
