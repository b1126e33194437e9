"""Tenants, their business settings, and their document-number sequences.

Each tenant numbers its documents from 1 (A00000001, INV00000001) with PostgreSQL sequences of its
own, created with the tenant: a sequence hands out numbers without a shared counter row, so
parallel writers never queue for a number.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.errors import Category, Resource, ZuoraError, invalid_value, not_found
from partnerbill.core.ids import new_id
from partnerbill.core.tables import tenants

DOCUMENT_SEQUENCES = (
    "account_number",
    "invoice_number",
    "product_number",
    "product_rate_plan_number",
    "product_rate_plan_charge_number",
    "subscription_number",
    "rate_plan_number",
    "charge_number",
    "order_number",
    "bill_run_number",
    "payment_number",
    "refund_number",
    "credit_memo_number",
    "debit_memo_number",
)

REFRESH_INTERVAL_MIN_SECONDS = 1
LOCK_WAIT_MAX_MS = 60_000
INVOICE_BATCH_LIMIT_MAX = 1000
ORDER_SYNC_LIMIT_MAX = 1000
ORDER_ASYNC_LIMIT_MAX = 10_000
# Numbers one call draws from one sequence.
MAX_NUMBERS_PER_CALL = 10_000


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    number: int


@dataclass(frozen=True, slots=True)
class TenantSettings:
    metrics_refresh_interval_seconds: int
    lock_wait_ms: int
    invoice_batch_limit: int
    # Subscriptions and order actions per order (Zuora: 50 synchronous, 300 asynchronous).
    order_sync_limit: int
    order_async_limit: int
    # The Reseller Account feature: `partnerAccount`, `lastMetricsUpdate` and deferred metrics.
    reseller_account_enabled: bool

    def as_json(self) -> dict[str, int | bool]:
        return {
            "metricsRefreshIntervalSeconds": self.metrics_refresh_interval_seconds,
            "lockWaitMs": self.lock_wait_ms,
            "invoiceBatchLimit": self.invoice_batch_limit,
            "orderSyncLimit": self.order_sync_limit,
            "orderAsyncLimit": self.order_async_limit,
            "resellerAccountEnabled": self.reseller_account_enabled,
        }


def sequence_name(tenant: Tenant, kind: str) -> str:
    assert kind in DOCUMENT_SEQUENCES, kind
    return f"{kind}_t{tenant.number}"


def document_number(prefix: str, number: int) -> str:
    """A number drawn from a sequence as documents show it: the prefix, then eight digits."""
    return f"{prefix}{number:08d}"


async def next_numbers(conn: AsyncConnection, tenant: Tenant, kind: str, count: int) -> list[int]:
    """`count` fresh numbers from the tenant's sequence, in one round trip."""
    return (await next_numbers_of(conn, tenant, {kind: count}))[kind]


async def next_numbers_of(
    conn: AsyncConnection, tenant: Tenant, counts: Mapping[str, int]
) -> dict[str, list[int]]:
    """Fresh numbers from several of the tenant's sequences (kind -> how many, 0 for none),
    ascending, all in one round trip."""
    wanted = [(kind, count) for kind, count in counts.items() if count]
    numbers: dict[str, list[int]] = {kind: [] for kind in counts}
    if not wanted:
        return numbers
    parameters: dict[str, Any] = {}
    arrays = []
    for i, (kind, count) in enumerate(wanted):
        assert 1 <= count <= MAX_NUMBERS_PER_CALL, (kind, count)
        parameters |= {f"seq{i}": sequence_name(tenant, kind), f"n{i}": count}
        arrays.append(
            f"ARRAY(SELECT nextval(CAST(:seq{i} AS regclass)) FROM generate_series(1, :n{i}))"
        )
    row = (await conn.execute(text(f"SELECT {', '.join(arrays)}"), parameters)).one()
    for (kind, _), drawn in zip(wanted, row, strict=True):
        numbers[kind] = list(drawn)
    return numbers


async def create_tenant(conn: AsyncConnection, name: str) -> Tenant:
    existing = await conn.scalar(select(tenants.c.id).where(tenants.c.name == name))
    if existing is not None:
        raise ZuoraError(Resource.TENANT, Category.BUSINESS_RULE, f"Tenant '{name}' exists.")
    row = (
        await conn.execute(
            insert(tenants).values(id=new_id(), name=name).returning(tenants.c.id, tenants.c.number)
        )
    ).one()
    tenant = Tenant(id=row.id, number=row.number)
    for kind in DOCUMENT_SEQUENCES:
        await conn.execute(text(f'CREATE SEQUENCE "{sequence_name(tenant, kind)}"'))
    return tenant


async def list_tenants(conn: AsyncConnection) -> list[tuple[str, str, int]]:
    """Every tenant as (name, id, number), in creation order."""
    query = select(tenants.c.name, tenants.c.id, tenants.c.number).order_by(tenants.c.number)
    return [(row.name, row.id, row.number) for row in await conn.execute(query)]


async def find_tenant(conn: AsyncConnection, name: str | None) -> Tenant:
    """The tenant called `name`; without a name, the only tenant (the demo setup)."""
    query = select(tenants.c.id, tenants.c.number).order_by(tenants.c.number)
    if name is not None:
        query = query.where(tenants.c.name == name)
    rows = (await conn.execute(query.limit(2))).all()
    if not rows:
        raise not_found(Resource.TENANT, "tenant", name or "(any)")
    if name is None and len(rows) > 1:
        raise ZuoraError(
            Resource.TENANT, Category.MISSING_FIELD, "Several tenants exist: name one (--tenant)."
        )
    return Tenant(id=rows[0].id, number=rows[0].number)


