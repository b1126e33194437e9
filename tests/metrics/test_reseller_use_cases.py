"""Reseller and distributor use cases with real parallel orders (docs/architecture.md): many
`POST /v1/orders` at once against the real server (uvicorn, two worker processes), metrics
checked against `recompute` from documents.

- Reseller: one partner invoice owner, 20 partner subscription owners, 300 subscriptions created
  by 32 clients, then one account-level bill run, then a refresh of every account.
- Distributor: a partner invoice owner, 10 synchronous (non-partner) subscription owners.
- Owner transfers between two partner accounts in both directions at once.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
from bench.scenarios.reseller import SEAT_PRICE, seat_charge_body, subscription_entry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.billing.bill_runs import execute_bill_run
from partnerbill.core.tenants import Tenant
from partnerbill.metrics import service as metrics
from tests.helpers import ApiClient

PARALLEL = 32
ORDER_DATE = "2026-01-01"
# A run of parallel orders that has not finished by then is stuck (e.g. waiting for a lock).
CALLS_TIMEOUT = 50


# --- helpers ------------------------------------------------------------------------------------


async def _created(api: ApiClient, path: str, body: dict[str, Any]) -> str:
    status, payload = await api.call("POST", path, body, expect=None)
    assert status == 200 and payload.get("Success") is True, (status, payload)
    return str(payload["Id"])


async def seat_plan(api: ApiClient) -> tuple[str, str]:
    """A product rate plan with one monthly per-unit charge of 12.50 USD: (plan id, charge id)."""
    product_id = await _created(
        api,
        "/v1/object/product",
        {"Name": "Seats", "EffectiveStartDate": "2025-01-01", "EffectiveEndDate": "2036-01-01"},
    )
    plan_id = await _created(
        api, "/v1/object/product-rate-plan", {"Name": "Monthly", "ProductId": product_id}
    )
    charge_id = await _created(
        api,
        "/v1/object/product-rate-plan-charge",
        seat_charge_body(plan_id),
    )
    return plan_id, charge_id


async def new_account(api: ApiClient, *, partner: bool, name: str) -> tuple[str, str]:
    """(account number, account id)."""
    created = await api.create_account(partner=partner, name=name, billCycleDay=1)
    return str(created["accountNumber"]), str(created["accountId"])


def create_subscription_order(
    owner_number: str,
    invoice_owner_number: str,
    plan_id: str,
    charge_id: str,
    quantity: int,
) -> dict[str, Any]:
    """A CreateSubscription order: the owner orders, the invoice owner is billed."""
    return {
        "orderDate": ORDER_DATE,
        "existingAccountNumber": owner_number,
        "subscriptions": [
            subscription_entry(owner_number, invoice_owner_number, plan_id, charge_id, quantity)
        ],
    }


def owner_transfer_order(
    current_owner: str, subscription_number: str, destination: str
) -> dict[str, Any]:
    return {
        "orderDate": ORDER_DATE,
        "existingAccountNumber": current_owner,
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


async def in_parallel(
    calls: Sequence[Callable[[], Awaitable[tuple[int, dict[str, Any]]]]],
    parallel: int = PARALLEL,
    *,
    label: str,
) -> list[tuple[int, dict[str, Any]]]:
    """Run the calls with `parallel` clients at once; print the measured throughput."""
    gate = asyncio.Semaphore(parallel)

    async def one(call: Callable[[], Awaitable[tuple[int, dict[str, Any]]]]) -> Any:
        async with gate:
            return await call()

    started = time.perf_counter()
    results = await asyncio.wait_for(asyncio.gather(*(one(c) for c in calls)), CALLS_TIMEOUT)
    elapsed = time.perf_counter() - started
    print(
        f"\n[{label}] {len(calls)} requests, {parallel} clients: {elapsed:.2f} s, "
        f"{len(calls) / elapsed:.1f} orders/s"
    )
    return list(results)


def is_lock_competition(payload: dict[str, Any]) -> bool:
    return payload.get("success") is False and any(
        reason["code"] % 100 == 50 for reason in payload.get("reasons", [])
    )


def post_order(api: ApiClient, body: dict[str, Any]) -> Callable[[], Awaitable[Any]]:
    return lambda: api.call("POST", "/v1/orders", body, expect=None)


@asynccontextmanager
async def holding_shared_rows(
    engine: AsyncEngine, tenant: Tenant, account_ids: Sequence[str]
) -> AsyncIterator[None]:
    """The accounts' metrics rows FOR UPDATE and their account rows edited (FOR NO KEY UPDATE,
    as a profile edit takes), in one open transaction until the block ends. A partner write
    that touched any row all writers of the account share would wait here."""
    async with engine.connect() as conn:
        transaction = await conn.begin()
        for account in sorted(account_ids):
            locked = await conn.scalar(
                text(
                    "SELECT account_id FROM account_metrics "
                    "WHERE tenant_id = :t AND account_id = :a FOR UPDATE"
                ),
                {"t": tenant.id, "a": account},
            )
            assert locked == account
            await conn.execute(
                text("UPDATE accounts SET notes = 'edited' WHERE tenant_id = :t AND id = :a"),
                {"t": tenant.id, "a": account},
            )
        try:
            yield
        finally:
            await transaction.rollback()


async def stored_and_recomputed(
    engine: AsyncEngine, tenant: Tenant, account: str
) -> tuple[metrics.MetricsSnapshot, metrics.AccountMetrics]:
    async with engine.begin() as conn:
        return (
            await metrics.read_metrics(conn, tenant, account),
            await metrics.recompute(conn, tenant, account),
        )


async def owners_of(engine: AsyncEngine, tenant: Tenant, ids: Sequence[str]) -> dict[str, str]:
    """subscription id → (owner account id) straight from PostgreSQL."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT id, account_id FROM subscriptions WHERE tenant_id = :t AND id = ANY(:ids)"
            ),
            {"t": tenant.id, "ids": list(ids)},
        )
        return {row[0]: row[1] for row in rows}


