"""Settlement under real parallel HTTP against the real server (uvicorn, two worker processes).

Two payments applied to one invoice at once must never over-apply it: the invoice row is the lock
(docs/architecture.md). Partner accounts never see a lock-competition error; after a refresh
their metrics equal `recompute`. Throughput figures are printed, never asserted.
"""

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.core.tenants import Tenant
from partnerbill.metrics import service as metrics
from tests.helpers import ApiClient, TenantCredentials, assert_envelope, invoice_body

PARALLEL = 64
PARTNER = pytest.mark.parametrize("partner", [False, True], ids=["non-partner", "partner"])
CENT = Decimal("0.01")


@pytest.fixture
async def live_api(
    live_server: str, tenant_credentials: TenantCredentials, engine: AsyncEngine
) -> AsyncIterator[ApiClient]:
    """An authenticated client of the real server, able to hold PARALLEL requests in flight.

    The server may open a connection per request in flight, so this process first closes the
    idle connections of its own pool (PostgreSQL's max_connections is shared)."""
    await engine.dispose()
    limits = httpx.Limits(max_connections=PARALLEL * 2, max_keepalive_connections=PARALLEL * 2)
    async with httpx.AsyncClient(base_url=live_server, limits=limits, timeout=120) as http:
        client = ApiClient(http, tenant_credentials)
        await client.authenticate()
        yield client


async def new_account(api: ApiClient, *, partner: bool) -> tuple[str, str]:
    created = await api.create_account(partner=partner)
    return created["accountNumber"], created["accountId"]


def payment_body(account_id: str, amount: Decimal | str, *invoices: tuple[str, Any]) -> dict:
    return {
        "accountId": account_id,
        "amount": str(amount),
        "currency": "USD",
        "type": "External",
        "invoices": [{"invoiceId": key, "amount": str(value)} for key, value in invoices],
    }


def assert_payment(payment: dict[str, Any]) -> None:
    total = payment["appliedAmount"] + payment["unappliedAmount"] + payment["refundAmount"]
    assert total == payment["amount"], payment


def split(results: list[tuple[int, dict[str, Any]]]) -> tuple[list[dict], list[dict]]:
    """Successes and failures; no request may end in an HTTP error (no 500, no 409)."""
    ok: list[dict] = []
    failed: list[dict] = []
    for status, payload in results:
        assert status == 200, (status, payload)
        (ok if payload["success"] else failed).append(payload)
    return ok, failed


def categories(failed: list[dict[str, Any]]) -> dict[int, int]:
    found: dict[int, int] = {}
    for payload in failed:
        category = payload["reasons"][0]["code"] % 100
        found[category] = found.get(category, 0) + 1
    return found


async def exact_metrics(
    engine: AsyncEngine, tenant: Tenant, account_id: str
) -> metrics.AccountMetrics:
    """The stored metrics, checked equal to `recompute` with nothing pending."""
    async with engine.begin() as conn:
        stored = await metrics.read_metrics(conn, tenant, account_id)
        recomputed = await metrics.recompute(conn, tenant, account_id)
    assert stored.metrics == recomputed
    assert stored.pending_changes == 0
    return recomputed


async def ledger_consistent(engine: AsyncEngine, tenant: Tenant, account_id: str) -> None:
    """Every payment's applied amount is the sum of its ledger rows (and a canceled payment has
    none left); every invoice's balance is its amount minus the sum of its ledger rows."""
    async with engine.connect() as conn:
        payments = await conn.execute(
            text(
                "SELECT p.payment_number, p.status, p.amount, p.applied_amount, p.refund_amount, "
                "coalesce((SELECT sum(a.amount) FROM applications a WHERE a.tenant_id = "
                "p.tenant_id AND a.source_id = p.id), 0) AS ledger "
                "FROM payments p WHERE p.tenant_id = :t AND p.account_id = :a"
            ),
            {"t": tenant.id, "a": account_id},
        )
        for row in payments:
            assert row.applied_amount == row.ledger, row
            assert 0 <= row.applied_amount + row.refund_amount <= row.amount, row
            if row.status == "Canceled":
                assert row.ledger == 0, row
        invoices = await conn.execute(
            text(
                "SELECT i.invoice_number, i.amount, i.balance, "
                "coalesce((SELECT sum(a.amount) FROM applications a WHERE a.tenant_id = "
                "i.tenant_id AND a.target_id = i.id), 0) AS ledger "
                "FROM invoices i WHERE i.tenant_id = :t AND i.account_id = :a"
            ),
            {"t": tenant.id, "a": account_id},
        )
        for row in invoices:
            assert row.balance == row.amount - row.ledger, row
            assert 0 <= row.balance <= row.amount, row


