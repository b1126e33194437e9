"""The metrics engine (docs/architecture.md): `recompute` derives an account's metrics from its
documents; `touch` is how every write path reports what it changed; `read_metrics` and
`with_metrics` read them with their freshness. The refresh that folds a partner account's
pending changes is `metrics/refresh.py`.

- Non-partner account: `touch` applies the operation's deltas to the metrics row in the caller's
  transaction, under that row's lock, the last lock a write takes (`core/locking.py`). The wait
  for the lock is bounded by the tenant's
  `lock_wait_ms` (`core.locks.bounded_lock_wait`); past it the request fails with the
  lock-competition error and its transaction rolls back whole.
- Partner account: `touch` appends one row per account to `metrics_changes` and locks nothing
  that other writers of the account share.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Numeric,
    Row,
    Select,
    and_,
    bindparam,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import BindParameter

from partnerbill.core.errors import Resource
from partnerbill.core.json import dumps, v1_datetime
from partnerbill.core.locking import lock_row
from partnerbill.core.locks import bounded_lock_wait
from partnerbill.core.money import ZERO
from partnerbill.core.tenants import Tenant
from partnerbill.settings import get_settings
from partnerbill.tables.accounts import accounts
from partnerbill.tables.billing import DocumentStatus, invoices
from partnerbill.tables.memos import credit_memos, debit_memos
from partnerbill.tables.metrics import account_metrics, metrics_changes
from partnerbill.tables.payments import PaymentStatus, payments
from partnerbill.tables.subscriptions import rate_plan_charges, subscriptions

# A hot partner account gathers thousands of changes between refreshes; counting past this costs
# every account read more than the exact figure tells (reads stay fast under write load: 8,000
# pending rows took 2.7 ms to count, 1,000 under 1 ms). The cap is reported
# (`pendingChangesCapped`).
PENDING_COUNT_CAP = 1_000


@dataclass(frozen=True, slots=True)
class AccountMetrics:
    total_invoice_balance: Decimal = ZERO
    total_debit_memo_balance: Decimal = ZERO
    unapplied_payment_amount: Decimal = ZERO
    unapplied_credit_memo_amount: Decimal = ZERO
    credit_balance: Decimal = ZERO  # legacy Credit Balance; always 0 under Invoice Settlement
    reserved_payment_amount: Decimal = ZERO
    contracted_mrr: Decimal = ZERO
    last_invoice_date: date | None = None
    last_payment_date: date | None = None
    last_payment_amount: Decimal | None = None

    @property
    def balance(self) -> Decimal:
        """Invoice Settlement: invoices + debit memos - unapplied payments - unapplied credit."""
        return (
            self.total_invoice_balance
            + self.total_debit_memo_balance
            - self.unapplied_payment_amount
            - self.unapplied_credit_memo_amount
        )

    @classmethod
    def from_mapping(cls, mapping: Mapping[Any, Any]) -> "AccountMetrics":
        return cls(**{f.name: mapping[f.name] for f in fields(cls)})

    def as_values(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)
class MetricsDelta:
    """What one operation changed on one account, in the metrics' own terms."""

    account_id: str
    partner_account: bool
    total_invoice_balance: Decimal = ZERO
    total_debit_memo_balance: Decimal = ZERO
    unapplied_payment_amount: Decimal = ZERO
    unapplied_credit_memo_amount: Decimal = ZERO
    contracted_mrr: Decimal = ZERO
    # An invoice was posted on this date: lastInvoiceDate becomes at least this.
    posted_invoice_date: date | None = None
    # An invoice left the Posted state: lastInvoiceDate must be derived again.
    posted_invoice_removed: bool = False
    # A payment was made or canceled: the last payment must be derived again.
    payments_changed: bool = False
    _merged: int = field(default=1, repr=False)

    @property
    def changes_nothing(self) -> bool:
        return (
            all(getattr(self, name) == 0 for name in ADDITIVE_METRICS)
            and self.posted_invoice_date is None
            and not self.posted_invoice_removed
            and not self.payments_changed
        )

    def merge(self, other: "MetricsDelta") -> None:
        assert other.account_id == self.account_id
        assert other.partner_account == self.partner_account
        for name in ADDITIVE_METRICS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.posted_invoice_date is not None:
            self.posted_invoice_date = max(
                filter(None, (self.posted_invoice_date, other.posted_invoice_date))
            )
        self.posted_invoice_removed |= other.posted_invoice_removed
        self.payments_changed |= other.payments_changed
        self._merged += 1


