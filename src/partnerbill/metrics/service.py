"""The metrics engine (DESIGN §3): `recompute` derives an account's metrics from its documents;
`touch` is how every write path reports what it changed; the refresh folds a partner account's
pending changes.

- Non-partner account: `touch` applies the operation's deltas to the metrics row in the caller's
  transaction, under that row's lock. The wait for the lock is bounded by the tenant's
  `lock_wait_ms` (`core.locks.bounded_lock_wait`); past it the request fails with the
  lock-competition error and its transaction rolls back whole.
- Partner account: `touch` appends one row per account to `metrics_changes` and locks nothing
  that other writers of the account share.
- Refresh: claims the metrics row (`SKIP LOCKED` for the scheduler), deletes the change rows its
  statement can see, *then* recomputes in a later statement. A change row and its documents commit
  together, so every deleted change is visible to the recompute; a change that commits after the
  delete keeps its row and stays pending for the next refresh. No watermark, so a change with a
  lower id that commits late cannot be skipped.
- A backlog is folded in chunks (`fold_changes`, at most `FOLD_CHUNK_CHANGES` rows, oldest
  first): a chunk that is not the last leaves a row behind and skips the recompute, so the
  account stays pending until the transaction that folds the last chunk recomputes. After a
  large fold the change log is vacuumed at once: dead entries at the front of the account's
  index range would otherwise slow every read of the account's pending count.
"""

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from prometheus_client import Counter, Histogram
from sqlalchemy import Row, Select, and_, bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.accounts.tables import accounts
from partnerbill.billing.tables import invoices
from partnerbill.core.errors import Resource
from partnerbill.core.jobs import defer_in_transaction
from partnerbill.core.json import dumps, v1_datetime
from partnerbill.core.locks import bounded_lock_wait
from partnerbill.core.money import ZERO
from partnerbill.core.tables import tenants
from partnerbill.core.tenants import Tenant
from partnerbill.memos.tables import credit_memos, debit_memos
from partnerbill.metrics.tables import account_metrics, metrics_changes
from partnerbill.payments.tables import payments
from partnerbill.subscriptions.tables import rate_plan_charges, subscriptions

# A hot partner account gathers thousands of changes between refreshes; counting past this costs
# every account read more than the exact figure tells (reads stay fast under write load: 8,000
# pending rows took 2.7 ms to count, 1,000 under 1 ms). The cap is reported
# (`pendingChangesCapped`).
PENDING_COUNT_CAP = 1_000
# Change rows one refresh transaction folds: a backlog of any size is folded in transactions
# (and statements) of bounded size.
FOLD_CHUNK_CHANGES = 20_000
# A refresh that folded this many changes vacuums the change log right away (`vacuum_change_log`)
# instead of leaving the dead rows to autovacuum.
VACUUM_AFTER_FOLDED_CHANGES = 50_000
# Accounts refreshed by one scheduler tick; the rest wait for the next tick.
REFRESH_ACCOUNTS_PER_TICK = 1_000
# A due check this early still counts, so a 60 s interval is served by a 60 s tick.
DUE_SLACK_SECONDS = 5

