"""Scenario 6, `owner-transfer`: two partner accounts each owning S subscriptions; clients move
subscriptions back and forth between them with `OwnerTransfer` orders
(`destinationAccountNumber`) for a fixed time, in both directions at once. Each client works on
subscriptions of its own (client k takes subscriptions k, k + clients, ... in turn), so two
transfers never race for one subscription: what is shared is the two owner accounts — exactly
what a partner write must not lock. Every transfer touches both owners' contractedMrr.

Reported: transfers/s, latency, lock errors, and server errors (HTTP 5xx: a deadlock between
the two directions would show there).

Targets: zero lock errors, zero deadlocks (no 5xx); reconciliation exact.
"""

from typing import Any

from bench.harness import Bench
from bench.scenarios.reseller import (
    outcome,
    owner_transfer_order,
    quantity_of,
    run_count,
    seat_plan,
    send,
    server_errors,
    subscription_order,
    zero_target,
)

NAME = "owner-transfer"
DESCRIPTION = "OwnerTransfer orders back and forth between two partner accounts"

TRANSFERS, SETUP = "transfers-partner", "setup-subscriptions"
PER_CLIENT = 4  # subscriptions each client moves in turn (S = clients * PER_CLIENT / 2)


async def run(bench: Bench) -> list[dict[str, Any]]:
    clients = bench.config.clients
    total = clients * PER_CLIENT
    plan_id, charge_id = await seat_plan(bench)
    a = (await bench.api.create_account("Partner A", True))["accountNumber"]
    b = (await bench.api.create_account("Partner B", True))["accountNumber"]
    other = {a: b, b: a}
    bench.describe(
        TRANSFERS,
        f"{clients} clients moving {total} subscriptions ({total // 2} per account at the "
        "start) between two partner accounts, both directions at once",
    )
    bench.touch(TRANSFERS, a, b)

    numbers: list[str] = [""] * total
    owner_of: list[str] = [a if j % 2 == 0 else b for j in range(total)]

    async def create(client: int, j: int) -> tuple[bool, int, str | None]:
        body = subscription_order(owner_of[j], owner_of[j], plan_id, charge_id, quantity_of(j))
        reply = await send(bench, "POST", "/v1/orders", body)
        result = outcome(reply)
        if result[0] and not isinstance(reply, str):
            numbers[j] = reply.payload["subscriptions"][0]["subscriptionNumber"]
        return result

    setup = await run_count(
        bench, SETUP, create, total, record=False, label=f"setup: {total} subscriptions"
    )
    if setup.ok != total:
        raise RuntimeError(f"setup: {total - setup.ok} orders failed: {setup.errors}")

    turn = [0] * clients

    async def transfer(client: int, i: int) -> tuple[bool, int, str | None]:
        mine = range(client, total, clients)
        j = mine[turn[client] % len(mine)]
        turn[client] += 1
        body = owner_transfer_order(owner_of[j], numbers[j], other[owner_of[j]])
        result = outcome(await send(bench, "POST", "/v1/orders", body))
        if result[0]:
            owner_of[j] = other[owner_of[j]]
        return result

    for round_number in range(bench.config.rounds):
        await bench.load([(TRANSFERS, transfer, clients)], round_number)

    rounds = [m for m in bench.measurements if m.variant == TRANSFERS]
    lock_errors = sum(m.lock_errors for m in rounds)
    fivexx = sum(server_errors(m.errors) for m in rounds)
    done = sum(m.ok for m in rounds)
    at_a = sum(1 for o in owner_of if o == a)
    bench.notes.append(
        f"{done} transfers in {sum(m.seconds for m in rounds):.1f} s; lock errors {lock_errors}; "
        f"server errors (5xx) {fivexx}; {at_a} subscriptions end at A, {total - at_a} at B."
    )
    return [
        zero_target("zero lock errors on the two partner accounts", lock_errors),
        zero_target("zero deadlocks (no 5xx)", fivexx),
        zero_target("zero failed transfers", sum(m.requests - m.ok for m in rounds)),
    ]