# The metrics an operation moves by adding an amount (the delta path applies them as such).
ADDITIVE_METRICS = (
    "total_invoice_balance",
    "total_debit_memo_balance",
    "unapplied_payment_amount",
    "unapplied_credit_memo_amount",
    "contracted_mrr",
)


METRIC_COLUMNS = [account_metrics.c[f.name] for f in fields(AccountMetrics)]


def _sum(expression: Any, *where: Any) -> Any:
    return select(func.coalesce(func.sum(expression), ZERO)).where(*where).scalar_subquery()


def recompute_columns(tenant: Tenant, account_id: str) -> list[Any]:
    """Every metric of one account as a labeled scalar subquery over its documents.

    Document metrics belong to the account on the document (the invoice owner); contractedMrr
    to the subscription owner.
    """
    posted_invoices = (
        invoices.c.tenant_id == tenant.id,
        invoices.c.account_id == account_id,
        invoices.c.status == DocumentStatus.POSTED,
    )
    contracted_mrr = (
        select(func.coalesce(func.sum(rate_plan_charges.c.mrr), ZERO))
        .select_from(subscriptions)
        .join(
            rate_plan_charges,
            (rate_plan_charges.c.tenant_id == subscriptions.c.tenant_id)
            & (rate_plan_charges.c.subscription_id == subscriptions.c.id),
        )
        .where(
            subscriptions.c.tenant_id == tenant.id,
            subscriptions.c.account_id == account_id,
            subscriptions.c.cancelled_date.is_(None),
            rate_plan_charges.c.is_last_segment,
            rate_plan_charges.c.effective_end_date.is_(None),
            rate_plan_charges.c.charge_type == "Recurring",
        )
        .scalar_subquery()
    )
    return [
        _sum(invoices.c.balance, *posted_invoices).label("total_invoice_balance"),
        _last_invoice_date(tenant, account_id).label("last_invoice_date"),
        _sum(
            debit_memos.c.balance,
            debit_memos.c.tenant_id == tenant.id,
            debit_memos.c.account_id == account_id,
            debit_memos.c.status == DocumentStatus.POSTED,
        ).label("total_debit_memo_balance"),
        _sum(
            payments.c.amount - payments.c.applied_amount - payments.c.refund_amount,
            payments.c.tenant_id == tenant.id,
            payments.c.account_id == account_id,
            payments.c.status == PaymentStatus.PROCESSED,
        ).label("unapplied_payment_amount"),
        _sum(
            credit_memos.c.amount - credit_memos.c.applied_amount - credit_memos.c.refund_amount,
            credit_memos.c.tenant_id == tenant.id,
            credit_memos.c.account_id == account_id,
            credit_memos.c.status == DocumentStatus.POSTED,
        ).label("unapplied_credit_memo_amount"),
        contracted_mrr.label("contracted_mrr"),
        _last_payment(tenant, account_id, payments.c.effective_date).label("last_payment_date"),
        _last_payment(tenant, account_id, payments.c.amount).label("last_payment_amount"),
        # Not derived from documents under Invoice Settlement: always zero.
        literal(ZERO, Numeric).label("credit_balance"),
        literal(ZERO, Numeric).label("reserved_payment_amount"),
    ]


async def recompute(conn: AsyncConnection, tenant: Tenant, account_id: str) -> AccountMetrics:
    """Every metric of one account, derived exactly from its documents, in one statement."""
    row = (await conn.execute(select(*recompute_columns(tenant, account_id)))).one()
    return AccountMetrics.from_mapping(row._mapping)


