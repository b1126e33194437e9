"""The refresh of a partner account's metrics: folding its pending changes, verifying the
result against a full recompute, and finding the accounts that are due.

- A refresh claims the metrics row (`SKIP LOCKED` for the scheduler), then in one statement
  deletes the change rows it can see and folds their deltas (or recomputes, for a change row
  without deltas). A change row and its documents commit together, so every deleted change is
  visible to the fold; a change that commits after the delete keeps its row and stays pending
  for the next refresh. No watermark, so a change with a lower id that commits late cannot be
  skipped.
- A backlog is folded in chunks (`fold_changes`, at most `FOLD_CHUNK_CHANGES` rows, oldest
  first): a chunk that is not the last leaves a row behind and skips the recompute, so the
  account stays pending until the transaction that folds the last chunk recomputes. After a
  large fold the change log is vacuumed at once: dead entries at the front of the account's
  index range would otherwise slow every read of the account's pending count.
- Every `VERIFY_INTERVAL_SECONDS` a refresh also compares the folded metrics with a full
  recompute (`verify_account`); a difference is counted as drift, a bug.
"""

import time
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from sqlalchemy import and_, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import TextClause

from partnerbill.core.jobs import defer_in_transaction
from partnerbill.core.money import ZERO
from partnerbill.core.tables import tenants
from partnerbill.core.tenants import Tenant
from partnerbill.metrics.service import (
    ADDITIVE_METRICS,
    METRIC_COLUMNS,
    AccountMetrics,
    lock_metrics_row,
    read_metrics,
    recompute_columns,
)
from partnerbill.tables.accounts import accounts
from partnerbill.tables.billing import DocumentStatus
from partnerbill.tables.metrics import account_metrics, metrics_changes
from partnerbill.tables.payments import PaymentStatus

log = structlog.get_logger(__name__)

# Change rows one refresh transaction folds: a backlog of any size is folded in transactions
# (and statements) of bounded size.
FOLD_CHUNK_CHANGES = 20_000
# A refresh that folded this many changes vacuums the change log right away (`vacuum_change_log`)
# instead of leaving the dead rows to autovacuum.
VACUUM_AFTER_FOLDED_CHANGES = 50_000
# How often a refresh also compares the folded metrics with a full recompute (`verify_account`).
VERIFY_INTERVAL_SECONDS = 600
# Accounts refreshed by one scheduler tick; the rest wait for the next tick.
REFRESH_ACCOUNTS_PER_TICK = 1_000