async def get_settings(conn: AsyncConnection, tenant: Tenant) -> TenantSettings:
    row = (
        await conn.execute(
            select(
                tenants.c.metrics_refresh_interval_seconds,
                tenants.c.lock_wait_ms,
                tenants.c.invoice_batch_limit,
                tenants.c.order_sync_limit,
                tenants.c.order_async_limit,
                tenants.c.reseller_account_enabled,
            ).where(tenants.c.id == tenant.id)
        )
    ).one()
    return TenantSettings(*row)


async def update_settings(
    conn: AsyncConnection,
    tenant: Tenant,
    *,
    metrics_refresh_interval_seconds: int | None = None,
    lock_wait_ms: int | None = None,
    invoice_batch_limit: int | None = None,
    order_sync_limit: int | None = None,
    order_async_limit: int | None = None,
    reseller_account_enabled: bool | None = None,
) -> TenantSettings:
    values: dict[str, int | bool] = {}
    if metrics_refresh_interval_seconds is not None:
        if metrics_refresh_interval_seconds < REFRESH_INTERVAL_MIN_SECONDS:
            raise invalid_value(
                Resource.TENANT,
                "metricsRefreshIntervalSeconds",
                f"must be at least {REFRESH_INTERVAL_MIN_SECONDS} second.",
            )
        values["metrics_refresh_interval_seconds"] = metrics_refresh_interval_seconds
    for column, api_name, value, maximum in (
        ("lock_wait_ms", "lockWaitMs", lock_wait_ms, LOCK_WAIT_MAX_MS),
        ("invoice_batch_limit", "invoiceBatchLimit", invoice_batch_limit, INVOICE_BATCH_LIMIT_MAX),
        ("order_sync_limit", "orderSyncLimit", order_sync_limit, ORDER_SYNC_LIMIT_MAX),
        ("order_async_limit", "orderAsyncLimit", order_async_limit, ORDER_ASYNC_LIMIT_MAX),
    ):
        if value is not None:
            if not 1 <= value <= maximum:
                raise invalid_value(Resource.TENANT, api_name, f"must be between 1 and {maximum}.")
            values[column] = value
    if reseller_account_enabled is not None:
        values["reseller_account_enabled"] = reseller_account_enabled
    if values:
        await conn.execute(update(tenants).where(tenants.c.id == tenant.id).values(**values))
    if reseller_account_enabled is False:
        await _refuse_disabling_with_partner_accounts(conn, tenant)
    return await get_settings(conn, tenant)


# The Reseller Account switch's interlock: a transaction-level advisory lock per tenant, shared
# by the requests that flag partner accounts and taken alone by a disabling. Not a row lock of
# `tenants`: on a database distributed by tenant (docs/scale-out.md) that is a reference table,
# whose row locks are taken on every node, and parallel partner writes deadlocked across nodes;
# an advisory lock stays where the statement runs, the coordinator.
_SWITCH_SEED = 0x5E11_E700
_SWITCH_SHARED = text("SELECT pg_advisory_xact_lock_shared(hashtextextended(:tenant, :seed))")
_SWITCH_ALONE = text("SELECT pg_advisory_xact_lock(hashtextextended(:tenant, :seed))")


async def _refuse_disabling_with_partner_accounts(conn: AsyncConnection, tenant: Tenant) -> None:
    """Called after the switch is updated: waits for the requests that flag a partner account
    and hold the interlock (`require_reseller_account`), then sees their partner accounts; a
    request that comes later waits for this transaction and then sees the feature off."""
    await conn.execute(_SWITCH_ALONE, {"tenant": tenant.id, "seed": _SWITCH_SEED})
    partner = await conn.scalar(
        text(
            "SELECT EXISTS (SELECT 1 FROM accounts WHERE tenant_id = :tenant AND partner_account)"
        ),
        {"tenant": tenant.id},
    )
    if partner:
        raise ZuoraError(
            Resource.TENANT,
            Category.BUSINESS_RULE,
            "The Reseller Account feature cannot be disabled while any account is a partner "
            "account: switch those accounts' partnerAccount off first.",
        )


async def require_reseller_account(conn: AsyncConnection, tenant: Tenant) -> None:
    """Refuse a request that sets `partnerAccount` when the tenant has the feature disabled.

    Under the switch's interlock, shared, held to the commit: parallel partner writes share it,
    and a concurrent disabling waits for them, then sees their partner accounts and is refused.
    The switch is read after the interlock is held, so a disabling that held it first is seen."""
    await conn.execute(_SWITCH_SHARED, {"tenant": tenant.id, "seed": _SWITCH_SEED})
    enabled = await conn.scalar(
        select(tenants.c.reseller_account_enabled).where(tenants.c.id == tenant.id)
    )
    if not enabled:
        raise ZuoraError(
            Resource.ACCOUNT,
            Category.BUSINESS_RULE,
            "partnerAccount: the Reseller Account feature is disabled for this tenant "
            "(Manage Features, or PUT /v1/partnerbill/settings with resellerAccountEnabled).",
        )
