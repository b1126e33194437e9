"""Scenario 3, `reseller`: one partner invoice owner (the reseller) and 100 partner subscription
owners; 32 clients create 3,000 subscriptions (`--subscriptions`, e.g. 100,000: beyond Zuora's
12,000 per account, 80,000 with its performance add-on) through `POST /v1/orders`, 50 per order
(Zuora's bound on one order: 50 CreateSubscription actions, each in its own `subscriptions`
entry, all for the order's owner and billed to the reseller through
`invoiceOwnerAccountNumber`); then one account-level bill run for the reseller (`POST
/v1/bill-runs`, autoPost, run by the server's job worker and polled until it is done); then a
refresh of every account. Reconciliation covers all 101 accounts. The server's RSS is sampled
in every phase.

Also here, shared by the order scenarios (`distributor`, `owner-transfer`, `mixed`): the seat
plan, order bodies, a request that keeps its payload, and a load bounded by a count of jobs.

Targets: >= 1,000 subscriptions/s ordered; the bill run <= 60 s; every server process <= 300 MB
RSS; the reseller's refresh afterwards <= 1 s on the server; zero lock errors on partner
accounts, zero failed orders; reconciliation exact.
"""

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp

from bench.harness import Bench, Measurement, Operation, Reply

NAME = "reseller"
DESCRIPTION = (
    "3,000 subscriptions (--subscriptions) ordered 50 per order for 100 partner owners, billed to "
    "one partner reseller"
)

ORDER_DATE = "2026-01-01"
SEAT_PRICE = Decimal("12.50")
ORDERS, BILL_RUN, REFRESH = "orders-partner", "bill-run", "refresh-all"
OWNERS, SUBSCRIPTIONS = 100, 3_000
TINY_OWNERS, TINY_SUBSCRIPTIONS = 3, 10
# Subscriptions per order: Zuora's bound on one order (and the tenant's default orderSyncLimit);
# tiny: a few orders still.
SUBSCRIPTIONS_PER_ORDER, TINY_SUBSCRIPTIONS_PER_ORDER = 50, 4
# Bounds in time of the count-bounded loads and of the bill run (the count is the other bound).
COUNT_TIMEOUT_SECONDS, TINY_COUNT_TIMEOUT_SECONDS = 600.0, 120.0
BILL_RUN_TIMEOUT_SECONDS, TINY_BILL_RUN_TIMEOUT_SECONDS = 600.0, 120.0
# Larger runs get bounds that grow with their subscriptions: a tenth of the target rates.
BOUND_SECONDS_PER_SUBSCRIPTION = {ORDERS: 0.01, BILL_RUN: 0.006}
TARGET_SUBSCRIPTIONS_PER_SECOND = 1_000
TARGET_BILL_RUN_SECONDS = 60.0
TARGET_RSS_MB = 300.0
TARGET_REFRESH_MS = 1_000.0
# `bench all`: the targets are about a 100,000-subscription reseller.
TARGET_SIZES = {"subscriptions": 100_000}
POLL_SECONDS = 0.05
BILL_RUN_DONE = ("Completed", "Posted", "Error", "Canceled")
SERVER_ERROR_CATEGORIES = (60, 61)


# ---------------------------------------------------------------------------------------------
# Shared by the order scenarios


async def send(bench: Bench, method: str, path: str, body: Any = None) -> Reply | str:
    """One request: its reply, or the reason code of a transport failure."""
    try:
        return await bench.api.call(method, path, body)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"exception:{type(exc).__name__}"


def outcome(reply: Reply | str, objects: int = 1) -> tuple[bool, int, str | None]:
    """What an operation returns for `reply` (see `send`)."""
    if isinstance(reply, str):
        return False, 0, reply
    return reply.ok, objects, None if reply.ok else reply.reason


def server_errors(errors: dict[str, int]) -> int:
    """Responses that were the server's failure (HTTP 5xx, internal-error codes), or none at
    all: a deadlock or a crash shows here."""
    total = 0
    for code, n in errors.items():
        if code.startswith(("http-5", "exception:")) or (
            code.isdigit() and int(code) % 100 in SERVER_ERROR_CATEGORIES
        ):
            total += n
    return total