async def deadlocks(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            await conn.scalar(
                text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
            )
            or 0
        )


async def post_invoices(
    api: ApiClient, number: str, amounts: list[Decimal], *, parallel: int = 4
) -> list[dict[str, Any]]:
    """Posted invoices via `POST /v1/invoices/batch`, 50 per call, in order."""
    chunks = [amounts[i : i + 50] for i in range(0, len(amounts), 50)]
    gate = asyncio.Semaphore(parallel)

    async def one(chunk: list[Decimal]) -> list[dict[str, Any]]:
        async with gate:
            body = {"invoices": [invoice_body(number, amount) for amount in chunk]}
            created = await api.ok("POST", "/v1/invoices/batch", body)
        assert all(invoice["status"] == "Posted" for invoice in created["invoices"])
        return list(created["invoices"])

    return [invoice for batch in await asyncio.gather(*map(one, chunks)) for invoice in batch]


# -- (a) 64 parallel payments on one invoice -------------------------------------------------------


@PARTNER
async def test_parallel_payments_never_over_apply_one_invoice(
    live_api: ApiClient, engine: AsyncEngine, partner: bool
) -> None:
    number, account_id = await new_account(live_api, partner=partner)
    invoice = await live_api.ok("POST", "/v1/invoices", invoice_body(number, "100.00"))
    body = payment_body(account_id, "10.00", (invoice["id"], "10.00"))

    results = await asyncio.gather(
        *(live_api.call("POST", "/v1/payments", body, expect=None) for _ in range(PARALLEL))
    )

    ok, failed = split(results)
    print(
        f"\n64 payments on one invoice ({'partner' if partner else 'non-partner'}): "
        f"{len(ok)} succeeded, failures by category {categories(failed)}"
    )
    assert len(ok) == 10
    for payload in failed:
        assert_envelope(payload, 30)
    for payment in ok:
        assert_payment(payment)
        assert payment["appliedAmount"] == Decimal("10.00")
    assert (await live_api.ok("GET", f"/v1/invoices/{invoice['id']}"))["balance"] == 0
    listed = await live_api.ok("GET", f"/v1/payments?accountId={account_id}&pageSize=40")
    assert len(listed["payments"]) == 10
    if partner:
        await live_api.refresh(number)
    found = await exact_metrics(engine, live_api.tenant, account_id)
    assert found.total_invoice_balance == 0
    assert found.unapplied_payment_amount == 0
    await ledger_consistent(engine, live_api.tenant, account_id)


# -- (b) 64 parallel applications of 64 unapplied payments to one invoice --------------------------


