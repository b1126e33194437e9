"""Write admission: how many writes run at once in one API process, so that reads stay fast
while an account takes a flood of writes.

Every in-flight request shares the process's event loop and the machine's cores. Writes beyond
the limit wait here, before any work is done for them, so the writes admitted run sooner (the
same throughput: the cores were the limit) and reads, never held, find a short queue. A write
holding a slot while it waits on a lock is bounded by the tenant's lock wait.

The limit (`PARTNERBILL_WRITE_ADMISSION`):
- `adaptive` (the default): driven by the reads' own latency, measured here from a read's
  arrival to the end of its answer (reads of `/v1/` answered in one piece: not pages, scrapes,
  health checks or file downloads).
  Every `WINDOW_SECONDS` the slowest read of the window decides: above the target
  (`PARTNERBILL_READ_TARGET_MS`) the limit shrinks to `SHRINK` of itself (never under
  `FLOOR`); under half the target, or with no read at all, it grows by one (never over
  `PARTNERBILL_WRITE_CONCURRENCY`). Without readers, writes run at the full limit; with readers,
  writes get what the reads leave.
  At the floor the reads can still be slow: `FLOOR` writes admitted back to back keep a
  process's event loop busy most of the time, since a write rarely waits. Below the floor the
  limit paces instead: admissions are spaced by a gap that doubles (from `MIN_GAP_SECONDS`, at
  most `MAX_GAP_SECONDS`, so writes always progress) while the reads stay slow and halves while
  they are fast; only with no gap left does the limit grow again.
- `fixed`: always `PARTNERBILL_WRITE_CONCURRENCY`.
Writes already running are never interrupted: a smaller limit holds the next ones back.
"""

import asyncio
import time
from collections import deque

from prometheus_client import Gauge
from starlette.types import ASGIApp, Message, Receive, Scope, Send

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
API_READS = "/v1/"
WINDOW_SECONDS = 0.1
SHRINK = 0.75
FLOOR = 2  # one statement of a group commit writing while the next gathers
MIN_GAP_SECONDS = 0.001
MAX_GAP_SECONDS = 0.02  # at least 50 writes a second per process, however slow the reads

WRITE_LIMIT = Gauge(
    "partnerbill_write_admission_limit",
    "Writes one API process admits at once",
    multiprocess_mode="all",
)
WRITE_GAP = Gauge(
    "partnerbill_write_admission_gap_seconds",
    "Least time between two writes one API process admits (0: none)",
    multiprocess_mode="all",
)


class WriteLimit:
    """A semaphore whose size can change, admitting waiters in arrival order and, when `gap`
    is set, no sooner than `gap` seconds after the previous admission."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.gap = 0.0
        self.running = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._next_admission = 0.0
        self._timer: asyncio.TimerHandle | None = None

    async def acquire(self) -> None:
        if self.running < self.size and not self._waiters and self._due():
            self._admitted()
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        self.admit()  # a slot may be free and only the gap in the way: start its timer
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self.release()  # admitted just as it was cancelled: pass the slot on
            else:
                self._waiters.remove(turn)
            raise

    def release(self) -> None:
        self.running -= 1
        self.admit()

    def resize(self, size: int, gap: float = 0.0) -> None:
        self.size = size
        self.gap = gap
        self._next_admission = min(self._next_admission, time.monotonic() + gap)
        if self._timer is not None:  # set for the old gap: the next admission may be sooner
            self._timer.cancel()
            self._timer = None
        self.admit()

    def admit(self) -> None:
        while self._waiters and self.running < self.size:
            if not self._due():
                if self._timer is None:
                    delay = self._next_admission - time.monotonic()
                    self._timer = asyncio.get_running_loop().call_later(delay, self._gap_over)
                return
            turn = self._waiters.popleft()
            if not turn.done():
                self._admitted()
                turn.set_result(None)

    def _due(self) -> bool:
        return time.monotonic() >= self._next_admission

    def _admitted(self) -> None:
        self.running += 1
        self._next_admission = time.monotonic() + self.gap

    def _gap_over(self) -> None:
        self._timer = None
        self.admit()


class ReadLatencyControl:
    """Sizes a `WriteLimit` by the latency of the reads (see the module docstring)."""

    def __init__(self, limit: WriteLimit, ceiling: int, target_seconds: float) -> None:
        self.limit = limit
        self.ceiling = ceiling
        self.target = target_seconds
        self._window_ends = time.monotonic() + WINDOW_SECONDS
        self._slowest = 0.0

    def read_done(self, seconds: float) -> None:
        self._slowest = max(self._slowest, seconds)
        self.tick()

    def tick(self) -> None:
        now = time.monotonic()
        if now < self._window_ends:
            return
        size, gap = self.limit.size, self.limit.gap
        if self._slowest > self.target:
            if size > FLOOR:
                size = max(FLOOR, int(size * SHRINK))
            else:
                gap = min(MAX_GAP_SECONDS, max(MIN_GAP_SECONDS, gap * 2))
        elif self._slowest < self.target / 2:
            if gap > 0:
                gap = gap / 2 if gap / 2 >= MIN_GAP_SECONDS else 0.0
            else:
                size = min(self.ceiling, size + 1)
        if (size, gap) != (self.limit.size, self.limit.gap):
            self.limit.resize(size, gap)
            WRITE_LIMIT.set(size)
            WRITE_GAP.set(gap)
        self._slowest = 0.0
        self._window_ends = now + WINDOW_SECONDS


class WriteAdmission:
    def __init__(
        self, app: ASGIApp, limit: int, *, adaptive: bool = False, read_target_ms: float = 10.0
    ) -> None:
        self.app = app
        self.slots = WriteLimit(limit) if limit > 0 else None
        self.control = (
            ReadLatencyControl(self.slots, limit, read_target_ms / 1000)
            if adaptive and self.slots is not None
            else None
        )
        if self.slots is not None:
            WRITE_LIMIT.set(limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.slots is None or scope["type"] != "http":
            await self.app(scope, receive, send)
        elif scope["method"] in READ_METHODS:
            await self._read(scope, receive, send)

        else:
            if self.control is not None:
                self.control.tick()
            await self.slots.acquire()
            try:
                await self.app(scope, receive, send)
            finally:
                self.slots.release()

    async def _read(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The API's reads steer the limit; the UI's pages, scrapes and health checks do not.
        if self.control is None or not scope["path"].startswith(API_READS):
            await self.app(scope, receive, send)
            return
        arrived = time.monotonic()
        control = self.control
        streamed = False

        async def timed_send(message: Message) -> None:
            nonlocal streamed
            await send(message)
            if message["type"] != "http.response.body":
                return
            if message.get("more_body"):
                streamed = True  # a file download: as slow as it is large, not a sign of load
            elif not streamed:
                control.read_done(time.monotonic() - arrived)

        await self.app(scope, receive, timed_send)
