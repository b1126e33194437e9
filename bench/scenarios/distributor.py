"""Scenario 4, `distributor`: a partner invoice owner (the distributor) and 500 non-partner
(synchronous) subscription owners, the dealers. EDI batches of 500 CreateSubscription orders
(one per dealer, each billed to the distributor) every 20 s — the seed's 20-minute batch,
compressed — for 3 batches: each batch is sent by the clients as fast as it goes, then the
next one waits for its 20 s tick.

Per batch: duration, orders/s, and lock errors split by where they can come from. A dealer's
metrics row is locked by the orders of that dealer only, so a lock error on an order whose dealer
had no other order in flight can only be the distributor's (partner: must be 0); one whose
dealer had another order in flight at the same time is counted on the non-partner side.

Targets: zero lock errors on the partner account; reconciliation exact.
"""

import asyncio
import time
from typing import Any

from bench.harness import Bench, is_lock_error
from bench.scenarios.reseller import (
    outcome,
    quantity_of,
    run_count,
    seat_plan,
    send,
    subscription_order,
    zero_target,
)

NAME = "distributor"
DESCRIPTION = "EDI batches of orders: 500 non-partner dealers billed to one partner distributor"

BATCHES = "edi-batch"
DEALERS, BATCH_COUNT, TICK_SECONDS = 500, 3, 20.0
TINY_DEALERS, TINY_TICK_SECONDS = 6, 1.0


class Attribution:
    """Which orders overlapped another order of the same dealer (see the module docstring)."""

    def __init__(self) -> None:
        self.active: dict[str, set[int]] = {}
        self.overlapped: set[int] = set()
        self.partner_lock_errors = 0
        self.non_partner_lock_errors = 0

    def start(self, dealer: str, token: int) -> None:
        others = self.active.setdefault(dealer, set())
        if others:
            self.overlapped.update(others)
            self.overlapped.add(token)
        others.add(token)

    def end(self, dealer: str, token: int, reason: str | None) -> None:
        self.active[dealer].discard(token)
        if reason is not None and is_lock_error(reason):
            if token in self.overlapped:
                self.non_partner_lock_errors += 1
            else:
                self.partner_lock_errors += 1
        self.overlapped.discard(token)


async def run(bench: Bench) -> list[dict[str, Any]]:
    tiny = bench.config.tiny
    dealer_count = TINY_DEALERS if tiny else DEALERS
    tick = TINY_TICK_SECONDS if tiny else TICK_SECONDS
    clients = bench.config.clients
    plan_id, charge_id = await seat_plan(bench)
    distributor = (await bench.api.create_account("Distributor", True))["accountNumber"]
    gate = asyncio.Semaphore(clients)

    async def dealer(k: int) -> str:
        async with gate:
            return str((await bench.api.create_account(f"Dealer {k}", False))["accountNumber"])

    dealers = list(await asyncio.gather(*(dealer(k) for k in range(dealer_count))))
    bench.describe(
        BATCHES,
        f"{BATCH_COUNT} batches (one per round) of {dealer_count} orders every {tick:.0f} s, "
        f"{clients} clients; one order per non-partner dealer, billed to a partner distributor",
    )
    bench.touch(BATCHES, distributor, *dealers)
    per_batch: list[dict[str, Any]] = []
    attributions: list[Attribution] = []
    started = time.perf_counter()
    for batch in range(BATCH_COUNT):
        attribution = Attribution()
        attributions.append(attribution)

        async def order(
            client: int, j: int, batch: int = batch, attribution: Attribution = attribution
        ) -> tuple[bool, int, str | None]:
            owner = dealers[j % dealer_count]
            token = batch * dealer_count + j
            body = subscription_order(owner, distributor, plan_id, charge_id, quantity_of(token))
            attribution.start(owner, token)
            result = outcome(await send(bench, "POST", "/v1/orders", body))
            attribution.end(owner, token, result[2])
            return result

        m = await run_count(
            bench,
            BATCHES,
            order,
            dealer_count,
            round_number=batch,
            label=f"batch {batch + 1}/{BATCH_COUNT}: {dealer_count} orders",
        )
        per_batch.append(
            {
                "batch": batch + 1,
                "seconds": round(m.seconds, 3),
                "orders": m.ok,
                "ordersPerSecond": round(m.ok / m.seconds, 1) if m.seconds else None,
                "lockErrorsPartner": attribution.partner_lock_errors,
                "lockErrorsNonPartner": attribution.non_partner_lock_errors,
                "errors": dict(m.errors),
            }
        )
        if batch + 1 < BATCH_COUNT:
            wait = started + (batch + 1) * tick - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                bench.notes.append(f"batch {batch + 1} ran past its {tick:.0f} s tick.")
    bench.notes.append(
        f"Sizes: {BATCH_COUNT} batches of {dealer_count} orders, one every {tick:.0f} s, by "
        f"{clients} clients (counts, not times: --seconds and --rounds do not apply)."
    )
    for b in per_batch:
        bench.notes.append(
            f"Batch {b['batch']}: {b['orders']} orders in {b['seconds']:.2f} s = "
            f"{b['ordersPerSecond']} orders/s; lock errors partner {b['lockErrorsPartner']}, "
            f"non-partner {b['lockErrorsNonPartner']}; errors {b['errors'] or 'none'}."
        )
    partner = sum(a.partner_lock_errors for a in attributions)
    non_partner = sum(a.non_partner_lock_errors for a in attributions)
    failed = sum(dealer_count - b["orders"] for b in per_batch)  # errors and unsent
    return [
        zero_target("zero lock errors on the partner distributor", partner),
        {
            "target": "lock errors on non-partner dealers (reported)",
            "measured": non_partner,
            "met": True,
        },
        zero_target("zero failed orders", failed),
        {
            "target": f"each batch done within its {tick:.0f} s tick",
            "measured": ", ".join(f"{b['seconds']:.2f} s" for b in per_batch),
            "met": all(b["seconds"] <= tick for b in per_batch),
        },
    ]