@PARTNER
async def test_parallel_applies_never_over_apply_one_invoice(
    live_api: ApiClient, engine: AsyncEngine, partner: bool
) -> None:
    number, account_id = await new_account(live_api, partner=partner)
    invoice = await live_api.ok("POST", "/v1/invoices", invoice_body(number, "100.00"))
    payments = [
        await live_api.ok("POST", "/v1/payments", payment_body(account_id, "10.00"))
        for _ in range(PARALLEL)
    ]
    body = {"invoices": [{"invoiceNumber": invoice["invoiceNumber"], "amount": "10.00"}]}

    results = await asyncio.gather(
        *(
            live_api.call("PUT", f"/v1/payments/{p['number']}/apply", body, expect=None)
            for p in payments
        )
    )

    ok, failed = split(results)
    print(
        f"\n64 applies to one invoice ({'partner' if partner else 'non-partner'}): "
        f"{len(ok)} succeeded, failures by category {categories(failed)}"
    )
    assert len(ok) == 10
    for payload in failed:
        assert_envelope(payload, 30)
    assert (await live_api.ok("GET", f"/v1/invoices/{invoice['id']}"))["balance"] == 0
    applied = 0
    for payment in payments:
        read = await live_api.ok("GET", f"/v1/payments/{payment['id']}")
        assert_payment(read)
        applied += read["appliedAmount"] == Decimal("10.00")
    assert applied == 10
    if partner:
        await live_api.refresh(number)
    found = await exact_metrics(engine, live_api.tenant, account_id)
    assert found.total_invoice_balance == 0
    assert found.unapplied_payment_amount == Decimal("540.00")
    await ledger_consistent(engine, live_api.tenant, account_id)


# -- (c) apply/unapply storm on one partner account ------------------------------------------------


async def test_apply_unapply_storm_on_partner_account(
    live_api: ApiClient, engine: AsyncEngine
) -> None:
    number, account_id = await new_account(live_api, partner=True)
    invoices = await post_invoices(live_api, number, [Decimal("100.00")] * 10)
    payments = [
        await live_api.ok("POST", "/v1/payments", payment_body(account_id, "80.00"))
        for _ in range(20)
    ]
    deadlocks_before = await deadlocks(engine)
    clients, operations = 32, 15

    async def client(seed: int) -> list[tuple[int, dict[str, Any]]]:
        rng = random.Random(seed)
        done = []
        for _ in range(operations):
            payment = rng.choice(payments)
            targets = rng.sample(invoices, rng.choice((1, 1, 2)))
            if rng.random() < 0.6:
                action, top = "apply", 999
            else:
                action, top = "unapply", 600
            body = {
                "invoices": [
                    {"invoiceId": i["id"], "amount": str(rng.randint(1, top) * CENT)}
                    for i in targets
                ]
            }
            done.append(
                await live_api.call(
                    "PUT", f"/v1/payments/{payment['id']}/{action}", body, expect=None
                )
            )
        return done

    started = time.perf_counter()
    results = [r for batch in await asyncio.gather(*map(client, range(clients))) for r in batch]
    elapsed = time.perf_counter() - started

    ok, failed = split(results)
    print(
        f"\nstorm: {len(results)} apply/unapply in {elapsed:.1f} s, {len(ok)} succeeded, "
        f"failures by category {categories(failed)}"
    )
    assert ok, "nothing succeeded"
    for payload in failed:
        assert_envelope(payload, 30)  # over-apply or over-unapply; never a lock error
    for payment in ok:
        assert_payment(payment)
    await live_api.refresh(number)
    found = await exact_metrics(engine, live_api.tenant, account_id)
    for payment in payments:
        assert_payment(await live_api.ok("GET", f"/v1/payments/{payment['id']}"))
    await ledger_consistent(engine, live_api.tenant, account_id)
    async with engine.connect() as conn:
        outstanding = await conn.scalar(
            text(
                "SELECT sum(balance) FROM invoices WHERE tenant_id = :t AND account_id = :a "
                "AND status = 'Posted'"
            ),
            {"t": live_api.tenant.id, "a": account_id},
        )
    assert found.total_invoice_balance == outstanding
    assert found.unapplied_payment_amount == Decimal("1600.00") - (Decimal("1000.00") - outstanding)
    await asyncio.sleep(1.5)  # backends flush their statistics at most once a second
    assert await deadlocks(engine) == deadlocks_before


# -- cancel racing an apply of the same payment ----------------------------------------------------


