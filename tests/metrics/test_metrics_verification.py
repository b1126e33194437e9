"""The periodic verification of folded metrics: a refresh compares the stored metrics of a
partner account with a full recompute (stored plus what is still pending must equal it), counts
and heals a difference, and verifies a busy account too. Drift is injected by hand here; every
other test fails on any drift (conftest)."""

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.core.tenants import Tenant
from partnerbill.metrics import refresh as metric_refresh
from partnerbill.metrics import service as metrics
from tests.helpers import ApiClient, invoice_body


async def _partner_with_invoice(api: ApiClient) -> tuple[str, str]:
    created = await api.create_account(partner=True)
    number = created["accountNumber"]
    await api.ok("POST", "/v1/invoices", invoice_body(number, "10.00"))
    await api.refresh(number)
    return str(created["accountId"]), str(number)


async def _corrupt(engine: AsyncEngine, tenant: Tenant, account_id: str, **values: Any) -> None:
    """Stored metrics no write path produced, and a verification due at the next refresh."""
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                f"UPDATE account_metrics SET {assignments}, last_verified_at = NULL "
                "WHERE tenant_id = :tenant_id AND account_id = :account_id"
            ),
            {**values, "tenant_id": tenant.id, "account_id": account_id},
        )


async def _verify(engine: AsyncEngine, tenant: Tenant, account_id: str) -> bool | None:
    async with engine.begin() as conn:
        await conn.execute(
            text("SELECT FROM account_metrics WHERE tenant_id = :t AND account_id = :a FOR UPDATE"),
            {"t": tenant.id, "a": account_id},
        )
        return await metric_refresh.verify_account(conn, tenant, account_id)


async def _balance(api: ApiClient, number: str) -> Decimal:
    account = await api.ok("GET", f"/v1/accounts/{number}")
    return Decimal(str(account["metrics"]["totalInvoiceBalance"]))


async def _exact(engine: AsyncEngine, tenant: Tenant, account_id: str) -> bool:
    async with engine.connect() as conn:
        stored = await metrics.read_metrics(conn, tenant, account_id)
        return stored.metrics == await metrics.recompute(conn, tenant, account_id)


@pytest.mark.injects_drift
async def test_a_refresh_finds_counts_and_heals_drift(api: ApiClient, engine: AsyncEngine) -> None:
    account_id, number = await _partner_with_invoice(api)
    assert await _exact(engine, api.tenant, account_id)
    await _corrupt(engine, api.tenant, account_id, total_invoice_balance=Decimal("15.00"))
    before = metric_refresh.METRICS_DRIFT._value.get()
    await api.ok("POST", "/v1/invoices", invoice_body(number, "2.50"))
    await api.refresh(number)
    assert metric_refresh.METRICS_DRIFT._value.get() == before + 1
    assert await _exact(engine, api.tenant, account_id)
    assert await _balance(api, number) == Decimal("12.50")
    # Verified now: the next refresh within the interval does not compare again.
    await api.ok("POST", "/v1/invoices", invoice_body(number, "1.00"))
    await api.refresh(number)
    assert metric_refresh.METRICS_DRIFT._value.get() == before + 1


@pytest.mark.injects_drift
async def test_a_busy_account_is_verified_with_its_pending_changes(
    api: ApiClient, engine: AsyncEngine
) -> None:
    account_id, number = await _partner_with_invoice(api)
    # Pending: one more invoice, not folded yet. Stored plus pending equals the recompute.
    await api.ok("POST", "/v1/invoices", invoice_body(number, "4.00"))
    assert await _verify(engine, api.tenant, account_id) is True

    before = metric_refresh.METRICS_DRIFT._value.get()
    await _corrupt(engine, api.tenant, account_id, total_invoice_balance=Decimal("99.00"))
    assert await _verify(engine, api.tenant, account_id) is False
    assert metric_refresh.METRICS_DRIFT._value.get() == before + 1
    # Healed so that folding what is pending gives the exact figures.
    await api.refresh(number)
    assert await _exact(engine, api.tenant, account_id)


async def test_a_change_without_deltas_makes_the_refresh_recompute(
    api: ApiClient, engine: AsyncEngine
) -> None:
    account_id, number = await _partner_with_invoice(api)
    async with engine.begin() as conn:
        # A row that says nothing of what changed, beside a document written behind the API's
        # back: only a full recompute gets the figures right.
        await conn.execute(
            text(
                "UPDATE invoices SET balance = balance - 3 WHERE tenant_id = :t AND account_id = :a"
            ),
            {"t": api.tenant.id, "a": account_id},
        )
        await conn.execute(
            text("INSERT INTO metrics_changes (tenant_id, account_id) VALUES (:t, :a)"),
            {"t": api.tenant.id, "a": account_id},
        )
    assert await _verify(engine, api.tenant, account_id) is None
    await api.refresh(number)
    assert await _balance(api, number) == Decimal("7.00")
    assert await _exact(engine, api.tenant, account_id)
