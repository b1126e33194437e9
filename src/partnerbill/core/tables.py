"""Tables of the platform itself: tenants, OAuth clients, signing keys, idempotency records.

`oauth_clients` is keyed without `tenant_id` first: a token request names only a client id. It is
a small point-lookup table that a distributed deployment keeps as a reference table. Idempotency
keys are their tenant's own (`(tenant_id, key)`): one tenant's key neither blocks nor reveals
another's.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Identity,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    func,
    true,
)

from partnerbill.core.db import metadata

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("number", BigInteger, Identity(), nullable=False, unique=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("metrics_refresh_interval_seconds", Integer, nullable=False, server_default="3600"),
    Column("lock_wait_ms", Integer, nullable=False, server_default="3000"),
    Column("invoice_batch_limit", Integer, nullable=False, server_default="50"),
    Column("order_sync_limit", Integer, nullable=False, server_default="50"),
    Column("order_async_limit", Integer, nullable=False, server_default="300"),
    Column("reseller_account_enabled", Boolean, nullable=False, server_default=true()),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("metrics_refresh_interval_seconds >= 1", name="refresh_interval_min"),
    CheckConstraint("lock_wait_ms BETWEEN 1 AND 60000", name="lock_wait_range"),
    CheckConstraint("invoice_batch_limit BETWEEN 1 AND 1000", name="batch_limit_range"),
    CheckConstraint("order_sync_limit BETWEEN 1 AND 1000", name="order_sync_limit_range"),
    CheckConstraint("order_async_limit BETWEEN 1 AND 10000", name="order_async_limit_range"),
)

oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("client_id", String(36), primary_key=True),
    Column("tenant_id", String(32), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("secret_sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("secret", LargeBinary, nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("method", String(8), nullable=False),
    Column("path", Text, nullable=False),
    Column("request_sha256", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response_body", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)