async def test_cancel_racing_an_apply_leaves_no_application_on_a_canceled_payment(
    live_api: ApiClient, engine: AsyncEngine
) -> None:
    """A cancel locks the payment before it reads which applications to reverse, so an apply of
    the same payment arriving meanwhile waits for the cancel and then finds the payment Canceled:
    a Canceled payment never has anything applied."""
    number, account_id = await new_account(live_api, partner=False)
    first = await live_api.ok("POST", "/v1/invoices", invoice_body(number, "100.00"))
    second = await live_api.ok("POST", "/v1/invoices", invoice_body(number, "100.00"))
    payment = await live_api.ok(
        "POST", "/v1/payments", payment_body(account_id, "50.00", (first["id"], "10.00"))
    )
    tenant = live_api.tenant

    async with engine.connect() as holder:
        transaction = await holder.begin()
        # Hold the first invoice, so the cancel stops after locking the payment.
        await holder.execute(
            text("SELECT id FROM invoices WHERE tenant_id = :t AND id = :i FOR UPDATE"),
            {"t": tenant.id, "i": first["id"]},
        )
        cancel = asyncio.create_task(
            live_api.call("PUT", f"/v1/payments/{payment['id']}/cancel", expect=None)
        )
        await asyncio.sleep(0.5)
        assert not cancel.done()
        apply = asyncio.create_task(
            live_api.call(
                "PUT",
                f"/v1/payments/{payment['id']}/apply",
                {"invoices": [{"invoiceId": second["id"], "amount": "15.00"}]},
                expect=None,
            )
        )
        await asyncio.sleep(0.5)
        assert not apply.done(), "the apply must wait for the cancel, which holds the payment"
        await transaction.rollback()
    status, canceled = await asyncio.wait_for(cancel, timeout=10)
    assert status == 200 and canceled["status"] == "Canceled", canceled
    status, applied = await asyncio.wait_for(apply, timeout=10)
    assert status == 200 and applied["success"] is False, applied
    assert applied["reasons"][0]["code"] % 100 == 30, applied

    read = await live_api.ok("GET", f"/v1/payments/{payment['id']}")
    assert_payment(read)
    assert read["status"] == "Canceled" and read["appliedAmount"] == 0, read
    assert (await live_api.ok("GET", f"/v1/invoices/{second['id']}"))["balance"] == Decimal(
        "100.00"
    )
    await ledger_consistent(engine, tenant, account_id)
    await exact_metrics(engine, tenant, account_id)


# -- (d) the seed use case and the throughput figures ----------------------------------------------


async def run_clients(
    clients: int, jobs: list[Callable[[], Awaitable[tuple[int, dict[str, Any]]]]]
) -> tuple[list[tuple[int, dict[str, Any]]], float]:
    """Run `jobs` on `clients` parallel workers; the results and the seconds it took."""
    queue = list(reversed(jobs))
    results: list[tuple[int, dict[str, Any]]] = []

    async def worker() -> None:
        while queue:
            job = queue.pop()
            results.append(await job())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return results, time.perf_counter() - started


