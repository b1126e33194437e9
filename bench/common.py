"""What the measurement scripts share: an authenticated client on a running server, exact JSON,
and a bounded pool of parallel clients."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx


@asynccontextmanager
async def connect(
    url: str, client_id: str, client_secret: str, clients: int
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for `url` holding a bearer token, with room for `clients` requests at once."""
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        token = (
            await http.post(
                "/oauth/token", data={"client_id": client_id, "client_secret": client_secret}
            )
        ).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        yield http


async def call(
    http: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A request whose JSON answer is parsed with exact Decimals."""
    response = await http.request(method, path, json=body)
    payload: dict[str, Any] = json.loads(response.content, parse_float=Decimal)
    return payload


def account_body(name: str, partner: bool) -> dict[str, Any]:
    """A USD account for a benchmark, partner or not. The flag is sent only for a partner: a
    tenant with the Reseller Account feature disabled refuses `partnerAccount` of either value."""
    body: dict[str, Any] = {
        "name": name,
        "currency": "USD",
        "billCycleDay": 1,
        "billToContact": {"firstName": "Bench", "lastName": "Mark"},
    }
    if partner:
        body["partnerAccount"] = True
    return body


async def account(http: httpx.AsyncClient, name: str, partner: bool) -> dict[str, Any]:
    return await call(http, "POST", "/v1/accounts", account_body(name, partner))


async def in_parallel(
    count: int, clients: int, job: Callable[[int], Awaitable[dict[str, Any]]]
) -> tuple[float, dict[str, int]]:
    """Run `job(0..count-1)` on `clients` workers: (jobs per second, failures by reason code)."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    failures: dict[str, int] = {}

    async def worker() -> None:
        while not queue.empty():
            result = await job(queue.get_nowait())
            if result.get("success") is not True:
                code = str(result.get("reasons", [{}])[0].get("code"))
                failures[code] = failures.get(code, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return count / (time.perf_counter() - started), failures
