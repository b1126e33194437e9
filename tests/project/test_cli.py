"""The `partnerbill` command as a subprocess on the test database: tenants and clients, UI users,
settings and the metrics refresh."""

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from partnerbill.core.json import loads
from tests.cli_support import _base_env, _cli, _credentials, _failed, _ok, _settings_table, _ui_role
from tests.helpers import ApiClient, TenantCredentials, invoice_body

# --- the CLI on the test database -----------------------------------------------------------------


@pytest.fixture
def cli_env(database_url: str) -> dict[str, str]:
    return _base_env(DATABASE_URL=database_url)


@pytest.fixture
async def http(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://partnerbill.test"
    ) as client:
        yield client


async def _tenant_with_client(env: dict[str, str]) -> tuple[str, str, str]:
    name = f"cli-{uuid.uuid4().hex[:12]}"
    created = _ok(await _cli(["tenant", "create", name], env))
    assert name in created
    client_id, client_secret = _credentials(
        _ok(await _cli(["client", "create", "--tenant", name], env))
    )
    return name, client_id, client_secret


async def _token(http: httpx.AsyncClient, client_id: str, client_secret: str) -> httpx.Response:
    return await http.post(
        "/oauth/token",
        data={
            "client_id": client_id,
            "client_secret": client_secret,
            "grant_type": "client_credentials",
        },
    )


async def test_tenant_and_client_create_give_working_credentials(
    cli_env: dict[str, str], http: httpx.AsyncClient
) -> None:
    name, client_id, client_secret = await _tenant_with_client(cli_env)
    assert len(client_id) == 36
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", client_id)
    assert 1 <= len(client_secret) <= 42

    response = await _token(http, client_id, client_secret)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    settings = await http.get(
        "/v1/partnerbill/settings", headers={"Authorization": f"Bearer {token}"}
    )
    assert settings.status_code == 200
    assert settings.json()["metricsRefreshIntervalSeconds"] == 3600  # a new tenant's default

    # The secret is checked, not just the id.
    wrong = await _token(
        http, client_id, client_secret[:-1] + ("x" if client_secret[-1] != "x" else "y")
    )
    assert wrong.status_code == 401

    # A second client for the same tenant is another id and secret, and works too.
    second_id, second_secret = _credentials(
        _ok(await _cli(["client", "create", "--tenant", name, "--name", "second"], cli_env))
    )
    assert (second_id, second_secret) != (client_id, client_secret)
    assert (await _token(http, second_id, second_secret)).status_code == 200


async def test_duplicate_tenant_and_unknown_tenant_fail(cli_env: dict[str, str]) -> None:
    name = f"cli-{uuid.uuid4().hex[:12]}"
    _ok(await _cli(["tenant", "create", name], cli_env))
    assert "exists" in _failed(await _cli(["tenant", "create", name], cli_env))
    output = _failed(await _cli(["client", "create", "--tenant", f"nope-{name}"], cli_env))
    assert "client_secret" not in output
    # Several tenants exist in the test database: commands need --tenant.
    assert "--tenant" in _failed(await _cli(["settings"], cli_env))


async def test_user_create_prints_a_generated_password_that_signs_in(
    cli_env: dict[str, str], live_server: str
) -> None:
    name, _, _ = await _tenant_with_client(cli_env)
    email = f"Ops-{uuid.uuid4().hex[:8]}@Example.com"
    created = _ok(await _cli(["user", "create", "--tenant", name, "--email", email], cli_env))
    password = re.search(r"password:\s+(\S+)", created)
    assert password and len(password.group(1)) >= 12, created
    assert await asyncio.to_thread(_ui_role, live_server, email, password.group(1)) == "user"

    admin = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    chosen = "a password of my own"
    args = ["user", "create", "--tenant", name, "--email", admin, "--admin", "--password", chosen]
    assert "password:" not in _ok(await _cli(args, cli_env))
    assert await asyncio.to_thread(_ui_role, live_server, admin.upper(), chosen) == "admin"

    again = ["user", "create", "--tenant", name, "--email", email.lower()]
    assert "already exists" in _failed(await _cli(again, cli_env))
    short = ["user", "create", "--tenant", name, "--email", f"x{email}", "--password", "short"]
    assert "12 to 256 characters" in _failed(await _cli(short, cli_env))