async def test_partner_invoice_owner_with_2000_invoices_takes_parallel_payments(
    live_api: ApiClient, engine: AsyncEngine
) -> None:
    number, account_id = await new_account(live_api, partner=True)
    amounts = [Decimal(1000 + i % 500) * CENT for i in range(2000)]
    invoices = await post_invoices(live_api, number, amounts)
    assert len(invoices) == 2000
    # Every 10th invoice gets a posted credit memo of 1.00, applied in the parallel phase.
    credited = range(0, 2000, 10)
    gate = asyncio.Semaphore(8)

    async def credit_memo(i: int) -> dict[str, Any]:
        async with gate:
            items = await live_api.ok("GET", f"/v1/invoices/{invoices[i]['id']}/items")
            item = items["invoiceItems"][0]
            body = {
                "items": [{"invoiceItemId": item["id"], "amount": "1.00", "skuName": "Credit"}],
                "autoPost": True,
            }
            return await live_api.ok("POST", f"/v1/credit-memos/invoice/{invoices[i]['id']}", body)

    memos = dict(zip(credited, await asyncio.gather(*map(credit_memo, credited)), strict=True))
    await live_api.refresh(number)
    found = await exact_metrics(engine, live_api.tenant, account_id)
    assert found.total_invoice_balance == sum(amounts, Decimal(0))
    assert found.unapplied_credit_memo_amount == Decimal("1.00") * len(memos)

    # Payment i pays invoice i, leaving (i % 3) unpaid on it and (i % 2) * 0.50 unapplied; a
    # credited invoice takes its credit memo's 1.00 at the same time, from another client.
    Job = Callable[[], Awaitable[tuple[int, dict[str, Any]]]]

    def jobs(i: int) -> list[Job]:
        invoice = invoices[i]
        applied = invoice["amount"] - (i % 3) - (1 if i in memos else 0)
        body = payment_body(
            account_id, applied + Decimal("0.50") * (i % 2), (invoice["id"], applied)
        )
        found: list[Job] = [lambda: live_api.call("POST", "/v1/payments", body, expect=None)]
        if i in memos:
            path = f"/v1/credit-memos/{memos[i]['id']}/apply"
            apply = {"invoices": [{"invoiceId": invoice["id"], "amount": "1.00"}]}
            found.append(lambda: live_api.call("PUT", path, apply, expect=None))
        return found

    all_jobs = [job for i in range(len(invoices)) for job in jobs(i)]
    results, elapsed = await run_clients(16, all_jobs)

    ok, failed = split(results)
    payments = [p for p in ok if "unappliedAmount" in p and "creditMemoDate" not in p]
    print(
        f"\nseed use case: {len(payments)} payments with applications and "
        f"{len(ok) - len(payments)} credit memo applications on one partner account with "
        f"2,000 invoices, 16 clients, {elapsed:.1f} s: {len(payments) / elapsed:.0f} payments/s "
        f"({len(ok) / elapsed:.0f} settlement requests/s)"
    )
    assert failed == [], categories(failed)
    assert len(payments) == 2000
    for payment in payments:
        assert_payment(payment)
    await live_api.refresh(number)
    found = await exact_metrics(engine, live_api.tenant, account_id)
    assert found.total_invoice_balance == sum((Decimal(i % 3) for i in range(2000)), Decimal(0))
    assert found.unapplied_payment_amount == Decimal("0.50") * 1000
    assert found.unapplied_credit_memo_amount == 0
    await ledger_consistent(engine, live_api.tenant, account_id)


async def test_payment_throughput_partner_vs_non_partner(
    live_api: ApiClient, engine: AsyncEngine
) -> None:
    """A benchmark, printed and not asserted: 16 clients paying one account."""
    count = 800
    figures = {}
    for partner in (True, False):
        number, account_id = await new_account(live_api, partner=partner)

        def job(i: int, account_id: str = account_id) -> Any:
            body = payment_body(account_id, Decimal(100 + i) * CENT)
            return lambda: live_api.call("POST", "/v1/payments", body, expect=None)

        results, elapsed = await run_clients(16, [job(i) for i in range(count)])
        ok, failed = split(results)
        kind = "partner" if partner else "non-partner"
        figures[kind] = len(ok) / elapsed
        print(
            f"\n{kind}: {len(ok)} payments in {elapsed:.2f} s with 16 clients = "
            f"{figures[kind]:.0f} payments/s; failures by category {categories(failed)}"
        )
        if partner:
            assert failed == []
            await live_api.refresh(number)
        for payload in failed:
            assert_envelope(payload, 50)
        found = await exact_metrics(engine, live_api.tenant, account_id)
        assert found.unapplied_payment_amount == sum((p["amount"] for p in ok), Decimal(0))
    print(
        f"payments/s, 16 clients: partner {figures['partner']:.0f}, "
        f"non-partner {figures['non-partner']:.0f}"
    )
