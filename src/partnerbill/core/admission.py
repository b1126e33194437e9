"""Write admission: at most `PARTNERBILL_WRITE_CONCURRENCY` writes run at once in one API process.

Under a write flood (hundreds of parallel calls on one account) every in-flight request shares
the process's event loop and the machine's cores. Writes beyond the limit wait here, before any
work is done for them, so the writes admitted run sooner (the same throughput: the cores were the
limit) and reads, never held, find a short queue: account reads stay fast while the account takes
its writes. A write holding a slot while it waits on a lock is bounded by the tenant's lock wait.
"""

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class WriteAdmission:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.slots = asyncio.Semaphore(limit) if limit > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.slots is None or scope["type"] != "http" or scope["method"] in READ_METHODS:
            await self.app(scope, receive, send)
            return
        async with self.slots:
            await self.app(scope, receive, send)
