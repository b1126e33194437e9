"""Web UI users: creation, sign-in with a rate limit on failures, server-side sessions.

- Passwords are hashed with argon2id (argon2-cffi's defaults); hashing and verifying run in a
  thread, off the event loop. An unknown e-mail is verified against a dummy hash, so the answer
  takes as long as for a known one.
- Failed sign-ins are rows in PostgreSQL, so every API process counts the same failures: after
  `MAX_FAILED_SIGN_INS` within `FAILURE_WINDOW` an e-mail is refused, even with the right
  password, until the oldest failure leaves the window. Attempts for one e-mail take a
  transaction-level advisory lock, so parallel guesses cannot all pass the count.
- A session is a random token in the cookie; only its SHA-256 is stored, with its expiry and its
  CSRF token. Signing out deletes the row.
"""

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, insert, select, text, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.errors import Resource, business_rule, invalid_value
from partnerbill.core.tables import tenants
from partnerbill.core.tenants import Tenant
from partnerbill.tables.users import ui_sessions, ui_sign_in_failures, ui_users

MAX_FAILED_SIGN_INS = 5
FAILURE_WINDOW = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
MAX_EMAIL_LENGTH = 254
PURGE_BATCH = 100
_HASHER = PasswordHasher()
_dummy_hash: str | None = None


class Role(StrEnum):
    ADMIN = "admin"  # may manage features and billing settings
    USER = "user"


@dataclass(frozen=True, slots=True)
class CreatedUser:
    email: str
    password: str
    generated: bool  # the password was made here (the caller shows it once)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The user a valid session belongs to."""

    tenant: Tenant
    email: str
    role: Role
    csrf_token: str

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True, slots=True)
class SignInAnswer:
    """A session token on success; otherwise the message the sign-in page shows."""

    token: str | None
    refusal: str | None


def normalized_email(email: str) -> str:
    return email.strip().lower()


def _token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_user(
    conn: AsyncConnection, tenant: Tenant, email: str, role: Role, password: str | None = None
) -> CreatedUser:
    """A new UI user of `tenant`; without a password one is generated (20 characters)."""
    address = normalized_email(email)
    local, _, domain = address.partition("@")
    if not local or "." not in domain or len(address) > MAX_EMAIL_LENGTH or " " in address:
        raise invalid_value(Resource.GENERIC, "email", "must be an e-mail address.")
    generated = password is None
    chosen = secrets.token_urlsafe(15) if password is None else password
    if not MIN_PASSWORD_LENGTH <= len(chosen) <= MAX_PASSWORD_LENGTH:
        raise invalid_value(
            Resource.GENERIC,
            "password",
            f"must have {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters.",
        )
    password_hash = await asyncio.to_thread(_HASHER.hash, chosen)
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(ui_users).values(
                    email=address, tenant_id=tenant.id, password_hash=password_hash, role=role
                )
            )
    except IntegrityError as exc:
        raise business_rule(Resource.GENERIC, f"A user '{address}' already exists.") from exc
    return CreatedUser(address, chosen, generated)


async def _verify(password_hash: str | None, password: str) -> bool:
    global _dummy_hash
    if password_hash is None:
        if _dummy_hash is None:
            _dummy_hash = await asyncio.to_thread(_HASHER.hash, secrets.token_urlsafe(15))
        password_hash = _dummy_hash
        password = ""  # never the dummy's password
    try:
        return await asyncio.to_thread(_HASHER.verify, password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def sign_in(conn: AsyncConnection, email: str, password: str) -> SignInAnswer:
    """Check the password and open a session; a failure is recorded in `conn`'s transaction,
    which the caller commits either way."""
    address = normalized_email(email)[:MAX_EMAIL_LENGTH]
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"ui_sign_in:{address}"},
    )
    await _purge_expired(conn)
    failures = await conn.scalar(
        select(func.count()).where(
            ui_sign_in_failures.c.email == address,
            ui_sign_in_failures.c.failed_at >= func.now() - FAILURE_WINDOW,
        )
    )
    if (failures or 0) >= MAX_FAILED_SIGN_INS:
        minutes = int(FAILURE_WINDOW.total_seconds() // 60)
        return SignInAnswer(
            None,
            f"Too many failed sign-ins for {address}: {MAX_FAILED_SIGN_INS} within {minutes} "
            "minutes. Try again later.",
        )
    stored = await conn.scalar(select(ui_users.c.password_hash).where(ui_users.c.email == address))
    if not await _verify(stored, password[:MAX_PASSWORD_LENGTH]):
        await conn.execute(insert(ui_sign_in_failures).values(email=address))
        return SignInAnswer(None, "Wrong e-mail or password.")
    await conn.execute(delete(ui_sign_in_failures).where(ui_sign_in_failures.c.email == address))
    token = secrets.token_urlsafe(32)
    await conn.execute(
        insert(ui_sessions).values(
            token_sha256=_token_sha256(token),
            email=address,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=func.now() + SESSION_LIFETIME,
        )
    )
    return SignInAnswer(token, None)


async def _purge_expired(conn: AsyncConnection) -> None:
    """Each sign-in deletes up to `PURGE_BATCH` expired sessions and out-of-window failures
    left by anyone (found by their time indexes), so neither table grows with e-mails never
    seen again."""
    for table, key, expired in (
        (ui_sessions, [ui_sessions.c.token_sha256], ui_sessions.c.expires_at < func.now()),
        (
            ui_sign_in_failures,
            [ui_sign_in_failures.c.email, ui_sign_in_failures.c.id],
            ui_sign_in_failures.c.failed_at < func.now() - FAILURE_WINDOW,
        ),
    ):
        # SKIP LOCKED: parallel sign-ins purge different rows and never wait for each other.
        oldest = select(*key).where(expired).limit(PURGE_BATCH).with_for_update(skip_locked=True)
        await conn.execute(delete(table).where(tuple_(*key).in_(oldest)))


async def session_user(conn: AsyncConnection, token: str) -> SignedIn | None:
    """The user of an unexpired session, or None."""
    row = (
        await conn.execute(
            select(
                ui_users.c.tenant_id,
                tenants.c.number,
                ui_users.c.email,
                ui_users.c.role,
                ui_sessions.c.csrf_token,
            )
            .select_from(ui_sessions)
            .join(ui_users, ui_users.c.email == ui_sessions.c.email)
            .join(tenants, tenants.c.id == ui_users.c.tenant_id)
            .where(
                ui_sessions.c.token_sha256 == _token_sha256(token),
                ui_sessions.c.expires_at > func.now(),
            )
        )
    ).one_or_none()
    if row is None:
        return None
    return SignedIn(Tenant(row.tenant_id, row.number), row.email, Role(row.role), row.csrf_token)


async def sign_out(conn: AsyncConnection, token: str) -> None:
    await conn.execute(
        delete(ui_sessions).where(ui_sessions.c.token_sha256 == _token_sha256(token))
    )