def _last_invoice_date(tenant: Tenant, account_id: Any) -> Any:
    """The date of the account's latest posted invoice (an index-only lookup)."""
    return (
        select(func.max(invoices.c.invoice_date))
        .where(
            invoices.c.tenant_id == tenant.id,
            invoices.c.account_id == account_id,
            invoices.c.status == DocumentStatus.POSTED,
        )
        .scalar_subquery()
    )


def _last_payment(tenant: Tenant, account_id: Any, column: Any) -> Any:
    """A column of the account's latest processed payment (by effective date, then creation)."""
    return (
        select(column)
        .where(
            payments.c.tenant_id == tenant.id,
            payments.c.account_id == account_id,
            payments.c.status == PaymentStatus.PROCESSED,
        )
        .order_by(payments.c.effective_date.desc(), payments.c.created_at.desc())
        .limit(1)
        .scalar_subquery()
    )


async def create_metrics(
    conn: AsyncConnection, tenant: Tenant, account_id: str, *, partner_account: bool
) -> None:
    """A new account starts with zero metrics (it has no documents yet); they are exact now,
    so a partner account's are stamped fresh, as when an account is switched to partner."""
    await conn.execute(
        insert(account_metrics).values(
            tenant_id=tenant.id,
            account_id=account_id,
            last_metrics_update=func.now() if partner_account else None,
        )
    )


# The parts of a delta a change row carries (besides the account).
DELTA_FIELDS = (
    *ADDITIVE_METRICS,
    "posted_invoice_date",
    "posted_invoice_removed",
    "payments_changed",
)
_DELTA_TYPES = {
    **dict.fromkeys(ADDITIVE_METRICS, "numeric"),
    "posted_invoice_date": "date",
    "posted_invoice_removed": "boolean",
    "payments_changed": "boolean",
}
# Appends one change row per deferred account, carrying its delta. A write that inserts its
# documents in one statement embeds this as a CTE (`touch(..., logged=True)` then skips it): one
# round trip less. The rows come as a JSON array (`changed_accounts`): cheaper than arrays.
LOG_CHANGES = (
    f"INSERT INTO metrics_changes (tenant_id, account_id, {', '.join(DELTA_FIELDS)}, recompute) "
    f"SELECT :tenant_id, c.account_id, {', '.join(f'c.{name}' for name in DELTA_FIELDS)}, false "
    "FROM jsonb_to_recordset(CAST(:changed_accounts AS jsonb)) AS c(account_id text, "
    + ", ".join(f"{name} {kind}" for name, kind in _DELTA_TYPES.items())
    + ")"
)


def _merged(deltas: Iterable[MetricsDelta]) -> dict[str, MetricsDelta]:
    """The deltas by account, those of one account merged (in a copy: the caller's stay)."""
    merged: dict[str, MetricsDelta] = {}
    for delta in deltas:
        if delta.account_id in merged:
            merged[delta.account_id].merge(delta)
        else:
            merged[delta.account_id] = replace(delta)
    return merged


def changed_accounts(deltas: Iterable[MetricsDelta]) -> str:
    """`LOG_CHANGES`'s `changed_accounts`: one entry per partner account among `deltas` (in id
    order), with what the write changed there."""
    return dumps(_change_entries(deltas)).decode()


def changes_of_writes(writes: Iterable[Iterable[MetricsDelta]]) -> str:
    """`changed_accounts` for one statement carrying several writes (a group commit): each
    write's entries, so each write stays one pending change."""
    return dumps([entry for deltas in writes for entry in _change_entries(deltas)]).decode()


def change_rows(tenant: Tenant, writes: Iterable[Iterable[MetricsDelta]]) -> list[dict[str, Any]]:
    """The `metrics_changes` rows of `writes` (as `changes_of_writes` lists them), for a
    multi-row VALUES insert: the form a database distributed by tenant routes to one shard."""
    return [
        {"tenant_id": tenant.id, **entry, "recompute": False}
        for deltas in writes
        for entry in _change_entries(deltas)
    ]