# --- 1. reseller ---------------------------------------------------------------------------------


async def test_reseller_300_parallel_orders_one_bill_run_exact_metrics(
    live_api: ApiClient, engine: AsyncEngine
) -> None:
    tenant = live_api.tenant
    plan_id, charge_id = await seat_plan(live_api)
    reseller_number, reseller_id = await new_account(live_api, partner=True, name="Reseller")
    owners = await asyncio.gather(
        *(new_account(live_api, partner=True, name=f"Customer {i}") for i in range(20))
    )
    quantities = [1 + i % 7 for i in range(300)]
    bodies = [
        create_subscription_order(
            owners[i % 20][0], reseller_number, plan_id, charge_id, quantities[i]
        )
        for i in range(300)
    ]

    # While the orders run, the reseller's shared rows are held: no order may need them.
    async with holding_shared_rows(engine, tenant, [reseller_id]):
        results = await in_parallel(
            [post_order(live_api, b) for b in bodies], label="reseller CreateSubscription"
        )

    lock_errors = [p for _, p in results if is_lock_competition(p)]
    assert lock_errors == [], lock_errors[:3]
    for status, payload in results:
        assert status == 200 and payload["success"] is True, payload
    subscription_ids = [p["subscriptions"][0]["subscriptionId"] for _, p in results]
    assert len(set(subscription_ids)) == 300
    assert len({p["orderNumber"] for _, p in results}) == 300
    for i, (_, payload) in enumerate(results):
        (sub,) = payload["subscriptions"]
        assert sub["subscriptionOwnerNumber"] == owners[i % 20][0], payload
    expected_mrr = {
        owners[k][1]: sum((SEAT_PRICE * quantities[i] for i in range(k, 300, 20)), start=Decimal(0))
        for k in range(20)
    }

    # Partner owners: contractedMrr waits for the refresh; their changes are pending.
    before = await live_api.ok("GET", f"/v1/accounts/{owners[0][0]}")
    assert before["metrics"]["contractedMrr"] == 0
    assert before["metricsFreshness"]["pendingChanges"] == 15

    # One account-level bill run for the reseller, executed here instead of by a worker.
    run = await live_api.ok(
        "POST",
        "/v1/bill-runs",
        {
            "targetDate": ORDER_DATE,
            "billRunFilters": [{"filterType": "Account", "accountId": reseller_id}],
            "autoPost": True,
        },
    )
    started = time.perf_counter()
    await execute_bill_run(tenant, run["id"])
    print(f"\n[reseller bill run] 300 subscriptions in {time.perf_counter() - started:.2f} s")
    run = await live_api.ok("GET", f"/v1/bill-runs/{run['id']}")
    assert run["status"] == "Posted", run
    assert run["invoiceCount"] == 1, run

    async with engine.connect() as conn:
        invoice_rows = (
            await conn.execute(
                text(
                    "SELECT id, invoice_number, amount, status FROM invoices "
                    "WHERE tenant_id = :t AND account_id = :a"
                ),
                {"t": tenant.id, "a": reseller_id},
            )
        ).all()
        (invoice_row,) = invoice_rows
        per_subscription = dict(
            (
                await conn.execute(
                    text(
                        "SELECT subscription_id, count(*) FROM invoice_items "
                        "WHERE tenant_id = :t AND invoice_id = :i GROUP BY subscription_id"
                    ),
                    {"t": tenant.id, "i": invoice_row.id},
                )
            ).all()
        )
        other_invoices = await conn.scalar(
            text("SELECT count(*) FROM invoices WHERE tenant_id = :t AND account_id <> :a"),
            {"t": tenant.id, "a": reseller_id},
        )
    assert other_invoices == 0  # the owners are never billed: the reseller is
    assert set(per_subscription) == set(subscription_ids)
    assert set(per_subscription.values()) == {1}  # one month, one line each
    expected_amount = sum((SEAT_PRICE * q for q in quantities), start=Decimal(0))
    assert invoice_row.status == "Posted"
    assert invoice_row.amount == expected_amount

    # The same through the API, page by page.
    invoice = await live_api.ok("GET", f"/v1/invoices/{invoice_row.invoice_number}")
    assert invoice["amount"] == expected_amount
    seen: list[str] = []
    amount = Decimal(0)
    path: str | None = f"/v1/invoices/{invoice_row.id}/items?pageSize=40"
    pages = 0
    while path is not None:
        page = await live_api.ok("GET", path)
        pages += 1
        seen.extend(item["subscriptionId"] for item in page["invoiceItems"])
        amount += sum((Decimal(i["chargeAmount"]) for i in page["invoiceItems"]), Decimal(0))
        next_page = page.get("nextPage")
        path = httpx.URL(next_page).raw_path.decode() if next_page else None
    assert pages == 8
    assert sorted(seen) == sorted(subscription_ids)
    assert amount == expected_amount

    # Refresh every account, then every metric equals recompute from documents.
    accounts = [(reseller_number, reseller_id), *owners]
    refreshed = await asyncio.gather(*(live_api.refresh(number) for number, _ in accounts))
    assert all(r["lastMetricsUpdate"] for r in refreshed)
    for number, account in accounts:
        stored, recomputed = await stored_and_recomputed(engine, tenant, account)
        assert stored.metrics == recomputed, number
        assert stored.pending_changes == 0, number
        assert stored.last_metrics_update is not None, number
        shown = await live_api.ok("GET", f"/v1/accounts/{number}")
        assert shown["basicInfo"]["lastMetricsUpdate"] is not None
        if account == reseller_id:
            assert recomputed.total_invoice_balance == expected_amount
            assert shown["metrics"]["totalInvoiceBalance"] == expected_amount
            assert recomputed.contracted_mrr == 0
        else:
            assert recomputed.contracted_mrr == expected_mrr[account], number
            assert Decimal(shown["metrics"]["contractedMrr"]) == expected_mrr[account]
            assert recomputed.total_invoice_balance == 0


