"""Web UI users, their sessions and their failed sign-ins.

Keyed without `tenant_id` first, as `oauth_clients` is: a sign-in names only an e-mail and a
session cookie only a token, so each is one lookup across tenants. E-mails are unique across
tenants; the user row names its tenant. All three are small point-lookup tables that a
distributed deployment keeps as reference tables.
"""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Identity,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
)

from partnerbill.core.db import metadata

ui_users = Table(
    "ui_users",
    metadata,
    Column("email", String(254), nullable=False),  # stored lower-case
    Column("tenant_id", String(32), nullable=False),
    Column("password_hash", Text, nullable=False),  # argon2id, in its PHC string form
    Column("role", String(8), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("email"),
    CheckConstraint("role IN ('admin', 'user')", name="role"),
    CheckConstraint("email = lower(email)", name="email_lower"),
    Index("ix_ui_users_tenant_id", "tenant_id"),
)

ui_sessions = Table(
    "ui_sessions",
    metadata,
    Column("token_sha256", String(64), nullable=False),  # the cookie's token is never stored
    Column("email", String(254), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("token_sha256"),
    ForeignKeyConstraint(["email"], ["ui_users.email"], ondelete="CASCADE"),
    Index("ix_ui_sessions_email", "email"),
    Index("ix_ui_sessions_expires_at", "expires_at"),
)

ui_sign_in_failures = Table(
    "ui_sign_in_failures",
    metadata,
    Column("email", String(254), nullable=False),  # as typed (lower-cased), known or not
    Column("id", BigInteger, Identity(), nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("email", "id"),
    Index("ix_ui_sign_in_failures_failed_at", "failed_at"),
)