REFRESH_DURATION = Histogram(
    "partnerbill_metrics_refresh_duration_seconds",
    "Time to refresh one partner account's metrics.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
REFRESH_LAG = Histogram(
    "partnerbill_metrics_refresh_lag_seconds",
    "Age of the oldest change a refresh folded: how stale the metrics were.",
    buckets=(1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 7200, 14400, 86400),
)
REFRESHED_CHANGES = Counter(
    "partnerbill_metrics_refreshed_changes_total", "Change-log rows folded by refreshes."
)


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


async def recompute(conn: AsyncConnection, tenant: Tenant, account_id: str) -> AccountMetrics:
    """Every metric of one account, derived exactly from its documents, in one statement.

    Document metrics belong to the account on the document (the invoice owner); contractedMrr
    to the subscription owner.
    """
    posted_invoices = (
        invoices.c.tenant_id == tenant.id,
        invoices.c.account_id == account_id,
        invoices.c.status == "Posted",
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
    row = (
        await conn.execute(
            select(
                _sum(invoices.c.balance, *posted_invoices).label("total_invoice_balance"),
                select(func.max(invoices.c.invoice_date))
                .where(*posted_invoices)
                .scalar_subquery()
                .label("last_invoice_date"),
                _sum(
                    debit_memos.c.balance,
                    debit_memos.c.tenant_id == tenant.id,
                    debit_memos.c.account_id == account_id,
                    debit_memos.c.status == "Posted",
                ).label("total_debit_memo_balance"),
                _sum(
                    payments.c.amount - payments.c.applied_amount - payments.c.refund_amount,
                    payments.c.tenant_id == tenant.id,
                    payments.c.account_id == account_id,
                    payments.c.status == "Processed",
                ).label("unapplied_payment_amount"),
                _sum(
                    credit_memos.c.amount
                    - credit_memos.c.applied_amount
                    - credit_memos.c.refund_amount,
                    credit_memos.c.tenant_id == tenant.id,
                    credit_memos.c.account_id == account_id,
                    credit_memos.c.status == "Posted",
                ).label("unapplied_credit_memo_amount"),
                contracted_mrr.label("contracted_mrr"),
                _last_payment(tenant, account_id, payments.c.effective_date).label(
                    "last_payment_date"
                ),
                _last_payment(tenant, account_id, payments.c.amount).label("last_payment_amount"),
            )
        )
    ).one()
    return AccountMetrics(
        total_invoice_balance=row.total_invoice_balance,
        total_debit_memo_balance=row.total_debit_memo_balance,
        unapplied_payment_amount=row.unapplied_payment_amount,
        unapplied_credit_memo_amount=row.unapplied_credit_memo_amount,
        contracted_mrr=row.contracted_mrr,
        last_invoice_date=row.last_invoice_date,
        last_payment_date=row.last_payment_date,
        last_payment_amount=row.last_payment_amount,
    )


def _last_payment(tenant: Tenant, account_id: Any, column: Any) -> Any:
    """A column of the account's latest processed payment (by effective date, then creation)."""
    return (
        select(column)
        .where(
            payments.c.tenant_id == tenant.id,
            payments.c.account_id == account_id,
            payments.c.status == "Processed",
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


# Appends one change row per deferred account. A write that inserts its documents in one
# statement embeds this as a CTE (`touch(..., logged=True)` then skips it): one round trip less.
# The accounts come as a JSON array (`changed_accounts`): cheaper to encode than a text[].
LOG_CHANGES = (
    "INSERT INTO metrics_changes (tenant_id, account_id) "
    "SELECT :tenant_id, jsonb_array_elements_text(CAST(:changed_accounts AS jsonb))"
)


def _deferred_accounts(deltas: Iterable[MetricsDelta]) -> list[str]:
    return sorted({delta.account_id for delta in deltas if delta.partner_account})


def changed_accounts(deltas: Iterable[MetricsDelta]) -> str:
    """`LOG_CHANGES`'s `changed_accounts`: the partner accounts among `deltas`, in id order."""
    return dumps(_deferred_accounts(deltas)).decode()


async def touch(
    conn: AsyncConnection, tenant: Tenant, deltas: Iterable[MetricsDelta], *, logged: bool = False
) -> None:
    """Report the accounts a write changed. Call it after the write's document rows exist.

    `logged`: the write's own statement already ran `LOG_CHANGES` for `changed_accounts(deltas)`.
    """
    merged: dict[str, MetricsDelta] = {}
    for delta in deltas:
        if delta.account_id in merged:
            merged[delta.account_id].merge(delta)
        else:
            merged[delta.account_id] = delta
    deferred = _deferred_accounts(merged.values())
    # A synchronous account whose figures did not move needs no lock (e.g. the invoice owner in
    # an owner transfer).
    synchronous = sorted(
        a for a, d in merged.items() if not d.partner_account and not d.changes_nothing
    )
    if deferred and not logged:
        await conn.execute(
            text(LOG_CHANGES),
            {"tenant_id": tenant.id, "changed_accounts": dumps(deferred).decode()},
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
                    .values(
                        last_invoice_date=select(func.max(invoices.c.invoice_date))
                        .where(
                            invoices.c.tenant_id == tenant.id,
                            invoices.c.account_id == delta.account_id,
                            invoices.c.status == "Posted",
                        )
                        .scalar_subquery()
                    )
                )


@dataclass(frozen=True, slots=True)
class RefreshResult:
    account_id: str
    folded_changes: int
    metrics: AccountMetrics
    refreshed_at: datetime
    duration_seconds: float


@dataclass(frozen=True, slots=True)
class FoldedChunk:
    """One transaction's part of a refresh. `result` is None while changes remain: the metrics
    are recomputed by the transaction that folds the last chunk."""

    folded_changes: int
    oldest_change: datetime | None
    result: RefreshResult | None


# The oldest `chunk` change rows of the account, by id (an index scan: ids known up front, not a
# range the planner must guess). A (chunk + 1)-th row, when there is one, stays behind, so the
# account is still pending and its metrics are not recomputed yet. Without one, every change row
# the statement sees is folded.
_FOLD_CHUNK = text(
    "WITH batch AS MATERIALIZED (SELECT id FROM metrics_changes "
    "WHERE tenant_id = :tenant_id AND account_id = :account_id ORDER BY id LIMIT :chunk + 1), "
    "folded AS (DELETE FROM metrics_changes "
    "WHERE tenant_id = :tenant_id AND account_id = :account_id "
    "AND id = ANY(ARRAY(SELECT id FROM batch ORDER BY id LIMIT :chunk)) RETURNING changed_at) "
    "SELECT count(*), min(changed_at), now(), (SELECT count(*) FROM batch) > :chunk FROM folded"
)
_FOLD_ALL = text(
    "WITH folded AS (DELETE FROM metrics_changes "
    "WHERE tenant_id = :tenant_id AND account_id = :account_id RETURNING changed_at) "
    "SELECT count(*), min(changed_at), now(), false FROM folded"
)


async def fold_changes(
    conn: AsyncConnection,
    tenant: Tenant,
    account_id: str,
    *,
    wait: bool,
    chunk: int | None = FOLD_CHUNK_CHANGES,
) -> FoldedChunk | None:
    """Fold at most `chunk` of the account's pending changes (None: all it sees); when none
    remain, recompute its metrics and stamp `lastMetricsUpdate`. None when the account was
    skipped (`wait=False` and another refresh holds it).

    A chunk folded without the recompute leaves a change row behind, so a refresh cut off
    between chunks leaves the account pending: the next one recomputes.
    """
    started = time.perf_counter()
    claim = (
        select(account_metrics.c.account_id)
        .where(account_metrics.c.tenant_id == tenant.id, account_metrics.c.account_id == account_id)
        .with_for_update(skip_locked=not wait)
    )
    if wait:
        # An on-demand refresh queues behind a running one for at most the tenant's lock bound.
        async with bounded_lock_wait(conn, tenant, Resource.ACCOUNT):
            claimed = await conn.scalar(claim)
    else:
        claimed = await conn.scalar(claim)
    if claimed is None:
        return None
    folded_count, oldest_change, now, more = (
        await conn.execute(
            _FOLD_ALL if chunk is None else _FOLD_CHUNK,
            {"tenant_id": tenant.id, "account_id": account_id, "chunk": chunk},
        )
    ).one()
    REFRESHED_CHANGES.inc(folded_count)
    if more:
        return FoldedChunk(folded_count, oldest_change, None)
    metrics = await recompute(conn, tenant, account_id)
    await conn.execute(
        update(account_metrics)
        .where(account_metrics.c.tenant_id == tenant.id, account_metrics.c.account_id == account_id)
        .values(**metrics.as_values(), last_metrics_update=now)
    )
    duration = time.perf_counter() - started
    result = RefreshResult(account_id, folded_count, metrics, now, duration)
    return FoldedChunk(folded_count, oldest_change, result)


def observe_refresh(result: RefreshResult, oldest_change: datetime | None) -> None:
    REFRESH_DURATION.observe(result.duration_seconds)
    if oldest_change is not None:
        REFRESH_LAG.observe((result.refreshed_at - oldest_change).total_seconds())


async def refresh_account(
    conn: AsyncConnection, tenant: Tenant, account_id: str, *, wait: bool
) -> RefreshResult | None:
    """Fold every pending change of one account in the caller's transaction and stamp
    `lastMetricsUpdate`.

    `wait=False` (the scheduler) skips an account another refresh holds; `wait=True` (on demand)
    waits for it, so the caller's own earlier writes are folded when this returns.
    Returns None when the account was skipped. The scheduler folds a backlog in a transaction
    per chunk instead (`metrics.tasks.refresh_partner_account`): in one transaction, chunks
    would each walk the rows the earlier ones deleted. A large fold here has the job worker
    clean the change log once it commits (`vacuum_change_log`).
    """
    step = await fold_changes(conn, tenant, account_id, wait=wait, chunk=None)
    if step is None:
        return None
    assert step.result is not None
    if step.folded_changes >= VACUUM_AFTER_FOLDED_CHANGES:
        await defer_in_transaction(conn, "metrics:vacuum_change_log")
    observe_refresh(step.result, step.oldest_change)
    return step.result


async def vacuum_change_log(conn: AsyncConnection) -> None:
    """Reclaim the change rows refreshes deleted, after a large fold.

    The fold leaves that many dead entries at the front of the account's range of the primary
    key, which every account read's pending count walks (1M of them: 0.3 ms became 100-300 ms).
    VACUUM removes them but does not shrink the index, whose size then makes the planner prefer
    a sequential scan of the whole change log; so the index is rebuilt first (CONCURRENTLY:
    writers go on), then the table vacuumed and analyzed. `conn` must be in autocommit (neither
    runs in a transaction). Not SKIP_LOCKED: an autovacuum already on the table is throttled and
    may take minutes; it gives way to this one within a second.
    """
    await conn.execute(text("REINDEX INDEX CONCURRENTLY pk_metrics_changes"))
    await conn.execute(text("VACUUM (ANALYZE) metrics_changes"))


async def make_synchronous(conn: AsyncConnection, tenant: Tenant, account_id: str) -> None:
    """The account stops being a partner: metrics are exact from now on, the log is dropped.

    The caller holds the account row `FOR UPDATE`, which waits out every in-flight writer (they
    hold it `FOR KEY SHARE`) and holds back new ones until the flag is committed.
    """
    async with bounded_lock_wait(conn, tenant, Resource.ACCOUNT):
        await conn.scalar(
            select(account_metrics.c.account_id)
            .where(
                account_metrics.c.tenant_id == tenant.id,
                account_metrics.c.account_id == account_id,
            )
            .with_for_update()
        )
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


def with_metrics(statement: Select[Any]) -> Select[Any]:
    """`statement`, a select of `accounts` rows, with each account's cached metrics and their
    freshness (read back with `MetricsSnapshot.of`): an account read is one round trip."""
    own_changes = (metrics_changes.c.tenant_id == accounts.c.tenant_id) & (
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
        (account_metrics.c.tenant_id == accounts.c.tenant_id)
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
    .where(accounts.c.tenant_id == bindparam("tenant_id"), accounts.c.id == bindparam("account_id"))
)


async def read_metrics(conn: AsyncConnection, tenant: Tenant, account_id: str) -> MetricsSnapshot:
    """The cached metrics with their freshness, in one round trip."""
    row = (
        await conn.execute(READ_METRICS, {"tenant_id": tenant.id, "account_id": account_id})
    ).one()
    return MetricsSnapshot.of(row)


async def due_partner_accounts(conn: AsyncConnection, limit: int) -> list[tuple[Tenant, str]]:
    """Partner accounts with pending changes whose tenant's refresh interval has elapsed."""
    has_pending = (
        select(metrics_changes.c.id)
        .where(
            metrics_changes.c.tenant_id == account_metrics.c.tenant_id,
            metrics_changes.c.account_id == account_metrics.c.account_id,
        )
        .exists()
    )
    interval_elapsed = account_metrics.c.last_metrics_update.is_(None) | (
        account_metrics.c.last_metrics_update
        <= func.now()
        - func.make_interval(
            0, 0, 0, 0, 0, 0, tenants.c.metrics_refresh_interval_seconds - DUE_SLACK_SECONDS
        )
    )
    rows = await conn.execute(
        select(tenants.c.id, tenants.c.number, account_metrics.c.account_id)
        .join(
            accounts,
            and_(
                accounts.c.tenant_id == account_metrics.c.tenant_id,
                accounts.c.id == account_metrics.c.account_id,
            ),
        )
        .join(tenants, tenants.c.id == account_metrics.c.tenant_id)
        .where(accounts.c.partner_account, has_pending, interval_elapsed)
        .order_by(account_metrics.c.last_metrics_update.nulls_first())
        .limit(limit)
    )
    return [(Tenant(id=r.id, number=r.number), r.account_id) for r in rows]