# --- 2. distributor ------------------------------------------------------------------------------


async def test_distributor_partner_invoice_owner_synchronous_subscription_owners(
    live_api: ApiClient, engine: AsyncEngine
) -> None:
    tenant = live_api.tenant
    plan_id, charge_id = await seat_plan(live_api)
    distributor_number, distributor_id = await new_account(
        live_api, partner=True, name="Distributor"
    )
    owners = await asyncio.gather(
        *(new_account(live_api, partner=False, name=f"Dealer {i}") for i in range(10))
    )
    count = 100
    quantities = [1 + i % 5 for i in range(count)]
    bodies = [
        create_subscription_order(
            owners[i % 10][0], distributor_number, plan_id, charge_id, quantities[i]
        )
        for i in range(count)
    ]

    async with holding_shared_rows(engine, tenant, [distributor_id]):
        results = await in_parallel(
            [post_order(live_api, b) for b in bodies], label="distributor CreateSubscription"
        )

    # A lock error can only come from a synchronous owner's own contention (each order has one
    # owner and the invoice owner, whose rows are held above, takes no lock); a retry succeeds.
    retried = 0
    for i, (status, payload) in enumerate(results):
        assert status == 200, payload
        if payload["success"] is True:
            continue
        assert is_lock_competition(payload), payload
        retried += 1
        results[i] = await live_api.call("POST", "/v1/orders", bodies[i])
        assert results[i][1]["success"] is True, results[i]
    print(f"[distributor] lock errors on synchronous owners, retried: {retried}")
    for _, payload in results:
        assert payload["success"] is True, payload

    # The synchronous owners' contractedMrr is current without any refresh.
    for k, (number, account) in enumerate(owners):
        expected = sum((SEAT_PRICE * quantities[i] for i in range(k, count, 10)), start=Decimal(0))
        stored, recomputed = await stored_and_recomputed(engine, tenant, account)
        assert stored.metrics == recomputed, number
        assert recomputed.contracted_mrr == expected, number
        assert stored.pending_changes == 0
        shown = await live_api.ok("GET", f"/v1/accounts/{number}")
        assert Decimal(shown["metrics"]["contractedMrr"]) == expected
        assert shown["basicInfo"]["lastMetricsUpdate"] is None

    # The distributor itself only logged changes; after a refresh it is exact.
    await live_api.refresh(distributor_number)
    stored, recomputed = await stored_and_recomputed(engine, tenant, distributor_id)
    assert stored.metrics == recomputed
    assert stored.last_metrics_update is not None
    async with engine.connect() as conn:
        billed_to_distributor = await conn.scalar(
            text(
                "SELECT count(*) FROM subscriptions "
                "WHERE tenant_id = :t AND invoice_owner_account_id = :a"
            ),
            {"t": tenant.id, "a": distributor_id},
        )
    assert billed_to_distributor == count


