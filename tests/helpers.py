"""Test helpers: a thin authenticated API client, request builders, row counts."""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.billing.schemas import CreateInvoiceItem, CreateInvoiceRequest
from partnerbill.core import auth, db
from partnerbill.core.json import dumps, loads
from partnerbill.core.tables import idempotency_keys
from partnerbill.core.tenants import Tenant, create_tenant
from partnerbill.settings import get_settings
from partnerbill.tables.accounts import accounts
from partnerbill.tables.billing import invoices


@dataclass(frozen=True)
class TenantCredentials:
    tenant: Tenant
    client_id: str
    client_secret: str


class ApiClient:
    """Calls the API as one tenant; bodies go out and come back with exact Decimals."""

    def __init__(self, http: httpx.AsyncClient, credentials: TenantCredentials) -> None:
        self.http = http
        self.credentials = credentials
        self.token = ""

    @property
    def tenant(self) -> Tenant:
        return self.credentials.tenant

    async def authenticate(self) -> None:
        response = await self.http.post(
            "/oauth/token",
            data={
                "client_id": self.credentials.client_id,
                "client_secret": self.credentials.client_secret,
                "grant_type": "client_credentials",
            },
        )
        assert response.status_code == 200, response.text
        self.token = response.json()["access_token"]

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        expect: int | None = 200,
    ) -> tuple[int, dict[str, Any]]:
        all_headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        content = None
        if body is not None:
            content = dumps(body)
            all_headers["Content-Type"] = "application/json"
        response = await self.http.request(method, path, content=content, headers=all_headers)
        # Every answer is JSON but a file's bytes (`GET /v1/files/{id}`).
        json_answer = response.headers.get("content-type", "").startswith("application/json")
        payload = loads(response.content) if response.content and json_answer else {}
        if expect is not None:
            assert response.status_code == expect, (response.status_code, payload)
        return response.status_code, payload

    async def ok(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """A call that must succeed (HTTP 200 and `success: true`)."""
        _, payload = await self.call(method, path, body)
        assert payload.get("success") is True, payload
        return payload

    async def create_account(self, *, partner: bool = False, **fields: Any) -> dict[str, Any]:
        body = {
            "name": "Test Account",
            "currency": "USD",
            "billToContact": {"firstName": "Ada", "lastName": "Lovelace"},
            "partnerAccount": partner,
            **fields,
        }
        return await self.ok("POST", "/v1/accounts", body)

    async def metrics(self, account_key: str) -> dict[str, Any]:
        return (await self.ok("GET", f"/v1/accounts/{account_key}"))["metrics"]

    async def refresh(self, account_key: str) -> dict[str, Any]:
        return await self.ok("POST", f"/v1/partnerbill/accounts/{account_key}/refresh-metrics")


def invoice_body(
    account_number: str,
    *amounts: str | Decimal,
    status: str = "Posted",
    invoice_date: str = "2026-11-01",
    **fields: Any,
) -> dict[str, Any]:
    return {
        "accountNumber": account_number,
        "invoiceDate": invoice_date,
        "status": status,
        "invoiceItems": [
            {"amount": str(amount), "serviceStartDate": invoice_date, "chargeName": f"item {i}"}
            for i, amount in enumerate(amounts or ("100.00",))
        ],
        **fields,
    }


TENANT_TABLES = ("accounts", "account_metrics", "invoices", "invoice_items", "metrics_changes")


async def tenant_rows(api: ApiClient) -> dict[str, int]:
    """Rows the tenant owns per table, read straight from PostgreSQL."""
    async with db.get_engine().connect() as conn:
        return {
            table: int(
                await conn.scalar(
                    text(f"SELECT count(*) FROM {table} WHERE tenant_id = :tenant"),
                    {"tenant": api.tenant.id},
                )
                or 0
            )
            for table in TENANT_TABLES
        }


async def new_tenant(engine: AsyncEngine) -> TenantCredentials:
    """Another fresh tenant with an OAuth client (the `tenant_credentials` fixture gives one)."""
    async with engine.begin() as conn:
        tenant = await create_tenant(conn, f"t-{uuid.uuid4().hex[:16]}")
        credentials = await auth.create_client(conn, tenant, "test")
    return TenantCredentials(tenant, credentials.client_id, credentials.client_secret)


# The arguments a zuora-sdk `_..._serialize` method needs besides the operation's own, as its
# public method passes them (no extra headers): for tests that read an answer raw.
SDK_SERIALIZE_DEFAULTS: dict[str, Any] = {
    "accept_encoding": None,
    "content_encoding": None,
    "authorization": None,
    "zuora_track_id": None,
    "zuora_version": None,
    "zuora_org_ids": None,
    "_request_auth": None,
    "_content_type": None,
    "_headers": None,
    "_host_index": 0,
}


async def new_tenant_on_own_engine(database_url: str) -> TenantCredentials:
    """A fresh tenant made on an engine of its own, for code on another event loop than the
    session engine's (a synchronous SDK test, a subprocess's fixture)."""
    engine = db.create_engine(database_url)
    try:
        return await new_tenant(engine)
    finally:
        await engine.dispose()


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


def one_item_invoice(
    amount: str | Decimal, day: date, status: str = "Posted", **account: str
) -> CreateInvoiceRequest:
    """A one-item standalone invoice for the service layer; `account`: account_id= or
    account_number=."""
    return CreateInvoiceRequest(
        **account,
        invoice_date=day,
        status=status,
        invoice_items=[CreateInvoiceItem(amount=Decimal(amount), service_start_date=day)],
    )


@contextmanager
def distributed_form(on: bool) -> Iterator[None]:
    """`PARTNERBILL_DISTRIBUTED` as the process reads it, put back afterwards."""
    before = os.environ.get("PARTNERBILL_DISTRIBUTED")
    os.environ["PARTNERBILL_DISTRIBUTED"] = "true" if on else "false"
    get_settings.cache_clear()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PARTNERBILL_DISTRIBUTED")
        else:
            os.environ["PARTNERBILL_DISTRIBUTED"] = before
        get_settings.cache_clear()
