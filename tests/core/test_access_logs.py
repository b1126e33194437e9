"""Access logs and /metrics of a live server process.

Raw HTTP throughout: the checks are on headers, the process's log lines and the Prometheus
text, none of which the zuora-sdk exposes."""

import asyncio
import json
import re
import signal
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from partnerbill.core import auth, db
from partnerbill.core.tenants import create_tenant
from tests.faults import running_server
from tests.helpers import account_body, invoice_body


async def _named_tenant(database_url: str, name: str) -> tuple[str, str, str]:
    engine = db.create_engine(database_url)
    try:
        async with engine.begin() as conn:
            tenant = await create_tenant(conn, name)
            client = await auth.create_client(conn, tenant, "logs")
        return tenant.id, client.client_id, client.client_secret
    finally:
        await engine.dispose()


def _token(base_url: str, client_id: str, secret: str) -> str:
    answer = httpx.post(
        f"{base_url}/oauth/token",
        data={"client_id": client_id, "client_secret": secret, "grant_type": "client_credentials"},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _lines(log: Path) -> list[dict[str, Any]]:
    parsed = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            parsed.append(json.loads(line))
    return parsed


@pytest.fixture(scope="module")
def tenant(database_url: str) -> tuple[str, str, str, str]:
    name = f"logs-{uuid.uuid4().hex[:12]}"
    return (name, *asyncio.run(_named_tenant(database_url, name)))


def test_one_json_line_per_request_and_process_lines(
    database_url: str, tenant: tuple[str, str, str, str], tmp_path: Path
) -> None:
    _, tenant_id, client_id, secret = tenant
    log = tmp_path / "server.log"
    with running_server(database_url, {"PARTNERBILL_LOG_LEVEL": "INFO"}, log_path=log) as server:
        token = _token(server.base_url, client_id, secret)
        given = f"trace-{uuid.uuid4().hex}"
        missing = httpx.get(
            f"{server.base_url}/v1/accounts/A99999999",
            headers={"Authorization": f"Bearer {token}", "X-Request-Id": given},
        )
        assert missing.status_code == 404
        assert missing.headers["x-request-id"] == given
        fresh = httpx.get(f"{server.base_url}/health", headers={"X-Request-Id": "bad id!"})
        made = fresh.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", made)
        assert fresh.headers["zuora-request-id"] == made
        pid = server.process.pid
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=30)
    lines = _lines(log)
    requests = [line for line in lines if line.get("event") == "request"]
    by_id = {line["request_id"]: line for line in requests}
    account_line = by_id[given]
    assert account_line["tenant"] == tenant_id
    assert account_line["route"] == "/v1/accounts/{account_key}"
    assert account_line["method"] == "GET"
    assert account_line["status"] == 404
    assert isinstance(account_line["duration_ms"], float | int)
    assert account_line["duration_ms"] >= 0
    health = by_id[made]
    assert health["route"] == "/health"
    assert health["tenant"] is None
    assert health["status"] == 200
    token_lines = [line for line in requests if line["route"] == "/oauth/token"]
    assert len(token_lines) == 1 and token_lines[0]["method"] == "POST"
    started = [line for line in lines if line.get("event") == "process_started"]
    stopped = [line for line in lines if line.get("event") == "process_stopped"]
    assert [(line["process"], line["pid"]) for line in started] == [("api", pid)]
    assert [(line["process"], line["pid"]) for line in stopped] == [("api", pid)]


def _sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.rsplit("} ", 1)[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_count_requests_and_show_pending_changes(
    database_url: str, tenant: tuple[str, str, str, str]
) -> None:
    name, _, client_id, secret = tenant
    with running_server(database_url) as server:
        token = _token(server.base_url, client_id, secret)
        headers = {"Authorization": f"Bearer {token}"}
        created = httpx.post(
            f"{server.base_url}/v1/accounts",
            json=account_body(partnerAccount=True),
            headers=headers,
        ).json()
        assert created["success"] is True, created
        for _ in range(3):
            answer = httpx.post(
                f"{server.base_url}/v1/invoices",
                json=invoice_body(created["accountNumber"], "10.00"),
                headers=headers,
            )
            assert answer.json()["success"] is True, answer.text
        for _ in range(2):
            httpx.get(f"{server.base_url}/v1/accounts/A99999999", headers=headers)
        text = httpx.get(f"{server.base_url}/metrics").text
    route = "/v1/accounts/{account_key}"
    assert (
        _sample(text, "partnerbill_http_requests_total", route=route, method="GET", status="404")
        == 2
    )
    assert _sample(text, "partnerbill_http_requests_total", route="/v1/invoices", status="200") == 3
    assert (
        _sample(
            text,
            "partnerbill_http_request_duration_seconds_count",
            route="/v1/invoices",
            status="200",
        )
        == 3
    )
    assert "partnerbill_http_server_errors_total" in text
    assert _sample(text, "partnerbill_metrics_pending_changes", tenant=name) == 3
    lag = _sample(text, "partnerbill_metrics_refresh_lag_seconds", tenant=name)
    assert lag is not None and lag >= 0
    in_use = _sample(text, "partnerbill_db_pool_connections", state="in_use")
    assert in_use is not None and in_use >= 0