REFRESH_DURATION = Histogram(
    "partnerbill_metrics_refresh_duration_seconds",
    "Time to refresh one partner account's metrics.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
REFRESH_LAG = Histogram(
    "partnerbill_metrics_refresh_lag_seconds",
    "Age of the oldest change a refresh folded: how stale the metrics were.",
    buckets=(0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 15, 60, 300, 900, 3600, 7200, 14400, 86400),
)
METRICS_DRIFT = Counter(
    "partnerbill_metrics_drift_total",
    "Verifications that found folded metrics differing from a full recompute (a bug).",
)
REFRESHED_CHANGES = Counter(
    "partnerbill_metrics_refreshed_changes_total", "Change-log rows folded by refreshes."
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


_ACCOUNT = "tenant_id = :tenant_id AND account_id = :account_id"


_CHUNK = "CAST(:chunk AS integer)"
_INVOICE_DATE = (
    "(SELECT max(invoice_date) FROM invoices WHERE "
    + _ACCOUNT
    + f" AND status = '{DocumentStatus.POSTED}')"
)
_METRIC_NAMES = [f.name for f in fields(AccountMetrics)]


def _oldest_changes(condition: str, returning: str) -> str:
    """CTEs `batch` (the ids of the account's oldest `:chunk` + 1 change rows with deltas, where
    `condition`) and `folded` (the first `:chunk` of them deleted, returning `returning`)."""
    return (
        "batch AS MATERIALIZED (SELECT id FROM metrics_changes WHERE "
        + _ACCOUNT
        + f" AND NOT recompute {condition} ORDER BY id LIMIT {_CHUNK} + 1), "
        "folded AS (DELETE FROM metrics_changes WHERE "
        + _ACCOUNT
        + f" AND id = ANY(ARRAY(SELECT id FROM batch ORDER BY id LIMIT {_CHUNK})) "
        f"RETURNING {returning})"
    )


def _fold_statement(lock: str, chunked: bool) -> TextClause:
    """A whole fold in one statement, so in one round trip and from one snapshot: claim the
    metrics row (`lock`), delete the oldest `:chunk` change rows (NULL: all it sees) by id (an
    index scan: ids known up front, not a range the planner must guess), add up their deltas into
    the metrics row and, with no row left behind (`more`), stamp lastMetricsUpdate. The few
    metrics a sum cannot carry are looked up by index, only when a folded row asks: the latest
    posted invoice date after an invoice left Posted, the latest payment after payments
    changed. Nothing is folded when the row is held elsewhere (`claimed` false) or a row without
    deltas is pending (`needed`: the caller recomputes)."""
    payment = (
        "(SELECT {column} FROM payments WHERE "
        + _ACCOUNT
        + f" AND status = '{PaymentStatus.PROCESSED}' "
        "ORDER BY effective_date DESC, created_at DESC LIMIT 1)"
    )
    return text(
        "WITH claimed AS MATERIALIZED (SELECT last_verified_at > now() - "
        "make_interval(secs => :verify_seconds) AS verified FROM account_metrics WHERE "
        + _ACCOUNT
        + f" {lock}), "
        "needed AS MATERIALIZED (SELECT EXISTS (SELECT FROM metrics_changes WHERE "
        + _ACCOUNT
        + " AND recompute) AS needed), "
        "go AS MATERIALIZED (SELECT EXISTS (SELECT FROM claimed) "
        "AND NOT (SELECT needed FROM needed) AS go), "
        + (
            _oldest_changes("AND (SELECT go FROM go)", "*") + ", "
            if chunked
            # All it sees: the account's range of the primary key, no id list to build.
            else "batch AS (SELECT NULL::bigint AS id WHERE false), "
            "folded AS (DELETE FROM metrics_changes WHERE "
            + _ACCOUNT
            + " AND NOT recompute AND (SELECT go FROM go) RETURNING *), "
        )
        + "summed AS (SELECT count(*) AS folded, min(changed_at) AS oldest, "
        + ", ".join(f"coalesce(sum({name}), 0) AS {name}" for name in ADDITIVE_METRICS)
        + ", max(posted_invoice_date) AS posted_invoice_date, "
        "coalesce(bool_or(posted_invoice_removed), false) AS posted_invoice_removed, "
        "coalesce(bool_or(payments_changed), false) AS payments_changed, "
        f"coalesce((SELECT count(*) FROM batch) > {_CHUNK}, false) AS more, "
        # now() out of the CASE below: Citus refuses a non-immutable function inside one.
        "now() AS now FROM folded), "
        "applied AS (UPDATE account_metrics m SET "
        + ", ".join(f"{name} = m.{name} + s.{name}" for name in ADDITIVE_METRICS)
        + f", last_invoice_date = CASE WHEN s.posted_invoice_removed THEN {_INVOICE_DATE} "
        "ELSE greatest(m.last_invoice_date, s.posted_invoice_date) END, "
        "last_payment_date = CASE WHEN s.payments_changed THEN "
        + payment.format(column="effective_date")
        + " ELSE m.last_payment_date END, "
        "last_payment_amount = CASE WHEN s.payments_changed THEN "
        + payment.format(column="amount")
        + " ELSE m.last_payment_amount END, "
        "last_metrics_update = CASE WHEN s.more THEN m.last_metrics_update ELSE s.now END "
        "FROM summed s WHERE m.tenant_id = :tenant_id AND m.account_id = :account_id "
        "AND (SELECT go FROM go) RETURNING "
        + ", ".join(f"m.{name}" for name in _METRIC_NAMES)
        + ") SELECT EXISTS (SELECT FROM claimed) AS claimed, "
        "(SELECT verified FROM claimed) AS verified, (SELECT needed FROM needed) AS needed, "
        "s.folded, s.oldest, s.more, s.now, "
        + ", ".join(f"a.{name}" for name in _METRIC_NAMES)
        + " FROM summed s LEFT JOIN applied a ON true"
    )


# By (skip locked, chunked).
_FOLD = {
    (skip, chunked): _fold_statement("FOR UPDATE SKIP LOCKED" if skip else "FOR UPDATE", chunked)
    for skip in (False, True)
    for chunked in (False, True)
}
# Before a full recompute: rows with deltas fold away in chunks (their documents are what the
# recompute reads), until at most a chunk is left for the recompute's own statement.
_DROP_DELTAS = text(
    "WITH " + _oldest_changes("", "changed_at") + " SELECT count(*), min(changed_at), "
    f"(SELECT count(*) FROM batch) > {_CHUNK} FROM folded"
)


async def _fold_recomputing(
    conn: AsyncConnection, tenant: Tenant, account_id: str, chunk: int | None, started: float
) -> FoldedChunk:
    """Fold with a full recompute: every change row the statement sees is deleted and the
    metrics are derived from the documents *in that same statement*, so from one snapshot (a
    change committed after it keeps its row and its delta for the next fold)."""
    parameters = {"tenant_id": tenant.id, "account_id": account_id, "chunk": chunk}
    if chunk is not None:
        dropped, oldest, more = (await conn.execute(_DROP_DELTAS, parameters)).one()
        REFRESHED_CHANGES.inc(dropped)
        if more:
            return FoldedChunk(dropped, oldest, None)
    else:
        dropped, oldest = 0, None
    folded = (
        delete(metrics_changes)
        .where(metrics_changes.c.tenant_id == tenant.id, metrics_changes.c.account_id == account_id)
        .returning(metrics_changes.c.changed_at)
        .cte("folded")
    )
    row = (
        await conn.execute(
            select(
                func.count().label("folded"),
                func.min(folded.c.changed_at).label("oldest"),
                func.now().label("now"),
                *recompute_columns(tenant, account_id),
            ).select_from(folded)
        )
    ).one()
    metrics = AccountMetrics.from_mapping(row._mapping)
    await conn.execute(
        update(account_metrics)
        .where(account_metrics.c.tenant_id == tenant.id, account_metrics.c.account_id == account_id)
        .values(**metrics.as_values(), last_metrics_update=row.now, last_verified_at=row.now)
    )
    REFRESHED_CHANGES.inc(row.folded)
    oldest = min(filter(None, (oldest, row.oldest)), default=None)
    result = RefreshResult(
        account_id, dropped + row.folded, metrics, row.now, time.perf_counter() - started
    )
    return FoldedChunk(dropped + row.folded, oldest, result)


async def fold_changes(
    conn: AsyncConnection,
    tenant: Tenant,
    account_id: str,
    *,
    wait: bool,
    chunk: int | None = FOLD_CHUNK_CHANGES,
) -> FoldedChunk | None:
    """Fold at most `chunk` of the account's pending changes (None: all it sees) into its
    metrics; when none remain, stamp `lastMetricsUpdate`. None when the account was skipped
    (`wait=False` and another refresh holds it).

    The cost is that of the folded rows (and at most three index lookups), whatever the number of
    documents the account has. A chunk that leaves rows behind applies its deltas without the
    stamp, so a refresh cut off between chunks leaves the account pending and exact as of what it
    folded. A pending row without deltas (`recompute`) makes this fold a full recompute.
    """
    started = time.perf_counter()
    parameters = {
        "tenant_id": tenant.id,
        "account_id": account_id,
        "chunk": chunk,
        "verify_seconds": VERIFY_INTERVAL_SECONDS,
    }
    if wait:
        # An on-demand refresh queues behind a running one for at most the tenant's lock bound;
        # the fold itself, however large, is not cut at that bound.
        await lock_metrics_row(conn, tenant, account_id)
    fold = (await conn.execute(_FOLD[(not wait, chunk is not None)], parameters)).one()
    if not fold.claimed:
        return None
    if fold.needed:
        return await _fold_recomputing(conn, tenant, account_id, chunk, started)
    REFRESHED_CHANGES.inc(fold.folded)
    if fold.more:
        return FoldedChunk(fold.folded, fold.oldest, None)
    metrics = AccountMetrics.from_mapping(fold._mapping)
    if not fold.verified and await verify_account(conn, tenant, account_id) is False:
        metrics = (await read_metrics(conn, tenant, account_id)).metrics
    duration = time.perf_counter() - started
    result = RefreshResult(account_id, fold.folded, metrics, fold.now, duration)
    return FoldedChunk(fold.folded, fold.oldest, result)


def _pending_columns(tenant: Tenant, account_id: str) -> list[Any]:
    """What the account's pending change rows add up to, as labeled scalar subqueries."""
    own = (metrics_changes.c.tenant_id == tenant.id, metrics_changes.c.account_id == account_id)

    def aggregate(expression: Any, label: str) -> Any:
        return select(expression).where(*own).scalar_subquery().label(label)

    return [
        *(
            aggregate(func.coalesce(func.sum(metrics_changes.c[name]), ZERO), f"pending_{name}")
            for name in ADDITIVE_METRICS
        ),
        aggregate(func.max(metrics_changes.c.posted_invoice_date), "pending_posted_invoice_date"),
        aggregate(func.bool_or(metrics_changes.c.posted_invoice_removed), "pending_removed"),
        aggregate(func.bool_or(metrics_changes.c.payments_changed), "pending_payments"),
        aggregate(func.bool_or(metrics_changes.c.recompute), "pending_recompute"),
    ]


async def verify_account(conn: AsyncConnection, tenant: Tenant, account_id: str) -> bool | None:
    """Compare the stored metrics of an account (whose metrics row the caller holds) with a full
    recompute, in one statement, so from one snapshot: stored plus what the changes pending in
    that snapshot add must equal the recompute, so a busy account is verified too. A metric a
    pending change says nothing exact of (the last invoice date after an unpost, the last
    payment after a payment change) is not compared that time; a pending row without deltas
    makes the whole comparison wait (None).

    A difference is a bug in a write path's deltas: it is counted
    (`partnerbill_metrics_drift_total`), logged, and the stored metrics are corrected so that
    folding the pending changes gives the recompute. Stamps `last_verified_at`; True when the
    metrics agreed.
    """
    row = (
        await conn.execute(
            select(
                *(column.label(f"stored_{column.name}") for column in METRIC_COLUMNS),
                *_pending_columns(tenant, account_id),
                *recompute_columns(tenant, account_id),
            ).where(
                account_metrics.c.tenant_id == tenant.id,
                account_metrics.c.account_id == account_id,
            )
        )
    ).one()
    found = row._mapping
    if found["pending_recompute"]:
        return None
    exact = AccountMetrics.from_mapping(found)
    # Per metric compared: (what folding the pending changes into the stored value gives, what
    # the stored value must become for that to be the recomputed one).
    checks: dict[str, tuple[object, object, object]] = {
        name: (
            found[f"stored_{name}"] + found[f"pending_{name}"],
            getattr(exact, name),
            getattr(exact, name) - found[f"pending_{name}"],
        )
        for name in ADDITIVE_METRICS
    }
    if not found["pending_removed"]:
        # Pending postings are committed in this snapshot, so never later than the recompute's.
        dates = [found["stored_last_invoice_date"], found["pending_posted_invoice_date"]]
        folded = max((d for d in dates if d is not None), default=None)
        checks["last_invoice_date"] = (folded, exact.last_invoice_date, exact.last_invoice_date)
    if not found["pending_payments"]:
        for name in ("last_payment_date", "last_payment_amount"):
            checks[name] = (found[f"stored_{name}"], getattr(exact, name), getattr(exact, name))
    drifted = {
        name: (folded, wanted, heal)
        for name, (folded, wanted, heal) in checks.items()
        if folded != wanted
    }
    values: dict[str, object] = {"last_verified_at": func.now()}
    if drifted:
        METRICS_DRIFT.inc()
        log.error(
            "metrics_drift",
            tenant_id=tenant.id,
            account_id=account_id,
            drifted={name: [str(got), str(wanted)] for name, (got, wanted, _) in drifted.items()},
        )
        values |= {name: heal for name, (_, _, heal) in drifted.items()}
    await conn.execute(
        update(account_metrics)
        .where(account_metrics.c.tenant_id == tenant.id, account_metrics.c.account_id == account_id)
        .values(**values)
    )
    return not drifted


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
        - func.make_interval(0, 0, 0, 0, 0, 0, tenants.c.metrics_refresh_interval_seconds)
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
