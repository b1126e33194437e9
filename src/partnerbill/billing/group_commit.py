"""Group commit of partner-account invoices: the single-invoice creations one API process is
doing at the same moment for one tenant go to the database as one statement.

`POST /v1/invoices` on a partner account is one autocommit statement (`creation._INSERT_INVOICES`,
which takes any number of invoices). Under a reseller's parallel clients each such statement
costs the database a parse, a plan, a commit and a round trip, and the process a driver call:
more than the rows themselves. Here a request does not wait for a timer: if fewer than
`STATEMENTS_IN_FLIGHT` statements of its tenant are running it is written at once (alone, on an
idle server); otherwise it joins the queue, and each running statement, when it ends, takes the
whole queue (up to `MAX_BATCH`) as its next statement. Batches form only while the database is
busy, and then by as many requests as arrived meanwhile.

A batch is one statement (one transaction on a distributed database), so its invoices commit
together or not at all:
- the guard (each account still a partner account, not canceled, unchanged) declines the whole
  batch when it declines one account: every request of it then goes the general way, each in a
  transaction of its own (as a single request the guard declined does);
- a chosen invoice number taken meanwhile fails the whole batch: each request of it is then
  written alone, so only the one whose number was taken gets the error;
- any other failure (the database gone, a timeout) is every request's failure, and nothing of
  the batch was written.
An invoice is acknowledged only after the statement that wrote it committed. A request bound to
a transaction of its own (an Idempotency-Key) is never batched: it must commit with its record.
"""

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

from prometheus_client import Histogram
from sqlalchemy.ext.asyncio import AsyncConnection

from partnerbill.core.errors import ZuoraError
from partnerbill.core.tenants import Tenant

STATEMENTS_IN_FLIGHT = 2  # per tenant and process: one writing while the next batch gathers
MAX_BATCH = 50  # invoices per statement, the size of the largest invoice batch call

BATCH_SIZE = Histogram(
    "partnerbill_invoice_group_commit_batch_size",
    "Invoices written by one group-commit statement",
    buckets=(1, 2, 4, 8, 16, 32, 50),
)

Invoice = TypeVar("Invoice")
# Writes the invoices in one statement; False when its guard declined them.
Statement = Callable[[AsyncConnection, Tenant, list[Invoice]], Awaitable[bool]]


class Written(Enum):
    """What the statement carrying an invoice did with it."""

    INSERTED = "inserted"
    DECLINED = "declined"  # the guard declined it: the general way decides
    ALONE = "alone"  # its batch failed on a taken invoice number: write it alone


@dataclass(slots=True)
class _Queue(Generic[Invoice]):
    waiting: list[tuple[Invoice, asyncio.Future[Written]]] = field(default_factory=list)
    running: int = 0


class GroupCommit(Generic[Invoice]):
    """Batches of one tenant's invoices, per process (one event loop), written by `statement`."""

    def __init__(
        self,
        statement: Statement[Invoice],
        connection: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
    ) -> None:
        """`connection`: where each batch's `statement` runs (`db.autocommit` for one
        statement, `db.transaction` for several)."""
        self._statement = statement
        self._connection = connection
        self._queues: dict[str, _Queue[Invoice]] = {}
        self._drains: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    async def write(self, tenant: Tenant, invoice: Invoice) -> Written:
        """Write `invoice` with whatever else of the tenant's is waiting."""
        queue = self._queues.setdefault(tenant.id, _Queue())
        answer: asyncio.Future[Written] = asyncio.get_running_loop().create_future()
        queue.waiting.append((invoice, answer))
        if queue.running < STATEMENTS_IN_FLIGHT:
            queue.running += 1
            drain = asyncio.create_task(self._drain(tenant, queue))
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        return await answer

    async def _drain(self, tenant: Tenant, queue: _Queue[Invoice]) -> None:
        try:
            while queue.waiting:
                batch, queue.waiting = queue.waiting[:MAX_BATCH], queue.waiting[MAX_BATCH:]
                await self._write_batch(tenant, batch)
        finally:
            queue.running -= 1
            if not queue.running:  # waiting is empty unless this drain was cancelled
                for _, answer in queue.waiting:
                    answer.cancel()
                self._queues.pop(tenant.id, None)

    async def _write_batch(
        self, tenant: Tenant, batch: list[tuple[Invoice, asyncio.Future[Written]]]
    ) -> None:
        BATCH_SIZE.observe(len(batch))
        outcome: Written | BaseException
        try:
            async with self._connection() as conn:
                inserted = await self._statement(conn, tenant, [invoice for invoice, _ in batch])
        except ZuoraError as error:
            outcome = Written.ALONE if len(batch) > 1 else error
        except BaseException as exc:  # a drain cancelled at shutdown ends its requests too
            outcome = exc
        else:
            outcome = Written.INSERTED if inserted else Written.DECLINED
        for _, answer in batch:
            if answer.done():  # its request was cancelled meanwhile
                continue
            if isinstance(outcome, asyncio.CancelledError):
                answer.cancel()
            elif isinstance(outcome, BaseException):
                answer.set_exception(outcome)
            else:
                answer.set_result(outcome)
        if isinstance(outcome, asyncio.CancelledError):
            raise outcome