async def created_object(bench: Bench, path: str, body: dict[str, Any]) -> str:
    """POST a CRUD object (`/v1/object/...`, PascalCase answer); its id."""
    reply = await bench.api.call("POST", path, body)
    if reply.status != 200 or reply.payload.get("Success") is not True:
        raise RuntimeError(f"POST {path} failed: {reply.status} {reply.payload}")
    return str(reply.payload["Id"])


def seat_charge_body(plan_id: str) -> dict[str, Any]:
    """The object-API body of a monthly per-unit charge of SEAT_PRICE on `plan_id`."""
    return {
        "ProductRatePlanId": plan_id,
        "Name": "Seat fee",
        "ChargeType": "Recurring",
        "ChargeModel": "Per Unit Pricing",
        "BillingPeriod": "Month",
        "BillingTiming": "In Advance",
        "BillCycleType": "DefaultFromCustomer",
        "TriggerEvent": "ContractEffective",
        "ProductRatePlanChargeTierData": {
            "ProductRatePlanChargeTier": [{"Currency": "USD", "Price": SEAT_PRICE}]
        },
    }


async def seat_plan(bench: Bench) -> tuple[str, str]:
    """A product rate plan with one monthly per-unit charge of SEAT_PRICE: (plan id, charge id)."""
    product = await created_object(
        bench,
        "/v1/object/product",
        {"Name": "Seats", "EffectiveStartDate": "2025-01-01", "EffectiveEndDate": "2036-01-01"},
    )
    plan = await created_object(
        bench, "/v1/object/product-rate-plan", {"Name": "Monthly", "ProductId": product}
    )
    charge = await created_object(
        bench,
        "/v1/object/product-rate-plan-charge",
        seat_charge_body(plan),
    )
    return plan, charge


async def new_accounts(
    bench: Bench, prefix: str, count: int, partner: bool
) -> list[dict[str, Any]]:
    """`count` accounts created by the configured number of clients at once (in order)."""
    gate = asyncio.Semaphore(bench.config.clients)

    async def one(k: int) -> dict[str, Any]:
        async with gate:
            return await bench.api.create_account(f"{prefix} {k}", partner)

    return list(await asyncio.gather(*(one(k) for k in range(count))))


def subscription_entry(
    owner: str, invoice_owner: str, plan_id: str, charge_id: str, quantity: int
) -> dict[str, Any]:
    """An order's `subscriptions` entry creating one subscription: `owner` owns it,
    `invoice_owner` is billed."""
    return {
        "orderActions": [
            {
                "type": "CreateSubscription",
                "createSubscription": {
                    "subscriptionOwnerAccountNumber": owner,
                    "invoiceOwnerAccountNumber": invoice_owner,
                    "terms": {"initialTerm": {"termType": "EVERGREEN"}},
                    "subscribeToRatePlans": [
                        {
                            "productRatePlanId": plan_id,
                            "chargeOverrides": [
                                {
                                    "productRatePlanChargeId": charge_id,
                                    "pricing": {"recurringPerUnit": {"quantity": quantity}},
                                }
                            ],
                        }
                    ],
                },
            }
        ]
    }


def subscription_order(
    owner: str, invoice_owner: str, plan_id: str, charge_id: str, quantity: int
) -> dict[str, Any]:
    """A CreateSubscription order: `owner` orders and owns, `invoice_owner` is billed."""
    return {
        "orderDate": ORDER_DATE,
        "existingAccountNumber": owner,
        "subscriptions": [subscription_entry(owner, invoice_owner, plan_id, charge_id, quantity)],
    }


def owner_transfer_order(owner: str, subscription_number: str, destination: str) -> dict[str, Any]:
    """An OwnerTransfer order moving one subscription from `owner` to `destination`."""
    return {
        "orderDate": ORDER_DATE,
        "existingAccountNumber": owner,
        "subscriptions": [
            {
                "subscriptionNumber": subscription_number,
                "orderActions": [
                    {
                        "type": "OwnerTransfer",
                        "ownerTransfer": {"destinationAccountNumber": destination},
                    }
                ],
            }
        ],
    }


