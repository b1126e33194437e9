"""`Idempotency-Key` on POST and PATCH, exactly once, kept in PostgreSQL so every API process sees
every key.

The record of a key commits in the same transaction as the request's business write (Stripe's
design): the middleware opens one transaction, binds it to the request (`db.bound_to_request`, so
the route's `transaction()` and `autocommit()` blocks become savepoints of it), stores the status
and body the route produced, commits, and only then sends the answer. So either the write and its
answer are both committed, and a retry replays the answer (byte for byte, `Idempotent-Replayed:
true`) for 24 h, or neither is, and a retry runs the request afresh: a crash or a lost database at
any point can neither duplicate a write nor leave a claim behind.

- A key is its tenant's own: the same key sent by two tenants names two operations (Zuora
  answers 422 to the second tenant; here one tenant's keys neither block nor reveal another's).
- A duplicate arriving while the first runs finds the key's advisory lock taken (held by the
  first request's transaction, so it goes with that transaction, crash included) and gets 409
  at once; the key reused with another method, path or body gets 422.
- Answers a client is told to retry (lock competition, 5xx, 503 when the commit failed) roll the
  whole transaction back: nothing written, nothing stored, and the retry really runs again.
- Every other answer is stored, 4xx and business-rule failures included: the key names one
  attempt at one operation, and its answer does not change when replayed (a corrected request is
  a new operation, with a new key).
"""

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import delete, func, insert, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from partnerbill.core import auth
from partnerbill.core.db import bound_to_request, get_engine
from partnerbill.core.errors import (
    Category,
    Resource,
    ZuoraError,
    count_error_answer,
    database_failure,
    envelope,
)
from partnerbill.core.json import dumps
from partnerbill.core.tables import idempotency_keys

log = structlog.get_logger("partnerbill.idempotency")
KEY_LIFETIME = timedelta(hours=24)
MAX_KEY_LENGTH = 255
RETRYABLE_STATE = "partnerbill_retryable"
# Seeds the 64-bit hash that names a key's advisory lock, apart from other advisory lock users.
_LOCK_SEED = 0x1DE4_9070
_LOCK_KEY = text(
    "SELECT pg_try_advisory_xact_lock(hashtextextended(:tenant_id || ':' || :key, :seed))"
)


def mark_retryable(scope_state: dict[str, object]) -> None:
    """Called by the error handler for answers the client should retry with the same key."""
    scope_state[RETRYABLE_STATE] = True


@dataclass(slots=True)
class _CapturedResponse:
    """An ASGI `send` that keeps the answer, to be sent once its transaction has ended."""

    status: int = 500
    body: bytearray = field(default_factory=bytearray)
    messages: list[Message] = field(default_factory=list)

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")
        self.messages.append(message)


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
        if not key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
            await _send_error(
                send,
                scope,
                ZuoraError(
                    Resource.IDEMPOTENCY,
                    Category.INVALID_VALUE,
                    f"'Idempotency-Key' must be 1 to {MAX_KEY_LENGTH} characters, without NUL.",
                    http_status=400,
                ),
            )
            return
        body = await _read_body(receive)
        path = scope["path"] + (
            "?" + scope["query_string"].decode("latin-1") if scope["query_string"] else ""
        )
        identity = {
            "tenant_id": tenant_id,
            "method": scope["method"],
            "path": path,
            "request_sha256": hashlib.sha256(body).hexdigest(),
        }
        async with get_engine().connect() as conn:
            answer = await self._run_once(conn, scope, body, key, identity)
        for message in answer.messages:
            await send(message)

    async def _run_once(
        self,
        conn: AsyncConnection,
        scope: Scope,
        body: bytes,
        key: str,
        identity: dict[str, str],
    ) -> _CapturedResponse:
        """The answer to send, its transaction committed or rolled back (by closing `conn`)."""
        answer = _CapturedResponse()

        async def replay_body() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        await conn.begin()
        tenant_id = identity["tenant_id"]
        lock = {"tenant_id": tenant_id, "key": key, "seed": _LOCK_SEED}
        if not await conn.scalar(_LOCK_KEY, lock):
            await _send_error(answer, scope, _in_flight())
            return answer
        record = await _live_record(conn, tenant_id, key)
        if record is not None:
            await _answer_from_record(answer, scope, record, identity)
            return answer
        with bound_to_request(conn):
            await self.app(scope, replay_body, answer)
        if answer.status >= 500 or scope.get("state", {}).get(RETRYABLE_STATE):
            return answer  # rolled back: no write, no record
        try:
            await conn.execute(
                insert(idempotency_keys).values(
                    key=key,
                    expires_at=func.now() + KEY_LIFETIME,
                    status_code=answer.status,
                    response_body=bytes(answer.body),
                    **identity,
                )
            )
            await conn.commit()
        except Exception as exc:
            failure = database_failure(exc)
            if failure is None:
                raise
            # Perhaps committed before the connection was lost: the retry finds out, with the key.
            log.warning("idempotent_commit_failed", error=str(exc))
            answer = _CapturedResponse()
            await _send_error(answer, scope, failure)
        return answer

    async def _tenant_id(self, headers: dict[bytes, bytes]) -> str | None:
        try:
            tenant = await auth.tenant_of(headers.get(b"authorization", b"").decode("latin-1"))
        except ZuoraError:
            return None
        return tenant.id


def _in_flight() -> ZuoraError:
    return ZuoraError(
        Resource.IDEMPOTENCY,
        Category.BUSINESS_RULE,
        "A request with this Idempotency-Key is still being processed.",
        http_status=409,
    )


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _live_record(conn: AsyncConnection, tenant_id: str, key: str) -> dict[str, Any] | None:
    """The tenant's stored record of `key` (under its lock); an expired one is dropped, freeing
    the key."""
    this_key = (idempotency_keys.c.tenant_id == tenant_id) & (idempotency_keys.c.key == key)
    row = (
        await conn.execute(
            select(
                idempotency_keys, (idempotency_keys.c.expires_at < func.now()).label("expired")
            ).where(this_key)
        )
    ).one_or_none()
    if row is None:
        return None
    if row.expired:
        await conn.execute(delete(idempotency_keys).where(this_key))
        return None
    return dict(row._mapping)


async def purge_expired_keys(limit: int) -> int:
    """Delete up to `limit` expired keys (a key is also dropped when it is reused after expiry)."""
    async with get_engine().begin() as conn:
        expired = (
            select(idempotency_keys.c.tenant_id, idempotency_keys.c.key)
            .where(idempotency_keys.c.expires_at < func.now())
            .limit(limit)
        )
        result = await conn.execute(
            delete(idempotency_keys).where(
                tuple_(idempotency_keys.c.tenant_id, idempotency_keys.c.key).in_(expired)
            )
        )
    return int(result.rowcount)


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
    await _send(
        send,
        int(record["status_code"]),
        bytes(record["response_body"]),
        extra_headers=[(b"idempotent-replayed", b"true")],
    )


async def _send_error(send: Send, scope: Scope, error: ZuoraError) -> None:
    count_error_answer(error)
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