# --- 3. owner transfers, both directions at once -------------------------------------------------


async def test_concurrent_owner_transfers_both_directions_between_partner_accounts(
    live_api: ApiClient, engine: AsyncEngine
) -> None:
    tenant = live_api.tenant
    plan_id, charge_id = await seat_plan(live_api)
    (a_number, a_id), (b_number, b_id) = await asyncio.gather(
        new_account(live_api, partner=True, name="Partner A"),
        new_account(live_api, partner=True, name="Partner B"),
    )
    quantity_of: dict[str, int] = {}
    created: dict[str, list[tuple[str, str]]] = {a_id: [], b_id: []}  # owner → [(number, id)]
    bodies = [
        create_subscription_order(owner, owner, plan_id, charge_id, 1 + i % 9)
        for i, owner in enumerate([a_number] * 20 + [b_number] * 20)
    ]
    setup = await in_parallel([post_order(live_api, b) for b in bodies], label="transfer setup")
    for i, (_, payload) in enumerate(setup):
        assert payload["success"] is True, payload
        (sub,) = payload["subscriptions"]
        quantity_of[sub["subscriptionId"]] = 1 + i % 9
        created[sub["subscriptionOwnerId"]].append(
            (sub["subscriptionNumber"], sub["subscriptionId"])
        )
    assert len(created[a_id]) == len(created[b_id]) == 20

    # 16 of A's go to B while 16 of B's go to A: 32 orders in flight at once.
    a_to_b, b_to_a = created[a_id][:16], created[b_id][:16]
    transfers = [owner_transfer_order(a_number, n, b_number) for n, _ in a_to_b] + [
        owner_transfer_order(b_number, n, a_number) for n, _ in b_to_a
    ]
    async with holding_shared_rows(engine, tenant, [a_id, b_id]):
        results = await in_parallel(
            [post_order(live_api, t) for t in transfers], label="owner transfers A<->B"
        )
    lock_errors = [p for _, p in results if is_lock_competition(p)]
    assert lock_errors == [], lock_errors[:3]
    for status, payload in results:
        assert status == 200 and payload["success"] is True, payload
    for (_, payload), destination in zip(results, [b_number] * 16 + [a_number] * 16, strict=True):
        assert payload["subscriptions"][0]["subscriptionOwnerNumber"] == destination

    now_owned = await owners_of(engine, tenant, list(quantity_of))
    expected_owner = {sid: b_id for _, sid in a_to_b} | {sid: a_id for _, sid in b_to_a}
    for sid in quantity_of:
        assert now_owned[sid] == expected_owner.get(sid, now_owned[sid])
    assert sum(1 for o in now_owned.values() if o == a_id) == 20
    assert sum(1 for o in now_owned.values() if o == b_id) == 20

    for number, account in ((a_number, a_id), (b_number, b_id)):
        await live_api.refresh(number)
        stored, recomputed = await stored_and_recomputed(engine, tenant, account)
        expected = sum(
            (SEAT_PRICE * q for sid, q in quantity_of.items() if now_owned[sid] == account),
            start=Decimal(0),
        )
        assert stored.metrics == recomputed, number
        assert recomputed.contracted_mrr == expected, number
        assert stored.pending_changes == 0
        shown = await live_api.ok("GET", f"/v1/accounts/{number}")
        assert Decimal(shown["metrics"]["contractedMrr"]) == expected
