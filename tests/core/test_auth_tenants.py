"""OAuth tokens, bearer checks, and tenant isolation over the in-process app."""

import base64
import hashlib
import hmac
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from partnerbill.core import auth
from partnerbill.core.tables import signing_keys
from partnerbill.core.tenants import Tenant
from tests.helpers import (
    ApiClient,
    TenantCredentials,
    assert_envelope,
    client_for,
    count_accounts,
    count_invoices,
    invoice_body,
    new_tenant,
)

AUTH_FAILED = 11
NOT_FOUND = 40


@pytest.fixture
async def http(app) -> Any:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(
        # Server errors come back as responses (as over real HTTP), not as raised exceptions.
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://partnerbill.test",
    ) as client:
        yield client


async def _signing_key(engine: AsyncEngine) -> bytes:
    """The server's token signing key, read from where every API process reads it."""
    async with engine.connect() as conn:
        key = await conn.scalar(
            select(signing_keys.c.secret).where(signing_keys.c.name == auth.ACCESS_TOKEN_KEY_NAME)
        )
    assert isinstance(key, bytes) and key
    return key


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _assert_unauthorized(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 401, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    payload = response.json()
    assert isinstance(payload["message"], str) and payload["message"]
    reasons = assert_envelope(payload, AUTH_FAILED)
    assert reasons[0]["message"] == payload["message"]
    return payload


# --- /oauth/token ------------------------------------------------------------------------------


async def test_token_endpoint_issues_bearer_token(
    http: httpx.AsyncClient, tenant_credentials: TenantCredentials
) -> None:
    response = await http.post(
        "/oauth/token",
        data={
            "client_id": tenant_credentials.client_id,
            "client_secret": tenant_credentials.client_secret,
            "grant_type": "client_credentials",
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    token = response.json()
    assert isinstance(token["access_token"], str) and len(token["access_token"]) > 20
    assert token["expires_in"] == 3600
    assert token["token_type"] == "bearer"
    assert f"tenant.{tenant_credentials.tenant.number}" in token["scope"].split()
    # The token works.
    me = await http.get(
        "/v1/partnerbill/settings", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert me.status_code == 200, me.text
    assert me.json()["success"] is True


async def test_token_grant_type_defaults_to_client_credentials(
    http: httpx.AsyncClient, tenant_credentials: TenantCredentials
) -> None:
    response = await http.post(
        "/oauth/token",
        data={
            "client_id": tenant_credentials.client_id,
            "client_secret": tenant_credentials.client_secret,
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "bearer"


async def test_two_tokens_for_one_client_differ(
    http: httpx.AsyncClient, tenant_credentials: TenantCredentials
) -> None:
    form = {
        "client_id": tenant_credentials.client_id,
        "client_secret": tenant_credentials.client_secret,
        "grant_type": "client_credentials",
    }
    first = (await http.post("/oauth/token", data=form)).json()["access_token"]
    second = (await http.post("/oauth/token", data=form)).json()["access_token"]
    assert first != second


async def test_wrong_secret_is_401_json(
    http: httpx.AsyncClient, tenant_credentials: TenantCredentials
) -> None:
    response = await http.post(
        "/oauth/token",
        data={
            "client_id": tenant_credentials.client_id,
            "client_secret": tenant_credentials.client_secret + "x",
            "grant_type": "client_credentials",
        },
    )
    payload = _assert_unauthorized(response)
    assert "access_token" not in payload


async def test_unknown_client_is_401_json(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/oauth/token",
        data={
            "client_id": "00000000-0000-0000-0000-000000000000",
            "client_secret": "nope",
            "grant_type": "client_credentials",
        },
    )
    _assert_unauthorized(response)


async def test_other_tenants_secret_does_not_work(
    http: httpx.AsyncClient, tenant_credentials: TenantCredentials, engine: AsyncEngine
) -> None:
    other = await new_tenant(engine)
    response = await http.post(
        "/oauth/token",
        data={
            "client_id": tenant_credentials.client_id,
            "client_secret": other.client_secret,
            "grant_type": "client_credentials",
        },
    )
    _assert_unauthorized(response)


async def test_unsupported_grant_type_is_rejected(
    http: httpx.AsyncClient, tenant_credentials: TenantCredentials
) -> None:
    response = await http.post(
        "/oauth/token",
        data={
            "client_id": tenant_credentials.client_id,
            "client_secret": tenant_credentials.client_secret,
            "grant_type": "password",
        },
    )
    assert response.status_code == 400, response.text
    reasons = assert_envelope(response.json(), 20)
    assert "grant_type" in reasons[0]["message"]


# --- bearer checks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc.def"],
)
async def test_missing_token_is_401(http: httpx.AsyncClient, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    _assert_unauthorized(await http.get("/v1/accounts/A00000001", headers=headers))
    _assert_unauthorized(
        await http.post(
            "/v1/accounts",
            json={
                "name": "x",
                "currency": "USD",
                "billToContact": {"firstName": "a", "lastName": "b"},
            },
            headers=headers,
        )
    )


async def test_expired_token_is_401(
    http: httpx.AsyncClient, engine: AsyncEngine, tenant_credentials: TenantCredentials
) -> None:
    key = await _signing_key(engine)
    expired = auth.issue_token(
        key, tenant_credentials.tenant, tenant_credentials.client_id, lifetime_seconds=-10
    )
    response = await http.get(
        "/v1/partnerbill/settings", headers={"Authorization": f"Bearer {expired}"}
    )
    payload = _assert_unauthorized(response)
    assert "expired" in payload["message"]
    # The same key with a future expiry is accepted: the rejection was about the expiry.
    fresh = auth.issue_token(
        key, tenant_credentials.tenant, tenant_credentials.client_id, lifetime_seconds=60
    )
    ok = await http.get("/v1/partnerbill/settings", headers={"Authorization": f"Bearer {fresh}"})
    assert ok.status_code == 200, ok.text


async def test_forged_tokens_are_401(
    http: httpx.AsyncClient, engine: AsyncEngine, api: ApiClient
) -> None:
    other = await new_tenant(engine)
    token = api.token
    payload_b64, signature = token.split(".")
    payload = _unb64(payload_b64)
    tenant_id, number, client_id, expires, nonce = payload.decode().split(":")

    # Payload rewritten to name another tenant, original signature kept.
    other_payload = f"{other.tenant.id}:{other.tenant.number}:{client_id}:{expires}:{nonce}"
    # Payload with a far-future expiry, original signature kept.
    later_payload = f"{tenant_id}:{number}:{client_id}:{int(expires) + 10**6}:{nonce}"
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    wrong_key = b"not-the-key" * 3
    forged_with_other_key = (
        _b64(payload) + "." + _b64(hmac.new(wrong_key, payload, hashlib.sha256).digest())
    )
    forgeries = [
        _b64(other_payload.encode()) + "." + signature,
        _b64(later_payload.encode()) + "." + signature,
        payload_b64 + "." + flipped,
        payload_b64 + "." + signature[::-1],
        payload_b64 + ".",
        "." + signature,
        payload_b64,
        token + ".extra",
        "garbage",
        "!!!.###",
        forged_with_other_key,
    ]
    for forged in forgeries:
        assert forged != token
        response = await http.get(
            f"/v1/accounts/{(await api.create_account())['accountId']}",
            headers={"Authorization": f"Bearer {forged}"},
        )
        _assert_unauthorized(response)
    # The genuine token still works (the forgeries were rejected for what they changed).
    status, _ = await api.call("GET", "/v1/partnerbill/settings")
    assert status == 200


async def test_token_with_non_ascii_signature_is_401(
    http: httpx.AsyncClient, api: ApiClient
) -> None:
    payload_b64, signature = api.token.split(".")
    forged = f"Bearer {payload_b64}.{signature[:-1]}é".encode("latin-1")
    response = await http.get("/v1/partnerbill/settings", headers={"Authorization": forged})
    _assert_unauthorized(response)


async def test_token_with_non_ascii_payload_is_401(http: httpx.AsyncClient, api: ApiClient) -> None:
    _, signature = api.token.split(".")
    forged = f"Bearer é.{signature}".encode("latin-1")
    response = await http.get("/v1/partnerbill/settings", headers={"Authorization": forged})
    _assert_unauthorized(response)


# --- tenant isolation --------------------------------------------------------------------------


async def _snapshot(api: ApiClient, account_key: str, invoice_keys: list[str]) -> dict[str, Any]:
    _, account = await api.call("GET", f"/v1/accounts/{account_key}")
    _, summary = await api.call("GET", f"/v1/accounts/{account_key}/summary")
    found = {}
    for key in invoice_keys:
        _, invoice = await api.call("GET", f"/v1/invoices/{key}")
        _, items = await api.call("GET", f"/v1/invoices/{key}/items")
        found[key] = (invoice, items)
    return {"account": account, "summary": summary, "invoices": found}


async def test_other_tenant_cannot_touch_accounts_or_invoices(
    api: ApiClient, engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    # Tenant A: a partner account with a Posted and a Draft invoice, refreshed.
    account = await api.create_account(partner=True, name="Tenant A Account", secret__c="A-only")
    account_id, account_number = account["accountId"], account["accountNumber"]
    posted = await api.ok("POST", "/v1/invoices", invoice_body(account_number, "40.00"))
    draft = await api.ok(
        "POST", "/v1/invoices", invoice_body(account_number, "7.00", status="Draft")
    )
    await api.refresh(account_number)
    invoice_keys = [posted["id"], posted["invoiceNumber"], draft["id"], draft["invoiceNumber"]]
    before = await _snapshot(api, account_number, invoice_keys)
    assert before["account"]["metrics"]["totalInvoiceBalance"] == Decimal("40.00")
    invoices_before = await count_invoices(engine, api.tenant.id)

    # Tenant B: no accounts of its own yet, so A's numbers mean nothing to it.
    other = await client_for(http, await new_tenant(engine))
    assert await count_accounts(engine, other.tenant.id) == 0

    attempts: list[tuple[str, str, Any]] = []
    for key in (account_id, account_number):
        attempts += [
            ("GET", f"/v1/accounts/{key}", None),
            ("GET", f"/v1/accounts/{key}/summary", None),
            ("PUT", f"/v1/accounts/{key}", {"name": "Stolen", "partnerAccount": False}),
            ("PUT", f"/v1/accounts/{key}", {"notes": "owned"}),
            ("POST", f"/v1/partnerbill/accounts/{key}/refresh-metrics", None),
        ]
    attempts += [
        ("POST", "/v1/invoices", invoice_body(account_number, "1.00")),
        ("POST", "/v1/invoices", {**invoice_body(account_number, "1.00"), "accountId": None}),
        (
            "POST",
            "/v1/invoices",
            {**invoice_body(account_number, "1.00"), "accountId": account_id},
        ),
        (
            "POST",
            "/v1/invoices",
            {
                key: value
                for key, value in {
                    **invoice_body(account_number, "1.00"),
                    "accountId": account_id,
                }.items()
                if key != "accountNumber"
            },
        ),
        (
            "POST",
            "/v1/invoices/batch",
            {"invoices": [invoice_body(account_number, "1.00")], "useSingleTransaction": True},
        ),
    ]
    for key in invoice_keys:
        attempts += [
            ("GET", f"/v1/invoices/{key}", None),
            ("GET", f"/v1/invoices/{key}/items", None),
            ("PUT", f"/v1/invoices/{key}/post", None),
            ("PUT", f"/v1/invoices/{key}/unpost", None),
            ("PUT", f"/v1/invoices/{key}/cancel", None),
        ]
    for method, path, body in attempts:
        status, payload = await other.call(method, path, body, expect=None)
        assert status == 404, (method, path, status, payload)
        assert_envelope(payload, NOT_FOUND)
        assert "A-only" not in str(payload) and "Tenant A Account" not in str(payload)

    # Batch without a single transaction answers per invoice; it must still create nothing.
    status, payload = await other.call(
        "POST",
        "/v1/invoices/batch",
        {"invoices": [invoice_body(account_number, "1.00")], "useSingleTransaction": False},
        expect=None,
    )
    assert payload["success"] is False, payload
    assert payload["invoices"][0]["success"] is False
    assert payload["invoices"][0]["reasons"][0]["code"] % 100 == NOT_FOUND

    # A is untouched: same account, metrics, invoices, statuses; no new invoices anywhere.
    after = await _snapshot(api, account_number, invoice_keys)
    assert after == before
    assert after["account"]["basicInfo"]["name"] == "Tenant A Account"
    assert after["account"]["basicInfo"]["partnerAccount"] is True
    _, draft_now = await api.call("GET", f"/v1/invoices/{draft['id']}")
    assert draft_now["status"] == "Draft"
    _, posted_now = await api.call("GET", f"/v1/invoices/{posted['id']}")
    assert posted_now["status"] == "Posted"
    assert await count_invoices(engine, api.tenant.id) == invoices_before
    assert await count_invoices(engine, other.tenant.id) == 0
    assert await count_accounts(engine, other.tenant.id) == 0


async def test_same_numbers_in_two_tenants_resolve_to_each_tenants_own(
    api: ApiClient, engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    mine = await api.create_account(name="Mine")
    mine_invoice = await api.ok("POST", "/v1/invoices", invoice_body(mine["accountNumber"], "5"))
    other = await client_for(http, await new_tenant(engine))
    theirs = await other.create_account(name="Theirs")
    theirs_invoice = await other.ok(
        "POST", "/v1/invoices", invoice_body(theirs["accountNumber"], "9")
    )
    # Both tenants number from 1, so the numbers coincide; the ids never do.
    assert theirs["accountNumber"] == mine["accountNumber"]
    assert theirs_invoice["invoiceNumber"] == mine_invoice["invoiceNumber"]
    assert theirs["accountId"] != mine["accountId"]

    _, seen_by_other = await other.call("GET", f"/v1/accounts/{mine['accountNumber']}")
    assert seen_by_other["basicInfo"]["id"] == theirs["accountId"]
    assert seen_by_other["basicInfo"]["name"] == "Theirs"
    _, invoice_seen_by_other = await other.call(
        "GET", f"/v1/invoices/{mine_invoice['invoiceNumber']}"
    )
    assert invoice_seen_by_other["id"] == theirs_invoice["id"]
    assert invoice_seen_by_other["amount"] == Decimal("9")

    # Cross-tenant ids still miss, even though the numbers exist on both sides.
    status, _ = await other.call("GET", f"/v1/accounts/{mine['accountId']}", expect=None)
    assert status == 404
    status, _ = await other.call("GET", f"/v1/invoices/{mine_invoice['id']}", expect=None)
    assert status == 404
    # A tenant B invoice against A's account id, naming B's own number, is refused.
    status, payload = await other.call(
        "POST",
        "/v1/invoices",
        {**invoice_body(theirs["accountNumber"], "1"), "accountId": mine["accountId"]},
        expect=None,
    )
    assert status in (400, 404), payload
    assert payload["success"] is False
    _, mine_after = await api.call("GET", f"/v1/accounts/{mine['accountId']}")
    assert mine_after["basicInfo"]["name"] == "Mine"
    assert mine_after["metrics"]["totalInvoiceBalance"] == Decimal("5")


async def test_token_names_its_tenant_only(
    api: ApiClient, engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    """A token signed for tenant B (by the server's key) sees B's data, never A's."""
    account = await api.create_account()
    other_creds = await new_tenant(engine)
    key = await _signing_key(engine)
    token = auth.issue_token(key, other_creds.tenant, other_creds.client_id, 60)
    response = await http.get(
        f"/v1/accounts/{account['accountId']}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 404, response.text
    # A token naming a tenant that does not exist sees nothing either.
    ghost = auth.issue_token(key, Tenant(id="0" * 32, number=10**9), "ghost", 60)
    response = await http.get(
        f"/v1/accounts/{account['accountId']}", headers={"Authorization": f"Bearer {ghost}"}
    )
    assert response.status_code == 404, response.text