def _change_entries(deltas: Iterable[MetricsDelta]) -> list[dict[str, Any]]:
    merged = _merged(deltas)
    return [
        {
            "account_id": account_id,
            **{name: getattr(merged[account_id], name) for name in DELTA_FIELDS},
        }
        for account_id in sorted(a for a, d in merged.items() if d.partner_account)
    ]


async def touch(
    conn: AsyncConnection, tenant: Tenant, deltas: Iterable[MetricsDelta], *, logged: bool = False
) -> None:
    """Report the accounts a write changed. Call it after the write's document rows exist.

    `logged`: the write's own statement already ran `LOG_CHANGES` for `changed_accounts(deltas)`.
    """
    merged = _merged(deltas)
    deferred = any(delta.partner_account for delta in merged.values())
    # A synchronous account whose figures did not move needs no lock (e.g. the invoice owner in
    # an owner transfer).
    synchronous = sorted(
        a for a, d in merged.items() if not d.partner_account and not d.changes_nothing
    )
    if deferred and not logged:
        if get_settings().distributed:
            await conn.execute(
                insert(metrics_changes).values(change_rows(tenant, [merged.values()]))
            )
        else:
            await conn.execute(
                text(LOG_CHANGES),
                {"tenant_id": tenant.id, "changed_accounts": changed_accounts(merged.values())},
            )
    if synchronous:
        await _apply_synchronously(conn, tenant, [merged[a] for a in synchronous])


async def _apply_synchronously(
    conn: AsyncConnection, tenant: Tenant, deltas: Sequence[MetricsDelta]
) -> None:
    """Apply deltas under the metrics row locks (accounts in id order: no deadlock between two
    writes that touch the same pair of accounts), each wait bounded by the tenant's setting."""
    async with bounded_lock_wait(conn, tenant, Resource.ACCOUNT):
        for delta in deltas:
            where = and_(
                account_metrics.c.tenant_id == tenant.id,
                account_metrics.c.account_id == delta.account_id,
            )
            values: dict[str, object] = {
                name: account_metrics.c[name] + getattr(delta, name)
                for name in ADDITIVE_METRICS
                if getattr(delta, name) != 0
            }
            if not values:  # nothing adds up, but the row is still locked for what follows
                values["total_invoice_balance"] = account_metrics.c.total_invoice_balance
            if delta.posted_invoice_date is not None:
                values["last_invoice_date"] = func.greatest(
                    account_metrics.c.last_invoice_date, delta.posted_invoice_date
                )
            updated = await conn.execute(update(account_metrics).where(where).values(**values))
            assert updated.rowcount == 1, f"no metrics row for account {delta.account_id}"
            if delta.payments_changed:
                # Derived again in a new statement (as lastInvoiceDate below): which payment is
                # last among same-day ones is decided by creation order, not by lock order.
                await conn.execute(
                    update(account_metrics)
                    .where(where)
                    .values(
                        last_payment_date=_last_payment(
                            tenant, delta.account_id, payments.c.effective_date
                        ),
                        last_payment_amount=_last_payment(
                            tenant, delta.account_id, payments.c.amount
                        ),
                    )
                )
            if delta.posted_invoice_removed:
                # A new statement, so its snapshot sees every writer that held the lock before us.
                await conn.execute(
                    update(account_metrics)
                    .where(where)
                    .values(last_invoice_date=_last_invoice_date(tenant, delta.account_id))
                )


async def lock_metrics_row(conn: AsyncConnection, tenant: Tenant, account_id: str) -> None:
    """The account's metrics row `FOR UPDATE`, within the tenant's lock-wait bound."""
    await lock_row(
        conn,
        tenant,
        account_metrics,
        account_metrics.c.account_id == account_id,
        Resource.ACCOUNT,
        columns=(account_metrics.c.account_id,),
    )