async def test_settings_shows_and_changes_values(
    cli_env: dict[str, str], http: httpx.AsyncClient
) -> None:
    name, client_id, client_secret = await _tenant_with_client(cli_env)
    before = _settings_table(_ok(await _cli(["settings", "--tenant", name], cli_env)))
    assert before == {
        "metricsRefreshIntervalSeconds": "3600",
        "lockWaitMs": "3000",
        "invoiceBatchLimit": "50",
    }
    changed = _settings_table(
        _ok(
            await _cli(
                [
                    "settings",
                    "--tenant",
                    name,
                    "--refresh-interval-seconds",
                    "120",
                    "--lock-wait-ms",
                    "250",
                ],
                cli_env,
            )
        )
    )
    assert changed == {
        "metricsRefreshIntervalSeconds": "120",
        "lockWaitMs": "250",
        "invoiceBatchLimit": "50",
    }
    # The API sees the change.
    token = (await _token(http, client_id, client_secret)).json()["access_token"]
    api_view = (
        await http.get("/v1/partnerbill/settings", headers={"Authorization": f"Bearer {token}"})
    ).json()
    assert api_view["metricsRefreshIntervalSeconds"] == 120
    assert api_view["lockWaitMs"] == 250

    invalid = [
        ["--refresh-interval-seconds", "0"],
        ["--refresh-interval-seconds", "-120"],
        ["--lock-wait-ms", "0"],
        ["--lock-wait-ms", "60001"],
        ["--lock-wait-ms", "abc"],
        ["--invoice-batch-limit", "0"],
        ["--invoice-batch-limit", "1001"],
        ["--refresh-interval-seconds", "1.5"],
        # A valid value next to an invalid one changes nothing either.
        ["--refresh-interval-seconds", "600", "--lock-wait-ms", "0"],
    ]
    for options in invalid:
        _failed(await _cli(["settings", "--tenant", name, *options], cli_env))
    after = _settings_table(_ok(await _cli(["settings", "--tenant", name], cli_env)))
    assert after == changed


async def test_refresh_metrics_prints_folded_changes(
    cli_env: dict[str, str], http: httpx.AsyncClient
) -> None:
    name, client_id, client_secret = await _tenant_with_client(cli_env)
    # The CLI's tenant has no Tenant object here; ApiClient only needs the credentials.
    api = ApiClient(http, TenantCredentials(None, client_id, client_secret))  # type: ignore[arg-type]
    await api.authenticate()
    account = await api.create_account(partner=True)
    number = account["accountNumber"]
    await api.ok("POST", "/v1/invoices", invoice_body(number, "10.10"))
    await api.ok("POST", "/v1/invoices", invoice_body(number, "0.15"))
    assert (await api.metrics(number))["totalInvoiceBalance"] == 0

    output = _ok(await _cli(["refresh-metrics", "--tenant", name, "--account", number], cli_env))
    result = loads(output)
    assert result["success"] is True
    assert result["accountNumber"] == number
    assert result["accountId"] == account["accountId"]
    assert result["foldedChanges"] == 2
    assert result["lastMetricsUpdate"]
    assert (await api.metrics(number))["totalInvoiceBalance"] == Decimal("10.25")

    # Nothing pending any more; by account id this time.
    again = loads(
        _ok(
            await _cli(
                ["refresh-metrics", "--tenant", name, "--account", account["accountId"]], cli_env
            )
        )
    )
    assert again["foldedChanges"] == 0

    missing = _failed(
        await _cli(["refresh-metrics", "--tenant", name, "--account", "A999"], cli_env)
    )
    assert "A999" in missing
