"""Write admission (core/admission.py): writes beyond the limit wait their turn; reads never do."""

import asyncio
import itertools
import time
from collections.abc import Callable

import httpx
from starlette.types import Receive, Scope, Send

from partnerbill.core.admission import FLOOR, MAX_GAP_SECONDS, WriteAdmission, WriteLimit


class HeldApp:
    """Answers each request once released; records which requests have started."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.started.append(f"{scope['method']} {scope['path']}")
        if scope["method"] != "GET":
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


async def test_writes_beyond_the_limit_wait_and_reads_pass() -> None:
    inner = HeldApp()
    app = WriteAdmission(inner, limit=2)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        writes = [asyncio.create_task(client.post(f"/w{i}")) for i in range(3)]
        await asyncio.sleep(0.1)
        assert sorted(inner.started) == ["POST /w0", "POST /w1"]  # the third waits for a slot
        read = await asyncio.wait_for(client.get("/r"), timeout=1)  # not behind the writes
        assert read.status_code == 200
        inner.release.set()
        answers = await asyncio.wait_for(asyncio.gather(*writes), timeout=5)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert "POST /w2" in inner.started


async def test_no_limit_admits_every_write() -> None:
    inner = HeldApp()
    transport = httpx.ASGITransport(app=WriteAdmission(inner, limit=0))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        writes = [asyncio.create_task(client.put(f"/w{i}")) for i in range(5)]
        await asyncio.sleep(0.1)
        assert len(inner.started) == 5
        inner.release.set()
        await asyncio.wait_for(asyncio.gather(*writes), timeout=5)


class TimedReads:
    """Reads take `read_seconds`; writes wait for `release`."""

    def __init__(self, read_seconds: float) -> None:
        self.read_seconds = read_seconds
        self.release = asyncio.Event()
        self.writing = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "GET":
            await asyncio.sleep(self.read_seconds)
        else:
            self.writing += 1
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


async def _read_until(client: httpx.AsyncClient, done: Callable[[], bool]) -> None:
    """Reads back to back until `done()`; fails after 10 s."""
    deadline = asyncio.get_running_loop().time() + 10
    while not done():
        assert asyncio.get_running_loop().time() < deadline, "the limit did not get there"
        await client.get("/v1/accounts/A1")


async def test_slow_reads_shrink_the_write_limit_and_it_grows_back_without_them() -> None:
    inner = TimedReads(read_seconds=0.15)  # 3x the target below
    admission = WriteAdmission(inner, limit=8, adaptive=True, read_target_ms=50)
    slots = admission.slots
    assert slots is not None
    transport = httpx.ASGITransport(app=admission)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await _read_until(client, lambda: slots.size == FLOOR)
        writes = [asyncio.create_task(client.post(f"/w{i}")) for i in range(6)]
        await asyncio.sleep(0.05)
        assert inner.writing == FLOOR  # the rest wait for a slot
        inner.read_seconds = 0
        await _read_until(client, lambda: slots.size == 8)  # +1 per window of fast reads
        await asyncio.sleep(0.05)
        assert inner.writing == 6
        inner.release.set()
        answers = await asyncio.wait_for(asyncio.gather(*writes), timeout=5)
    assert [a.status_code for a in answers] == [200] * 6


async def test_reads_slow_at_the_floor_space_the_writes_out_until_they_are_fast_again() -> None:
    inner = TimedReads(read_seconds=0.15)
    admission = WriteAdmission(inner, limit=8, adaptive=True, read_target_ms=50)
    slots = admission.slots
    assert slots is not None
    transport = httpx.ASGITransport(app=admission)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await _read_until(client, lambda: slots.gap == MAX_GAP_SECONDS)
        assert slots.size == FLOOR  # the gap only once the limit is at its floor
        inner.read_seconds = 0
        await _read_until(client, lambda: slots.size == 8)  # the gap goes before the limit grows
        assert slots.gap == 0


async def test_admissions_are_spaced_by_the_gap() -> None:
    limit = WriteLimit(2)
    limit.resize(2, gap=0.05)
    admitted = []
    for _ in range(3):  # one after the other: a free slot each time, only the gap between
        await limit.acquire()
        admitted.append(time.monotonic())
        limit.release()
    assert min(b - a for a, b in itertools.pairwise(admitted)) >= 0.05


async def test_a_write_waiting_only_for_the_gap_is_admitted_when_it_ends() -> None:
    limit = WriteLimit(2)
    limit.resize(2, gap=0.05)
    await limit.acquire()
    limit.release()  # a free slot, the gap still running, no release left to admit the next
    await asyncio.wait_for(limit.acquire(), timeout=1)
    assert limit.running == 1


async def test_fixed_admission_ignores_read_latency() -> None:
    inner = TimedReads(read_seconds=0.15)
    admission = WriteAdmission(inner, limit=4, adaptive=False, read_target_ms=50)
    transport = httpx.ASGITransport(app=admission)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for _ in range(4):
            await client.get("/v1/accounts/A1")
    assert admission.slots is not None and admission.slots.size == 4


async def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    limit = WriteLimit(1)
    await limit.acquire()
    cancelled = asyncio.create_task(limit.acquire())
    waiting = asyncio.create_task(limit.acquire())
    await asyncio.sleep(0.01)
    cancelled.cancel()
    limit.release()
    await asyncio.wait_for(waiting, timeout=1)
    assert limit.running == 1
    limit.resize(3)
    await asyncio.wait_for(asyncio.gather(limit.acquire(), limit.acquire()), timeout=1)
    assert limit.running == 3


async def test_a_slow_download_does_not_shrink_the_write_limit() -> None:
    async def download(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(3):
            await asyncio.sleep(0.05)
            await send({"type": "http.response.body", "body": b"chunk", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    admission = WriteAdmission(download, limit=8, adaptive=True, read_target_ms=10)
    transport = httpx.ASGITransport(app=admission)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for _ in range(4):  # 150 ms each, past the target, over several windows
            assert (await client.get("/v1/files/f1")).content == b"chunk" * 3
    assert admission.slots is not None and admission.slots.size == 8