def quantity_of(j: int) -> int:
    return 1 + j % 7


def count_timeout(bench: Bench) -> float:
    return TINY_COUNT_TIMEOUT_SECONDS if bench.config.tiny else COUNT_TIMEOUT_SECONDS


async def run_count(
    bench: Bench,
    variant: str,
    operation: Operation,
    count: int,
    *,
    clients: int | None = None,
    round_number: int = 0,
    limit_seconds: float | None = None,
    record: bool = True,
    label: str | None = None,
) -> Measurement:
    """Jobs 0..count-1, each `operation(client, job)`, taken in order by `clients` clients as
    fast as they go: bounded by the count and by `limit_seconds` (jobs not started by then
    are left out: `requests < count` shows it). The server's RSS is sampled meanwhile."""
    clients = clients or bench.config.clients
    limit = count_timeout(bench) if limit_seconds is None else limit_seconds
    m = Measurement(variant, round_number)
    task = bench.progress.add_task(label or variant, total=count)
    jobs = iter(range(count))
    started = time.perf_counter()
    deadline = started + limit

    async def client_loop(client: int) -> None:
        for job in jobs:  # one iterator shared by every client: each job runs once
            if time.perf_counter() >= deadline:
                return
            t0 = time.perf_counter()
            ok, objects, reason = await operation(client, job)
            m.record(time.perf_counter() - t0, ok, objects, reason)
            bench.progress.advance(task)

    async with bench.rss.sampling():
        await asyncio.gather(*(client_loop(c) for c in range(min(clients, count))))
    m.seconds = time.perf_counter() - started
    m.rss = bench.rss.as_json()
    bench.progress.update(task, visible=False)
    if m.requests < count:
        bench.notes.append(
            f"{variant} (round {round_number + 1}): only {m.requests} of {count} jobs ran "
            f"within the {limit:.0f} s bound."
        )
    if record:
        bench.measurements.append(m)
    return m


def single(variant: str, seconds: float, ok: bool, objects: int, reason: str | None) -> Measurement:
    """A measurement of one timed step (a bill run, a refresh)."""
    m = Measurement(variant, 0)
    m.record(seconds, ok, objects, reason)
    m.seconds = seconds or 1e-9
    return m


def zero_target(name: str, value: int) -> dict[str, Any]:
    return {"target": name, "measured": value, "met": value == 0}


async def refresh_all(
    bench: Bench, numbers: Iterable[str]
) -> tuple[float, dict[str, dict[str, Any]]]:
    """On-demand refresh of each account, by the configured clients at once: (wall seconds,
    account -> refresh answer with the client-side `ms` added)."""
    gate = asyncio.Semaphore(bench.config.clients)
    answers: dict[str, dict[str, Any]] = {}

    async def one(number: str) -> None:
        async with gate:
            t0 = time.perf_counter()
            answer = await bench.api.ok(
                "POST", f"/v1/partnerbill/accounts/{number}/refresh-metrics"
            )
            answers[number] = {**answer, "ms": round((time.perf_counter() - t0) * 1000, 2)}

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in numbers))
    return time.perf_counter() - started, answers


# ---------------------------------------------------------------------------------------------
# The scenario


