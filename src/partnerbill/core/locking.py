"""Every lock partnerbill takes, in the order a transaction takes them; how long a wait lasts
is `core.locks`'s.

Why there is no account-wide lock: a partner account takes hundreds of parallel writes, so no
writer of an account holds anything all the others need. A document write holds its account
`FOR KEY SHARE`, the lock a foreign key to the account takes anyway: it conflicts with no other
writer and no profile edit, only with `FOR UPDATE`. Document numbers come from PostgreSQL
sequences, never from counter rows, and a partner account's writes append change rows instead
of updating its metrics row (`metrics.service.touch`).

The order (no cycle between two writers, hence no deadlock). Each step is optional; a
transaction never goes back to an earlier step while holding a later one:

1. **The Idempotency-Key's advisory lock** (`core.idempotency`):
   `pg_try_advisory_xact_lock` on the hash of tenant and key, taken by the middleware before the
   route runs and held to the commit; a tenant's keys never block another's. It never waits: a
   duplicate finds it taken and gets 409.
2. **The Reseller Account switch's advisory lock** (`core.tenants.require_reseller_account`),
   per tenant, shared by a request that sets `partnerAccount` (account create or update, an
   order's new account), before the account; a disabling of the feature takes it alone, so it
   waits for them and then sees their partner accounts. An advisory lock, not the tenant row:
   on a database distributed by tenant `tenants` is a reference table, whose row locks are
   taken on every node.
3. **The source document `FOR UPDATE`**: the payment or credit memo being applied, unapplied,
   refunded or canceled, or the one document a status change or an edit is on (invoice, memo,
   payment, refund, subscription, bill run, draft order), by `lock_row` (an invoice or a memo
   by a statement of its own ending in `FOR_UPDATE_WITH_ACCOUNT`). A write-off or a credit
   memo from an invoice locks the invoice here: the memo it creates is unseen by others until
   commit, so applying it to the invoice keeps the order.
4. **The targets `FOR UPDATE`**: the invoices, then the debit memos, one statement per type in
   id order (`payments.settlement.lock_targets`, through `lock_rows_in_id_order`).
5. **Subscriptions `FOR UPDATE` in id order** (`lock_rows_in_id_order`): an order locks all it
   names at once when it starts (`subscriptions.service.lock_subscriptions`), a bill run each
   batch it bills (`billing.engine`).
6. **The account's metrics row, last** (`metrics.service`): `touch` updates a non-partner
   account's row (accounts in id order) after all the write's documents; nothing is locked after
   it. A refresh claims it `FOR UPDATE` (on demand) or `FOR UPDATE SKIP LOCKED` (the scheduler,
   which passes over an account another refresh holds).

**The account `FOR KEY SHARE`**, every document write's (`accounts.service.lock_for_write`, many
in id order by `lock_many_for_write`), is taken where the write first needs its account: in the
statement that locks an invoice or memo (`FOR_UPDATE_WITH_ACCOUNT`), right after a payment, before
the targets of a new payment, in the partner invoice insert's own statement
(`billing.creation`), after the subscriptions in an order (each account the first time the order
names it). KEY SHARE conflicts only with the `partnerAccount` switch's `FOR UPDATE`, and the
switch holds no row an account's writers wait for, so this lock's place cannot close a cycle.
After it, a change of an account's default payment method takes an advisory lock on (tenant,
account) (`payment_methods.service`), so two switches serialise.

Account row locks other than `FOR KEY SHARE`, none of them taken by a document write:
- `FOR UPDATE`, only by a `partnerAccount` switch (`accounts.service.update_account`): it waits
  out every in-flight document write and holds new ones back until the flag is committed, so
  none acts on a stale flag; then it locks the metrics row (step 6).
- `FOR NO KEY UPDATE` (the lock a plain UPDATE takes), by a profile edit's UPDATE and before any
  contact change (`accounts.contacts.lock_accounts`; a contact transfer locks both accounts in
  id order, in one statement): it never conflicts with `FOR KEY SHARE`, so contacts do not slow
  billing.

Locks outside the business rows: a tenant's query jobs of one kind serialise their limit check
on an advisory lock of (tenant, kind) (`query.jobs`); a UI sign-in on one of its e-mail
address (`users.service`), whose purge of expired rows takes them `SKIP LOCKED`; an async order
job locks its job row `FOR UPDATE` (`orders.tasks`); installing the query views takes one
database-wide advisory lock (`query.views`, at migration).

The wait: every wait for a business row's lock runs inside `core.locks.bounded_lock_wait`
(`lock_row` and `lock_rows_in_id_order` take theirs in it), which bounds it by the tenant's
`lockWaitMs` (`lock_wait_ms`, default 3,000 ms) through `statement_timeout`; not
`lock_timeout`, which bounds each hop of a queue, not the whole wait. Past it the request fails
with the category-50 lock-competition error and rolls back whole. API processes also bound
every statement (`core.db.bound_statements`), which is all that bounds the locks taken outside
`bounded_lock_wait` (the advisory locks of the Reseller Account switch, of a default payment
method and of a sign-in); a worker bounds none but those inside it (the async order job row
waits as long as it must; the scheduler's claim never waits).

The helpers: `for_update`, `for_no_key_update` and `for_key_share` give a SELECT its lock
strength (for statements built once per process as for any other); `lock_row` and
`lock_rows_in_id_order` lock a tenant's rows of a table inside the wait bound; and
`FOR_UPDATE_WITH_ACCOUNT` ends a hand-written statement that locks a document with its account.
They take tables and columns as arguments: `core` imports no feature.

Adding a write path: lock only the rows it changes, for the transaction; find each lock's step
above and take them in that order, several rows of one table in one statement in id order; take
row locks through these helpers (or, in a hand-written statement, inside `bounded_lock_wait`);
never take the account beyond `FOR KEY SHARE`; report metrics through `touch` last; and give a
new kind of lock its line here. Test it with real parallel connections.
"""

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Result, Select, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.errors import Resource
from partnerbill.core.locks import execute_locking
from partnerbill.core.tenants import Tenant

