"""OAuth 2 client credentials and bearer tokens.

A token is `payload.signature`, HMAC-SHA256 signed with a key kept in the database (so every API
process verifies every other's tokens without a lookup per request). The payload names the tenant:
every query a request makes is scoped by it.
"""

import base64
import functools
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Form, Request
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.db import transaction
from partnerbill.core.errors import Category, Resource, ZuoraError
from partnerbill.core.json import DecimalJSONRoute
from partnerbill.core.responses import TokenResponse, ok
from partnerbill.core.routing import FeatureRouter
from partnerbill.core.tables import oauth_clients, signing_keys, tenants
from partnerbill.core.tenants import Tenant
from partnerbill.settings import get_settings

ACCESS_TOKEN_KEY_NAME = "access_token"
_signing_key: bytes | None = None


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str
    client_secret: str


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def create_client(conn: AsyncConnection, tenant: Tenant, name: str) -> ClientCredentials:
    """A new OAuth client; the secret is shown once and only its hash is kept."""
    credentials = ClientCredentials(
        client_id=str(uuid.uuid4()),  # 36 characters, as the Zuora SDK requires
        client_secret=secrets.token_urlsafe(30),  # 40 characters; the SDK allows 42
    )
    await conn.execute(
        insert(oauth_clients).values(
            client_id=credentials.client_id,
            tenant_id=tenant.id,
            name=name,
            secret_sha256=_sha256(credentials.client_secret),
        )
    )
    return credentials


async def list_clients(
    conn: AsyncConnection, tenant: Tenant | None
) -> list[tuple[str, str, str, datetime]]:
    """OAuth clients (client id, tenant name, label, created), of one tenant or all; never a
    secret (only its hash is kept)."""
    query = (
        select(
            oauth_clients.c.client_id,
            tenants.c.name.label("tenant"),
            oauth_clients.c.name,
            oauth_clients.c.created_at,
        )
        .join(tenants, tenants.c.id == oauth_clients.c.tenant_id)
        .order_by(tenants.c.number, oauth_clients.c.created_at)
    )
    if tenant is not None:
        query = query.where(oauth_clients.c.tenant_id == tenant.id)
    return [(r.client_id, r.tenant, r.name, r.created_at) for r in await conn.execute(query)]


async def revoke_client(conn: AsyncConnection, client_id: str) -> bool:
    """Delete an OAuth client: `POST /oauth/token` refuses it from now on. Tokens it was issued
    are signed, not stored, so they stay valid until they expire (at most an hour)."""
    deleted = await conn.execute(
        delete(oauth_clients).where(oauth_clients.c.client_id == client_id)
    )
    return bool(deleted.rowcount)


async def signing_key() -> bytes:
    """The token signing key, read once per process (migrations create it)."""
    global _signing_key
    if _signing_key is None:
        async with transaction() as conn:
            _signing_key = await conn.scalar(
                select(signing_keys.c.secret).where(signing_keys.c.name == ACCESS_TOKEN_KEY_NAME)
            )
        if _signing_key is None:
            raise RuntimeError("No signing key: run `partnerbill migrate` first.")
    return _signing_key


def _sign(key: bytes, payload: bytes) -> str:
    return _b64(hmac.new(key, payload, hashlib.sha256).digest())


def issue_token(key: bytes, tenant: Tenant, client_id: str, lifetime_seconds: int) -> str:
    expires = int(time.time()) + lifetime_seconds
    payload = f"{tenant.id}:{tenant.number}:{client_id}:{expires}:{secrets.token_hex(4)}".encode()
    return f"{_b64(payload)}.{_sign(key, payload)}"


def _unauthorized(message: str) -> ZuoraError:
    return ZuoraError(Resource.AUTH, Category.AUTHENTICATION_FAILED, message, http_status=401)


@functools.lru_cache(maxsize=4096)
def _genuine(key: bytes, token: str) -> tuple[Tenant, int]:
    """The tenant and expiry a token signed by us names. Cached per process: a client sends the
    same token with every call until it expires (a bad token raises, and is not cached)."""
    try:
        payload_b64, signature = token.split(".")
        payload = _unb64(payload_b64)
        genuine = hmac.compare_digest(_sign(key, payload).encode(), signature.encode())
    except (ValueError, UnicodeError) as exc:
        raise _unauthorized("Authentication error: the access token is malformed.") from exc
    if not genuine:
        raise _unauthorized("Authentication error: the access token is invalid.")
    # Signed by us, so well formed.
    tenant_id, number, _client, expires, _nonce = payload.decode().split(":")
    return Tenant(id=tenant_id, number=int(number)), int(expires)


def verify_token(key: bytes, token: str) -> Tenant:
    tenant, expires = _genuine(key, token)
    if expires < time.time():
        raise _unauthorized("Authentication error: the access token has expired.")
    return tenant


async def tenant_of(authorization: str) -> Tenant:
    """The tenant of an `Authorization: Bearer …` header value; 401 for anything else."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("Authentication error: a bearer access token is required.")
    return verify_token(await signing_key(), token.strip())


async def current_tenant(request: Request) -> Tenant:
    """The tenant of the request's bearer token (FastAPI dependency); its id goes into the
    request's access log line."""
    tenant = await tenant_of(request.headers.get("authorization", ""))
    request.scope.setdefault("state", {})["tenant_id"] = tenant.id
    return tenant


CurrentTenant = Annotated[Tenant, Depends(current_tenant)]

router = FeatureRouter(route_class=DecimalJSONRoute)


@router.post("/oauth/token", tags=["OAuth"], responses=ok(TokenResponse))
async def create_token(
    client_id: Annotated[str, Form(max_length=255)],
    client_secret: Annotated[str, Form(max_length=255)],
    grant_type: Annotated[str, Form(max_length=64)] = "client_credentials",
) -> dict[str, object]:
    if grant_type != "client_credentials":
        raise ZuoraError(
            Resource.AUTH,
            Category.INVALID_VALUE,
            "'grant_type': only client_credentials is supported.",
        )
    async with transaction() as conn:
        row = (
            await conn.execute(
                select(oauth_clients.c.secret_sha256, oauth_clients.c.tenant_id, tenants.c.number)
                .join(tenants, tenants.c.id == oauth_clients.c.tenant_id)
                .where(oauth_clients.c.client_id == client_id)
            )
        ).one_or_none()
        if row is None or not hmac.compare_digest(row.secret_sha256, _sha256(client_secret)):
            raise _unauthorized("Invalid client credentials.")
    key = await signing_key()
    lifetime = get_settings().access_token_seconds
    tenant = Tenant(id=row.tenant_id, number=row.number)
    token = issue_token(key, tenant, client_id, lifetime)
    return {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": lifetime,
        "scope": f"entity.{tenant.id} tenant.{tenant.number}",
        "jti": secrets.token_hex(16),
    }
