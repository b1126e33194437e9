"""Standalone invoices over the v1 API as the invoice tests read them: error categories and
messages, summaries, the absence of an invoice, PUT and business errors."""

import re
from decimal import Decimal
from typing import Any

from tests.helpers import ApiClient, tenant_rows

ID = re.compile(r"^[0-9a-f]{32}$")


def category(payload: dict[str, Any]) -> int:
    return int(payload["reasons"][0]["code"]) % 100


def message(payload: dict[str, Any]) -> str:
    return " ".join(reason["message"] for reason in payload["reasons"])


async def summary(api: ApiClient, key: str) -> dict[str, Any]:
    return await api.ok("GET", f"/v1/accounts/{key}/summary")


async def assert_no_invoices(api: ApiClient, account_key: str) -> None:
    """Nothing billed: no invoice, item or pending change in the database, zero metrics."""
    rows = await tenant_rows(api)
    assert (rows["invoices"], rows["invoice_items"], rows["metrics_changes"]) == (0, 0, 0), rows
    result = await summary(api, account_key)
    assert result["invoices"] == []
    assert result["basicInfo"]["lastInvoiceDate"] is None
    metrics = await api.metrics(account_key)
    assert Decimal(metrics["totalInvoiceBalance"]) == Decimal("0")
    assert Decimal(metrics["balance"]) == Decimal("0")
    assert (await api.ok("GET", f"/v1/accounts/{account_key}"))["metricsFreshness"][
        "pendingChanges"
    ] == 0


async def assert_invoice_absent(api: ApiClient, key: str) -> None:
    status, payload = await api.call("GET", f"/v1/invoices/{key}", expect=None)
    assert status == 404, payload
    assert category(payload) == 40


async def put(api: ApiClient, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    return await api.call("PUT", path, body, expect=None)


async def business_error(api: ApiClient, method: str, path: str, body: Any = None) -> str:
    status, payload = await api.call(method, path, body, expect=None)
    assert status == 200, payload
    assert payload["success"] is False, payload
    assert category(payload) == 30, payload
    return message(payload)
