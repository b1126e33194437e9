"""Test helpers: a thin authenticated API client and request builders."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from partnerbill.core.json import dumps, loads
from partnerbill.core.tenants import Tenant


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
        payload = loads(response.content) if response.content else {}
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
