"""The input policy tests' shared part: the tables a refused request must leave untouched, a refusal
checked as a 400 in the Zuora envelope naming the field, raw requests, and a rate plan to order."""

import json
from typing import Any

import httpx
from sqlalchemy import text

from partnerbill.core import db
from partnerbill.core.json import loads
from tests.catalog_fixtures import (
    rate_plan,
)
from tests.helpers import ApiClient, assert_envelope

INVALID_VALUE = 20
WRITE_TABLES = (
    "accounts",
    "invoices",
    "invoice_items",
    "subscriptions",
    "orders",
    "products",
    "bill_runs",
    "async_jobs",
    "credit_memos",
)


async def _rows(api: ApiClient) -> dict[str, int]:
    async with db.get_engine().connect() as conn:
        return {
            table: int(
                await conn.scalar(
                    text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t"), {"t": api.tenant.id}
                )
                or 0
            )
            for table in WRITE_TABLES
        }


def _messages(payload: dict[str, Any]) -> str:
    return " ".join(reason["message"] for reason in payload["reasons"])


async def refused(
    api: ApiClient, method: str, path: str, body: Any = None, *, field: str
) -> dict[str, Any]:
    """The call is a 400 in the envelope naming `field`, and writes nothing."""
    before = await _rows(api)
    try:
        status, payload = await api.call(method, path, body, expect=None)
    except TypeError:  # an integer beyond 64 bits: orjson cannot write it, the stdlib can
        response = await _raw(
            api,
            method,
            path,
            content=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        status, payload = response.status_code, loads(response.content)
    assert status == 400, (status, payload)
    if path.startswith("/v1/object/"):  # the CRUD object API's own envelope
        assert payload["Success"] is False, payload
        messages = " ".join(error["Message"] for error in payload["Errors"])
    else:
        assert_envelope(payload, INVALID_VALUE)
        messages = _messages(payload)
    assert f"'{field}'" in messages, payload
    assert await _rows(api) == before
    return payload


JSON = {"Content-Type": "application/json"}


async def _raw(api: ApiClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {api.token}", **kwargs.pop("headers", {})}
    return await api.http.request(method, path, headers=headers, **kwargs)


def _bad_request(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, (response.status_code, response.text)
    payload = loads(response.content)
    assert_envelope(payload, INVALID_VALUE)
    assert f"'{field}'" in _messages(payload), payload
    assert payload["requestId"] == response.headers["zuora-request-id"]


async def _plan(api: ApiClient) -> str:
    return await rate_plan(api)
