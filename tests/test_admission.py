"""Write admission (core/admission.py): writes beyond the limit wait their turn; reads never do."""

import asyncio

import httpx
from starlette.types import Receive, Scope, Send

from partnerbill.core.admission import WriteAdmission


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
