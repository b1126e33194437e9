"""`Idempotency-Key` on POST and PATCH, kept in PostgreSQL so every API process sees every key.

The first request claims the key (a row committed before the work starts), runs, and stores its
status and body; a replay within 24 h returns them unchanged. A duplicate arriving while the first
is still running gets 409; the key reused with another tenant, method, path or body gets 422.
Responses a client is told to retry (lock competition, internal errors) release the key instead of
being stored, so the retry with the same key really runs again. A claim left by a process that
died mid-request is taken over after `ABANDONED_AFTER`.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from partnerbill.core import auth
from partnerbill.core.db import get_engine
from partnerbill.core.errors import Category, Resource, ZuoraError, envelope
from partnerbill.core.json import dumps
from partnerbill.core.tables import idempotency_keys

KEY_LIFETIME = timedelta(hours=24)
ABANDONED_AFTER = timedelta(minutes=5)
MAX_KEY_LENGTH = 255
RETRYABLE_STATE = "partnerbill_retryable"


def mark_retryable(scope_state: dict[str, object]) -> None:
    """Called by the error handler for answers the client should retry with the same key."""
    scope_state[RETRYABLE_STATE] = True


@dataclass(slots=True)
class _CapturedResponse:
    status: int = 500
    body: bytearray = field(default_factory=bytearray)
    messages: list[Message] = field(default_factory=list)


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        key_raw = headers.get(b"idempotency-key")
        if key_raw is None:
            await self.app(scope, receive, send)
            return
        tenant_id = await self._tenant_id(headers)
        if tenant_id is None:  # let the route answer 401
            await self.app(scope, receive, send)
            return
        key = key_raw.decode("latin-1").strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            await _send_error(
                send,
                scope,
                ZuoraError(
                    Resource.IDEMPOTENCY,
                    Category.INVALID_VALUE,
                    f"'Idempotency-Key' must be 1 to {MAX_KEY_LENGTH} characters.",
                    http_status=400,
                ),
            )
            return
        body = await _read_body(receive)
        request_sha256 = hashlib.sha256(body).hexdigest()
        path = scope["path"] + (
            "?" + scope["query_string"].decode() if scope["query_string"] else ""
        )
        identity = {
            "tenant_id": tenant_id,
            "method": scope["method"],
            "path": path,
            "request_sha256": request_sha256,
        }
        stored = await _claim(key, identity)
        if stored is not None:
            await _answer_from_record(send, scope, stored, identity)
            return

        # The answer is held back until its record is stored: a client that replays the moment it
        # reads the answer must find the stored response, not a claim still "being processed".
        captured = _CapturedResponse()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured.status = message["status"]
            elif message["type"] == "http.response.body":
                captured.body += message.get("body", b"")
            captured.messages.append(message)

        async def replay_body() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            await self.app(scope, replay_body, capture)
        except BaseException:
            await _release(key)
            raise
        if captured.status >= 500 or scope.get("state", {}).get(RETRYABLE_STATE):
            await _release(key)
        else:
            await _store(key, captured.status, bytes(captured.body))
        for message in captured.messages:
            await send(message)

    async def _tenant_id(self, headers: dict[bytes, bytes]) -> str | None:
        try:
            tenant = await auth.tenant_of(headers.get(b"authorization", b"").decode("latin-1"))
        except ZuoraError:
            return None
        return tenant.id


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _claim(key: str, identity: dict[str, str]) -> dict[str, Any] | None:
    """Claim `key` for this request (None) or return the record of whoever holds it."""
    async with get_engine().begin() as conn:
        now = func.now()
        await conn.execute(
            delete(idempotency_keys).where(
                idempotency_keys.c.key == key, idempotency_keys.c.expires_at < now
            )
        )
        claimed = await conn.scalar(
            pg_insert(idempotency_keys)
            .values(key=key, expires_at=now + KEY_LIFETIME, **identity)
            .on_conflict_do_nothing()
            .returning(idempotency_keys.c.key)
        )
        if claimed is not None:
            return None
        taken_over = await conn.scalar(
            update(idempotency_keys)
            .where(
                idempotency_keys.c.key == key,
                idempotency_keys.c.status_code.is_(None),
                idempotency_keys.c.created_at < now - ABANDONED_AFTER,
                *(idempotency_keys.c[name] == value for name, value in identity.items()),
            )
            .values(created_at=now, expires_at=now + KEY_LIFETIME)
            .returning(idempotency_keys.c.key)
        )
        if taken_over is not None:
            return None
        row = (
            await conn.execute(select(idempotency_keys).where(idempotency_keys.c.key == key))
        ).one_or_none()
    if row is None:  # released between our insert and select: claim again
        return await _claim(key, identity)
    return dict(row._mapping)


async def purge_expired_keys(limit: int) -> int:
    """Delete up to `limit` expired keys (a key is also dropped when it is reused after expiry)."""
    async with get_engine().begin() as conn:
        expired = (
            select(idempotency_keys.c.key)
            .where(idempotency_keys.c.expires_at < func.now())
            .limit(limit)
            .scalar_subquery()
        )
        result = await conn.execute(
            delete(idempotency_keys).where(idempotency_keys.c.key.in_(expired))
        )
    return int(result.rowcount)


async def _store(key: str, status: int, body: bytes) -> None:
    async with get_engine().begin() as conn:
        await conn.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.key == key)
            .values(status_code=status, response_body=body)
        )


async def _release(key: str) -> None:
    async with get_engine().begin() as conn:
        await conn.execute(delete(idempotency_keys).where(idempotency_keys.c.key == key))


async def _answer_from_record(
    send: Send, scope: Scope, record: dict[str, Any], identity: dict[str, str]
) -> None:
    for name, value in identity.items():
        if record[name] != value:
            what = {"request_sha256": "body"}.get(name, name.removesuffix("_id"))
            await _send_error(
                send,
                scope,
                ZuoraError(
                    Resource.IDEMPOTENCY,
                    Category.INVALID_VALUE,
                    f"The Idempotency-Key was already used with a different {what}.",
                    http_status=422,
                ),
            )
            return
    if record["status_code"] is None:
        await _send_error(
            send,
            scope,
            ZuoraError(
                Resource.IDEMPOTENCY,
                Category.BUSINESS_RULE,
                "A request with this Idempotency-Key is still being processed.",
                http_status=409,
            ),
        )
        return
    await _send(
        send,
        int(record["status_code"]),
        bytes(record["response_body"] or b"{}"),
        extra_headers=[(b"idempotent-replayed", b"true")],
    )


async def _send_error(send: Send, scope: Scope, error: ZuoraError) -> None:
    request_id = scope.get("state", {}).get("request_id", "")
    await _send(send, error.http_status, dumps(envelope(error.reasons, request_id)))


async def _send(
    send: Send, status: int, body: bytes, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
