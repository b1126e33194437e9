"""Every row-lock wait is bounded by the tenant's `lockWaitMs` (core/locks.py).

A test connection holds a business row locked — an invoice, a payment, a credit memo, a
subscription, an account (as a `partnerAccount` switch holds it) — while the API is called on
connections of its own: each call waits about `lockWaitMs`, answers the lock-competition error
in the envelope, and has written nothing.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.core.errors import LOCK_COMPETITION_MESSAGE
from partnerbill.core.locks import bounded_lock_wait
from partnerbill.subscriptions.service import lock_subscription
from tests.catalog_fixtures import (
    new_account,
    order_body,
    plan_charge_ids,
    rate_plan,
    recurring_charge,
)
from tests.helpers import ApiClient, assert_envelope, invoice_body
from tests.subscription_billing import legacy_subscribe_body

LOCK_WAIT_MS = 300
# Above the bound: the request's own work, the in-process app, a loaded 2-core machine.
SLACK_SECONDS = 2.5
# Tables a refused write could have written to.
WRITTEN = (
    "invoices",
    "invoice_items",
    "payments",
    "applications",
    "refunds",
    "credit_memos",
    "credit_memo_items",
    "subscriptions",
    "rate_plan_charges",
    "orders",
    "metrics_changes",
)


@asynccontextmanager
async def holding(engine: AsyncEngine, table: str, row_id: str, lock: str) -> AsyncIterator[None]:
    """Another transaction holds the row locked while the block runs."""
    async with engine.connect() as holder:
        await holder.begin()
        held = await holder.execute(
            text(f"SELECT 1 FROM {table} WHERE id = :id {lock}"), {"id": row_id}
        )
        assert held.rowcount == 1
        yield
        await holder.rollback()


async def written(engine: AsyncEngine, api: ApiClient) -> dict[str, int]:
    async with engine.connect() as conn:
        return {
            table: int(
                await conn.scalar(
                    text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t"), {"t": api.tenant.id}
                )
                or 0
            )
            for table in WRITTEN
        }


async def assert_lock_competition(
    api: ApiClient, engine: AsyncEngine, method: str, path: str, body: Any = None
) -> None:
    before = await written(engine, api)
    started = time.monotonic()
    # Without a bound the call would wait for the holder, which waits for the call: fail instead.
    status, payload = await asyncio.wait_for(
        api.call(method, path, body, expect=None), LOCK_WAIT_MS / 1000 + SLACK_SECONDS + 5
    )
    elapsed = time.monotonic() - started
    assert status == 200, payload
    (reason,) = assert_envelope(payload, 50)
    assert reason["message"] == LOCK_COMPETITION_MESSAGE
    assert LOCK_WAIT_MS / 1000 <= elapsed < LOCK_WAIT_MS / 1000 + SLACK_SECONDS, (path, elapsed)
    assert await written(engine, api) == before, path


@pytest.fixture
async def bounded(api: ApiClient) -> ApiClient:
    await api.ok("PUT", "/v1/partnerbill/settings", {"lockWaitMs": LOCK_WAIT_MS})
    return api


async def _posted_invoice(api: ApiClient, account: dict[str, Any]) -> dict[str, Any]:
    invoice = await api.ok("POST", "/v1/invoices", invoice_body(account["accountNumber"], "50.00"))
    items = await api.ok("GET", f"/v1/invoices/{invoice['id']}/items")
    invoice["itemIds"] = [item["id"] for item in items["invoiceItems"]]
    return invoice


def _payment(account: dict[str, Any], amount: str, *invoices: tuple[str, str]) -> dict[str, Any]:
    return {
        "accountId": account["accountId"],
        "amount": amount,
        "currency": "USD",
        "type": "External",
        "invoices": [{"invoiceId": key, "amount": value} for key, value in invoices],
    }


@pytest.mark.parametrize("partner", [False, True])
async def test_a_held_invoice_bounds_payments_memos_and_status_changes(
    bounded: ApiClient, engine: AsyncEngine, partner: bool
) -> None:
    api = bounded
    account = await api.create_account(partner=partner)
    invoice = await _posted_invoice(api, account)
    payment = await api.ok("POST", "/v1/payments", _payment(account, "20.00"))

    async with holding(engine, "invoices", invoice["id"], "FOR UPDATE"):
        await assert_lock_competition(
            api, engine, "POST", "/v1/payments", _payment(account, "5.00", (invoice["id"], "5"))
        )
        await assert_lock_competition(
            api,
            engine,
            "PUT",
            f"/v1/payments/{payment['id']}/apply",
            {"invoices": [{"invoiceId": invoice["id"], "amount": "5"}]},
        )
        await assert_lock_competition(
            api,
            engine,
            "POST",
            f"/v1/credit-memos/invoice/{invoice['id']}",
            {"items": [{"invoiceItemId": invoice["itemIds"][0], "amount": "1"}]},
        )
        await assert_lock_competition(api, engine, "PUT", f"/v1/invoices/{invoice['id']}/unpost")

    # Released: the same writes go through.
    await api.ok(
        "PUT",
        f"/v1/payments/{payment['id']}/apply",
        {"invoices": [{"invoiceId": invoice["id"], "amount": "5"}]},
    )
    assert (await api.ok("GET", f"/v1/invoices/{invoice['id']}"))["balance"] == 45


async def test_a_held_payment_bounds_its_apply_refund_and_cancel(
    bounded: ApiClient, engine: AsyncEngine
) -> None:
    api = bounded
    account = await api.create_account()
    invoice = await _posted_invoice(api, account)
    payment = await api.ok("POST", "/v1/payments", _payment(account, "20.00"))

    async with holding(engine, "payments", payment["id"], "FOR UPDATE"):
        await assert_lock_competition(
            api,
            engine,
            "PUT",
            f"/v1/payments/{payment['id']}/apply",
            {"invoices": [{"invoiceId": invoice["id"], "amount": "5"}]},
        )
        await assert_lock_competition(
            api,
            engine,
            "POST",
            f"/v1/payments/{payment['id']}/refunds",
            {"totalAmount": "1.00", "type": "External"},
        )
        await assert_lock_competition(api, engine, "PUT", f"/v1/payments/{payment['id']}/cancel")
    assert (await api.ok("GET", f"/v1/payments/{payment['id']}"))["status"] == "Processed"


async def test_a_held_credit_memo_bounds_its_apply_and_post(
    bounded: ApiClient, engine: AsyncEngine
) -> None:
    api = bounded
    account = await api.create_account()
    invoice = await _posted_invoice(api, account)
    memo = await api.ok(
        "POST",
        f"/v1/credit-memos/invoice/{invoice['id']}",
        {"items": [{"invoiceItemId": invoice["itemIds"][0], "amount": "3"}]},
    )
    assert memo["status"] == "Draft"

    async with holding(engine, "credit_memos", memo["id"], "FOR UPDATE"):
        await assert_lock_competition(api, engine, "PUT", f"/v1/credit-memos/{memo['id']}/post")
    posted = await api.ok("PUT", f"/v1/credit-memos/{memo['id']}/post")
    async with holding(engine, "credit_memos", memo["id"], "FOR NO KEY UPDATE"):
        await assert_lock_competition(
            api,
            engine,
            "PUT",
            f"/v1/credit-memos/{posted['id']}/apply",
            {"invoices": [{"invoiceId": invoice["id"], "amount": "1"}]},
        )


async def test_a_held_subscription_bounds_orders_and_subscription_actions(
    bounded: ApiClient, engine: AsyncEngine
) -> None:
    api = bounded
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    order = await api.ok(
        "POST", "/v1/orders", order_body(account["accountNumber"], plan, "2026-01-01")
    )
    (number,) = order["subscriptionNumbers"]
    sub = await api.ok("GET", f"/v1/subscriptions/{number}")

    async with holding(engine, "subscriptions", sub["id"], "FOR UPDATE"):
        await assert_lock_competition(
            api,
            engine,
            "PUT",
            f"/v1/subscriptions/{number}/cancel",
            {"cancellationPolicy": "SpecificDate", "cancellationEffectiveDate": "2026-03-01"},
        )
        await assert_lock_competition(
            api,
            engine,
            "POST",
            "/v1/orders",
            {
                "orderDate": "2026-02-01",
                "existingAccountNumber": account["accountNumber"],
                "subscriptions": [
                    {
                        "subscriptionNumber": number,
                        "orderActions": [
                            {
                                "type": "CancelSubscription",
                                "cancelSubscription": {
                                    "cancellationPolicy": "SpecificDate",
                                    "cancellationEffectiveDate": "2026-03-01",
                                },
                            }
                        ],
                    }
                ],
            },
        )
    assert (await api.ok("GET", f"/v1/subscriptions/{number}"))["status"] == "Active"


async def test_an_account_held_for_a_flag_switch_bounds_document_writes(
    bounded: ApiClient, engine: AsyncEngine
) -> None:
    api = bounded
    account = await api.create_account(partner=True)
    async with holding(engine, "accounts", account["accountId"], "FOR UPDATE"):
        await assert_lock_competition(api, engine, "POST", "/v1/payments", _payment(account, "1"))


async def test_an_account_held_bounds_new_subscriptions_flag_switches_and_profile_edits(
    bounded: ApiClient, engine: AsyncEngine
) -> None:
    api = bounded
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    (charge_id,) = await plan_charge_ids(api, plan)
    body = legacy_subscribe_body(account["accountNumber"], plan, charge_id)
    path = f"/v1/accounts/{account['accountNumber']}"
    async with holding(engine, "accounts", account["accountId"], "FOR UPDATE"):
        await assert_lock_competition(api, engine, "POST", "/v1/subscriptions", body)
        await assert_lock_competition(api, engine, "PUT", path, {"name": "Renamed"})
    # An in-flight document write holds the account FOR KEY SHARE: a flag switch waits it out.
    async with holding(engine, "accounts", account["accountId"], "FOR KEY SHARE"):
        await assert_lock_competition(api, engine, "PUT", path, {"partnerAccount": True})


async def test_the_bound_is_local_to_the_locking_statements(
    bounded: ApiClient, engine: AsyncEngine
) -> None:
    api = bounded
    account = await new_account(api)
    plan = await rate_plan(api, recurring_charge("10"))
    order = await api.ok(
        "POST", "/v1/orders", order_body(account["accountNumber"], plan, "2026-01-01")
    )
    (number,) = order["subscriptionNumbers"]
    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL statement_timeout = '7s'"))
        await lock_subscription(conn, api.tenant, number)
        assert await conn.scalar(text("SHOW statement_timeout")) == "7s"
        # A business error inside the block resets the bound too.
        with pytest.raises(LookupError):
            async with bounded_lock_wait(conn, api.tenant):
                assert await conn.scalar(text("SHOW statement_timeout")) == f"{LOCK_WAIT_MS}ms"
                raise LookupError
        assert await conn.scalar(text("SHOW statement_timeout")) == "7s"
        # A statement longer than the bound still runs to its end outside a block.
        await conn.execute(text("SELECT pg_sleep(0.4)"))