@dataclass(frozen=True, slots=True)
class Sizes:
    owners: int
    subscriptions: int
    per_order: int

    @classmethod
    def of(cls, bench: Bench) -> "Sizes":
        """The default or tiny sizes; `--subscriptions` sets the count in either."""
        chosen = bench.config.subscriptions
        if bench.config.tiny:
            return cls(TINY_OWNERS, chosen or TINY_SUBSCRIPTIONS, TINY_SUBSCRIPTIONS_PER_ORDER)
        return cls(OWNERS, chosen or SUBSCRIPTIONS, SUBSCRIPTIONS_PER_ORDER)

    @property
    def orders(self) -> int:
        return -(-self.subscriptions // self.per_order)

    def in_order(self, k: int) -> range:
        """The subscriptions (their indexes) order `k` creates."""
        return range(k * self.per_order, min((k + 1) * self.per_order, self.subscriptions))

    def bound(self, bench: Bench, variant: str, fixed: float, tiny: float) -> float:
        """A phase's bound in time: the fixed one, longer for a run this large."""
        if bench.config.tiny:
            return tiny
        return max(fixed, self.subscriptions * BOUND_SECONDS_PER_SUBSCRIPTION[variant])


async def bill_run(bench: Bench, account_id: str, limit: float) -> tuple[float, dict[str, Any]]:
    """An account-level bill run with autoPost, polled until done: (seconds, the run)."""
    task = bench.progress.add_task("bill run (job worker)", total=None)
    started = time.perf_counter()
    run = await bench.api.ok(
        "POST",
        "/v1/bill-runs",
        {
            "targetDate": ORDER_DATE,
            "autoPost": True,
            "billRunFilters": [{"filterType": "Account", "accountId": account_id}],
        },
    )
    deadline = started + limit
    while run["status"] not in BILL_RUN_DONE:
        if time.perf_counter() > deadline:
            raise RuntimeError(
                f"the bill run is still {run['status']} after {limit:.0f} s: is the server's "
                "job worker running (`partnerbill worker`)?"
            )
        await asyncio.sleep(POLL_SECONDS)
        run = await bench.api.ok("GET", f"/v1/bill-runs/{run['id']}")
    seconds = time.perf_counter() - started
    bench.progress.update(task, visible=False)
    return seconds, run


async def invoiced_amount(bench: Bench, account_number: str) -> Decimal:
    """The reseller's totalInvoiceBalance after its refresh: what the bill run posted."""
    shown = await bench.api.ok("GET", f"/v1/accounts/{account_number}")
    return Decimal(str(shown["metrics"]["totalInvoiceBalance"]))


async def place_orders(
    bench: Bench, sizes: Sizes, reseller: str, owners: list[str], plan_id: str, charge_id: str
) -> Measurement:
    """Every subscription, in orders of up to `sizes.per_order` for one owner each (the owners
    in turn), billed to `reseller`; objects are subscriptions."""

    async def order(client: int, k: int) -> tuple[bool, int, str | None]:
        owner = owners[k % sizes.owners]
        entries = [
            subscription_entry(owner, reseller, plan_id, charge_id, quantity_of(j))
            for j in sizes.in_order(k)
        ]
        body = {"orderDate": ORDER_DATE, "existingAccountNumber": owner, "subscriptions": entries}
        return outcome(await send(bench, "POST", "/v1/orders", body), len(entries))

    return await run_count(
        bench,
        ORDERS,
        order,
        sizes.orders,
        limit_seconds=sizes.bound(bench, ORDERS, COUNT_TIMEOUT_SECONDS, TINY_COUNT_TIMEOUT_SECONDS),
        label=f"{sizes.orders} orders",
    )


def largest_process_mb(measurements: Iterable[Measurement]) -> float:
    return max((m.rss.get("serverRssPeakProcessMb") or 0.0 for m in measurements), default=0.0)


async def run(bench: Bench) -> list[dict[str, Any]]:
    sizes = Sizes.of(bench)
    clients = bench.config.clients
    plan_id, charge_id = await seat_plan(bench)
    reseller = await bench.api.create_account("Reseller", True)
    owners = [a["accountNumber"] for a in await new_accounts(bench, "Customer", sizes.owners, True)]
    bench.describe(
        ORDERS,
        f"{clients} clients, {sizes.subscriptions} subscriptions in orders of up to "
        f"{sizes.per_order} for {sizes.owners} partner owners, all billed to one partner reseller",
    )
    bench.touch(ORDERS, reseller["accountNumber"], *owners)
    bench.reconciliation_is_target = True
    orders = await place_orders(bench, sizes, reseller["accountNumber"], owners, plan_id, charge_id)

    bench.describe(BILL_RUN, "one account-level bill run for the reseller (autoPost), polled")
    limit = sizes.bound(bench, BILL_RUN, BILL_RUN_TIMEOUT_SECONDS, TINY_BILL_RUN_TIMEOUT_SECONDS)
    async with bench.rss.sampling():
        seconds, billed = await bill_run(bench, reseller["accountId"], limit)
    measured = single(BILL_RUN, seconds, billed["status"] == "Posted", orders.objects, None)
    measured.rss = bench.rss.as_json()
    bench.measurements.append(measured)

    bench.describe(REFRESH, f"on-demand refresh of all {sizes.owners + 1} accounts afterwards")
    async with bench.rss.sampling():
        wall, answers = await refresh_all(bench, [reseller["accountNumber"], *owners])
    refreshed = single(REFRESH, wall, True, len(answers), None)
    refreshed.rss = bench.rss.as_json()
    bench.measurements.append(refreshed)
    mine = answers[reseller["accountNumber"]]
    amount = await invoiced_amount(bench, reseller["accountNumber"])
    seats = sum(quantity_of(j) for j in range(sizes.subscriptions))
    expected = SEAT_PRICE * seats if orders.objects == sizes.subscriptions else None
    rate = orders.objects / orders.seconds if orders.seconds else 0.0
    rss = largest_process_mb((orders, measured, refreshed))
    bench.notes += [
        f"Sizes: {sizes.subscriptions} subscriptions in {sizes.orders} orders of up to "
        f"{sizes.per_order} for {sizes.owners} owners by {clients} clients (a count, not a time: "
        "--seconds and --rounds do not apply).",
        f"Orders: {orders.ok} of {sizes.orders} ({orders.objects} subscriptions) in "
        f"{orders.seconds:.2f} s = {rate:.1f} subscriptions/s, "
        f"{orders.ok / orders.seconds if orders.seconds else 0.0:.1f} orders/s; lock errors "
        f"{orders.lock_errors}; errors {orders.errors or 'none'}.",
        f"Bill run: {billed['status']} in {seconds:.2f} s (create to done, polled every "
        f"{POLL_SECONDS * 1000:.0f} ms), {billed.get('invoiceCount')} invoice(s), "
        f"{billed.get('numberOfErrors')} subscription(s) not billed, invoiced {amount} "
        f"(expected {expected}).",
        f"Refresh of the reseller: {mine['durationMs']} ms on the server ({mine['ms']} ms "
        f"round trip, {mine['foldedChanges']} changes folded); all {len(answers)} accounts "
        f"refreshed in {wall * 1000:.0f} ms by {clients} clients.",
    ]
    return [
        {
            "target": f">= {TARGET_SUBSCRIPTIONS_PER_SECOND:,} subscriptions/s ordered",
            "measured": f"{orders.objects:,} in {orders.seconds:,.1f} s = {rate:,.0f}/s",
            "met": rate >= TARGET_SUBSCRIPTIONS_PER_SECOND,
        },
        {
            "target": "bill run posted",
            "measured": f"{billed['status']}, {billed.get('numberOfErrors')} not billed",
            "met": billed["status"] == "Posted" and billed.get("numberOfErrors") == 0,
        },
        {
            "target": f"bill run of the reseller <= {TARGET_BILL_RUN_SECONDS:.0f} s",
            "measured": f"{seconds:,.2f} s for {orders.objects:,} subscriptions",
            "met": seconds <= TARGET_BILL_RUN_SECONDS,
        },
        {
            "target": "reseller invoiced = seats x price",
            "measured": str(amount),
            "met": expected is not None and amount == expected,
        },
        {
            "target": f"server RSS <= {TARGET_RSS_MB:.0f} MB per process (every phase)",
            "measured": f"{rss:,.1f} MB (largest process)",
            "met": 0 < rss <= TARGET_RSS_MB,
        },
        {
            "target": f"refresh of the reseller afterwards <= {TARGET_REFRESH_MS:,.0f} ms "
            "on the server",
            "measured": f"{mine['durationMs']:,.1f} ms ({mine['foldedChanges']:,} changes folded)",
            "met": mine["durationMs"] <= TARGET_REFRESH_MS,
        },
        zero_target("zero lock errors on partner accounts (orders)", orders.lock_errors),
        zero_target(
            "zero failed orders", orders.requests - orders.ok + (sizes.orders - orders.requests)
        ),
    ]
