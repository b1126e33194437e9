"""How long a lock is waited for; which locks there are, and their order, is `core/locking.py`.

Every statement that locks business rows (`FOR UPDATE`, `FOR NO KEY UPDATE`, `FOR SHARE`,
`FOR KEY SHARE`, or an `UPDATE` that queues on a row) runs inside `bounded_lock_wait`:

- The wait is bounded by the tenant's `lock_wait_ms` through `statement_timeout`, set for the
  block with `set_config(..., true)` (`SET LOCAL`) and put back to what it was after it.
  `lock_timeout` would bound each single wait, not the total: a writer queued behind many others
  hops from wait to wait and never trips it.
- A wait that runs out (statement timeout, lock timeout, deadlock) becomes the category-50
  lock-competition error. The statement failed, so the transaction is aborted: the request rolls
  back whole and has written nothing; inside a savepoint, only the savepoint's part is lost.
- Keep the block to the locking statements: a slow statement inside it that waits for no lock
  would be cut at the same bound and reported as lock competition.
"""

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Executable, Result, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.errors import Resource, lock_competition
from partnerbill.core.tenants import Tenant

# SQLSTATEs meaning "waited too long for a lock": statement_timeout, lock_timeout, deadlock.
LOCK_WAIT_SQLSTATES = frozenset({"57014", "55P03", "40P01"})

# Target entries are evaluated left to right: the old value is read before the new one is set.
_BOUND = text(
    "SELECT current_setting('statement_timeout'), "
    "set_config('statement_timeout', lock_wait_ms::text, true) "
    "FROM tenants WHERE id = :tenant_id"
)
_RESTORE = text("SELECT set_config('statement_timeout', :previous, true)")


def is_lock_wait(error: DBAPIError) -> bool:
    """The database gave up waiting for a lock (or broke a deadlock)."""
    return getattr(error.orig, "sqlstate", None) in LOCK_WAIT_SQLSTATES


# The connection whose statements the current task already bounds: a nested block (a locking
# function called inside a caller's block) then costs no round trip.
_bounded: ContextVar[AsyncConnection | None] = ContextVar("bounded_lock_wait", default=None)


@asynccontextmanager
async def bounded_lock_wait(
    conn: AsyncConnection, tenant: Tenant, resource: Resource = Resource.GENERIC
) -> AsyncIterator[None]:
    """Run the block's statements with every lock wait bounded by the tenant's `lock_wait_ms`;
    a wait past it raises the lock-competition error (code of `resource`)."""
    if _bounded.get() is conn:
        yield
        return
    previous = await conn.scalar(_BOUND, {"tenant_id": tenant.id})
    token = _bounded.set(conn)
    try:
        yield
    except DBAPIError as error:
        # The transaction is aborted: nothing more runs in it, not even the reset below.
        if is_lock_wait(error):
            raise lock_competition(resource) from error
        raise
    except Exception:
        # A business error raised between statements: the transaction is still usable.
        await _restore(conn, previous, resource)
        raise
    finally:
        _bounded.reset(token)
    await _restore(conn, previous, resource)


async def _restore(conn: AsyncConnection, previous: str, resource: Resource) -> None:
    """Put the statement timeout back. The resetting statement itself still runs under the
    bound: on a starved machine a bound of a few milliseconds can cut it too, which aborts the
    transaction as a wait that ran out would (and is answered the same way)."""
    try:
        await conn.execute(_RESTORE, {"previous": previous})
    except DBAPIError as error:
        if is_lock_wait(error):
            raise lock_competition(resource) from error
        raise


async def execute_locking(
    conn: AsyncConnection,
    tenant: Tenant,
    statement: Executable,
    parameters: Mapping[str, Any] | None = None,
    resource: Resource = Resource.GENERIC,
) -> Result[Any]:
    """Run one locking statement under `bounded_lock_wait`; its rows are buffered, so they can
    be read after the timeout is reset."""
    async with bounded_lock_wait(conn, tenant, resource):
        return await conn.execute(statement, parameters)
