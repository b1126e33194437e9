"""Helpers shared by the auth, idempotency, error, SDK and CLI tests (kept out of helpers.py)."""

import uuid
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.accounts.tables import accounts
from partnerbill.billing.tables import invoices
from partnerbill.core import auth
from partnerbill.core.tables import idempotency_keys
from partnerbill.core.tenants import create_tenant
from tests.helpers import ApiClient, TenantCredentials


async def new_tenant(engine: AsyncEngine) -> TenantCredentials:
    """Another fresh tenant with an OAuth client (the `tenant_credentials` fixture gives one)."""
    async with engine.begin() as conn:
        tenant = await create_tenant(conn, f"t-{uuid.uuid4().hex[:16]}")
        credentials = await auth.create_client(conn, tenant, "test")
    return TenantCredentials(tenant, credentials.client_id, credentials.client_secret)


async def client_for(http: httpx.AsyncClient, credentials: TenantCredentials) -> ApiClient:
    client = ApiClient(http, credentials)
    await client.authenticate()
    return client


async def count_accounts(engine: AsyncEngine, tenant_id: str) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            select(func.count()).select_from(accounts).where(accounts.c.tenant_id == tenant_id)
        )
    return int(count or 0)


async def count_invoices(engine: AsyncEngine, tenant_id: str) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            select(func.count()).select_from(invoices).where(invoices.c.tenant_id == tenant_id)
        )
    return int(count or 0)


async def idempotency_record(engine: AsyncEngine, key: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(idempotency_keys).where(idempotency_keys.c.key == key))
        ).one_or_none()
    return None if row is None else dict(row._mapping)


def account_body(**fields: Any) -> dict[str, Any]:
    return {
        "name": "Test Account",
        "currency": "USD",
        "billToContact": {"firstName": "Ada", "lastName": "Lovelace"},
        **fields,
    }


def assert_envelope(payload: dict[str, Any], category: int) -> list[dict[str, Any]]:
    """A Zuora failure envelope whose first reason has the given 2-digit category."""
    assert payload["success"] is False, payload
    reasons = payload["reasons"]
    assert isinstance(reasons, list) and reasons, payload
    for reason in reasons:
        assert isinstance(reason["code"], int), reason
        assert 10_000_000 <= reason["code"] <= 99_999_999, reason
        assert isinstance(reason["message"], str) and reason["message"], reason
    assert reasons[0]["code"] % 100 == category, reasons
    assert isinstance(payload["requestId"], str) and payload["requestId"], payload
    return reasons