# A lock strength, applied to a SELECT. SQLAlchemy spells them by flags (`key_share=True` alone
# is NO KEY UPDATE): named here so a write path says which lock it takes.
Strength = Callable[[Select[Any]], Select[Any]]


def for_update(rows: Select[Any]) -> Select[Any]:
    """`FOR UPDATE`: a document about to change, or an account whose flag switches."""
    return rows.with_for_update()


def for_no_key_update(rows: Select[Any]) -> Select[Any]:
    """`FOR NO KEY UPDATE`, the lock a plain UPDATE takes: an account's contacts or profile."""
    return rows.with_for_update(key_share=True)


def for_key_share(rows: Select[Any]) -> Select[Any]:
    """`FOR KEY SHARE`, the lock a foreign key takes: the account of a document write."""
    return rows.with_for_update(key_share=True, read=True)


# For a hand-written statement joining a document (alias `{document}`) to its account (`{account}`).
FOR_UPDATE_WITH_ACCOUNT = "FOR UPDATE OF {document} FOR KEY SHARE OF {account}"


def _rows_of(
    tenant: Tenant, table: Table, match: ColumnElement[bool], columns: Sequence[Any]
) -> Select[Any]:
    return select(*(columns or (table,))).where(table.c.tenant_id == tenant.id, match)


async def lock_row(
    conn: AsyncConnection,
    tenant: Tenant,
    table: Table,
    match: ColumnElement[bool],
    resource: Resource,
    *,
    columns: Sequence[Any] = (),
) -> Result[Any]:
    """The tenant's row of `table` that `match` names (`columns`, or all), locked `FOR UPDATE`
    within the tenant's lock-wait bound."""
    rows = for_update(_rows_of(tenant, table, match, columns))
    return await execute_locking(conn, tenant, rows, resource=resource)


async def lock_rows_in_id_order(
    conn: AsyncConnection,
    tenant: Tenant,
    table: Table,
    match: ColumnElement[bool],
    resource: Resource,
    *,
    columns: Sequence[Any] = (),
    strength: Strength = for_update,
) -> Result[Any]:
    """The tenant's rows of `table` that `match` names, locked in one statement in id order
    (so two writers locking some of the same rows queue instead of deadlocking)."""
    rows = strength(_rows_of(tenant, table, match, columns).order_by(table.c.id))
    return await execute_locking(conn, tenant, rows, resource=resource)