async def make_synchronous(conn: AsyncConnection, tenant: Tenant, account_id: str) -> None:
    """The account stops being a partner: metrics are exact from now on, the log is dropped.

    The caller holds the account row `FOR UPDATE`, which waits out every in-flight writer (they
    hold it `FOR KEY SHARE`) and holds back new ones until the flag is committed.
    """
    await lock_metrics_row(conn, tenant, account_id)
    await conn.execute(
        metrics_changes.delete().where(
            metrics_changes.c.tenant_id == tenant.id, metrics_changes.c.account_id == account_id
        )
    )
    metrics = await recompute(conn, tenant, account_id)
    await conn.execute(
        update(account_metrics)
        .where(account_metrics.c.tenant_id == tenant.id, account_metrics.c.account_id == account_id)
        .values(**metrics.as_values(), last_metrics_update=None)
    )


async def make_deferred(conn: AsyncConnection, tenant: Tenant, account_id: str) -> None:
    """The account becomes a partner: its metrics are exact right now, so stamp them as fresh."""
    await conn.execute(
        update(account_metrics)
        .where(account_metrics.c.tenant_id == tenant.id, account_metrics.c.account_id == account_id)
        .values(last_metrics_update=func.now())
    )


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    metrics: AccountMetrics
    last_metrics_update: datetime | None
    pending_changes: int
    oldest_pending_change: datetime | None

    @classmethod
    def of(cls, row: Row[Any]) -> "MetricsSnapshot":
        """The snapshot in a row of a `with_metrics` statement."""
        return cls(
            metrics=AccountMetrics.from_mapping(row._mapping),
            last_metrics_update=row.last_metrics_update,
            pending_changes=row.pending,
            oldest_pending_change=row.oldest,
        )

    def freshness_json(self) -> dict[str, object]:
        return {
            "pendingChanges": self.pending_changes,
            "pendingChangesCapped": self.pending_changes >= PENDING_COUNT_CAP,
            "oldestPendingChange": v1_datetime(self.oldest_pending_change),
        }


def with_metrics(statement: Select[Any], tenant_id: str | BindParameter[str]) -> Select[Any]:
    """`statement`, a select of the tenant's `accounts` rows, with each account's cached metrics
    and their freshness (read back with `MetricsSnapshot.of`): an account read is one round trip.

    Every table is restricted by `tenant_id` itself (a value or a bound parameter), never only
    through `accounts.tenant_id`: on a database distributed by tenant (docs/scale-out.md) the
    correlated subqueries would otherwise be sent to every shard."""
    own_changes = (metrics_changes.c.tenant_id == tenant_id) & (
        metrics_changes.c.account_id == accounts.c.id
    )
    # In primary-key order, so the scan stops at the cap instead of collecting every entry first.
    pending = (
        select(metrics_changes.c.id)
        .where(own_changes)
        .correlate(accounts)
        .order_by(metrics_changes.c.id)
        .limit(PENDING_COUNT_CAP)
        .subquery()
    )
    oldest = (
        select(metrics_changes.c.changed_at)
        .where(own_changes)
        .order_by(metrics_changes.c.id)
        .limit(1)
        .scalar_subquery()
    )
    return statement.join(
        account_metrics,
        (account_metrics.c.tenant_id == tenant_id)
        & (account_metrics.c.account_id == accounts.c.id),
    ).add_columns(
        *METRIC_COLUMNS,
        account_metrics.c.last_metrics_update,
        select(func.count()).select_from(pending).scalar_subquery().label("pending"),
        oldest.label("oldest"),
    )


# The account read's metrics and freshness (`read_metrics`).
READ_METRICS = with_metrics(
    select()
    .select_from(accounts)
    .where(
        accounts.c.tenant_id == bindparam("tenant_id"), accounts.c.id == bindparam("account_id")
    ),
    bindparam("tenant_id"),
)


async def read_metrics(conn: AsyncConnection, tenant: Tenant, account_id: str) -> MetricsSnapshot:
    """The cached metrics with their freshness, in one round trip."""
    row = (
        await conn.execute(READ_METRICS, {"tenant_id": tenant.id, "account_id": account_id})
    ).one()
    return MetricsSnapshot.of(row)
