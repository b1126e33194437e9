"""A new user's first hour: the README's examples run as written against the live server."""

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from tests.helpers import TenantCredentials
from tests.job_worker import running_worker

README = Path(__file__).resolve().parents[2] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def _curl_blocks() -> list[str]:
    """The README's shell examples that call the API (they take a token first)."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL)
    return [block for block in blocks if "/oauth/token" in block]


def _run_curl_block(block: str, base_url: str, var_dir: Path, cwd: Path) -> str:
    """Run a README shell example as written, in a checkout whose `var/` is `var_dir`, against
    the live server in place of the default address."""
    cwd.mkdir()
    (cwd / "var").symlink_to(var_dir, target_is_directory=True)
    script = "set -euo pipefail\n" + block.replace("http://127.0.0.1:8000", base_url)
    done = subprocess.run(
        ["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout


def test_readme_sdk_snippet_runs_verbatim(
    live_server: str, sdk_credentials: TenantCredentials, tmp_path: Path
) -> None:
    blocks = [block for block in _python_blocks() if "ZuoraClient" in block]
    assert len(blocks) == 1, "the Quick start has one SDK snippet"
    script = tmp_path / "sdk_example.py"
    script.write_text(blocks[0])
    # The environment the README tells the reader to export.
    env = {
        **os.environ,
        "ID": sdk_credentials.client_id,
        "SECRET": sdk_credentials.client_secret,
        "PARTNERBILL_URL": live_server,
    }
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"A\d{8}", lines[0]), done.stdout
    assert "partnerAccount: True" in lines
    # A partner account not refreshed yet: its metrics were never computed.
    assert "lastMetricsUpdate: None" in lines
    assert any(line.startswith("metricsFreshness: {'pendingChanges': 0") for line in lines)


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "partnerbill.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.args, done.stdout, done.stderr)
    return done.stdout


def _token_status(base_url: str, client_id: str, secret: str) -> int:
    answer = httpx.post(
        f"{base_url}/oauth/token",
        data={"client_id": client_id, "client_secret": secret, "grant_type": "client_credentials"},
    )
    return answer.status_code


def test_cli_defaults_to_the_saved_demo_tenant_lists_and_revokes_clients(
    database_url: str, live_server: str, tmp_path: Path
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "DATABASE_URL" and not key.startswith("PARTNERBILL_")
    }
    env.update(
        COLUMNS="250",
        NO_COLOR="1",
        TERM="dumb",
        DATABASE_URL=database_url,
        PARTNERBILL_VAR_DIR=str(tmp_path),
    )
    demo = f"demo-{uuid.uuid4().hex[:10]}"
    bench = f"bench-hot-account-{uuid.uuid4().hex[:10]}"
    _ok(_cli(["tenant", "create", demo], env))
    _ok(_cli(["tenant", "create", bench], env))
    # Several tenants exist: without a saved demo tenant, --tenant is required.
    assert _cli(["client", "list"], env).returncode == 1
    created = _ok(_cli(["client", "create", "--tenant", demo, "--name", "first"], env))
    client_id = re.search(r"client_id:\s+(\S+)", created)
    secret = re.search(r"client_secret:\s+(\S+)", created)
    assert client_id and secret
    _ok(_cli(["client", "create", "--tenant", bench], env))
    (tmp_path / "demo-client.json").write_text(
        json.dumps({"tenant": demo, "client_id": client_id[1], "client_secret": secret[1]})
    )
    listed = _ok(_cli(["tenant", "list"], env))
    assert demo in listed and bench in listed
    # The saved demo tenant is the default; the benchmark's tenant changes nothing.
    clients = _ok(_cli(["client", "list"], env))
    assert client_id[1] in clients and bench not in clients
    assert len(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-", clients)) == 1
    both = _ok(_cli(["client", "create", "--name", "second"], env))
    assert len(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-", _ok(_cli(["client", "list"], env)))) == 2
    assert "client_id" in both
    assert bench in _ok(_cli(["client", "list", "--tenant", bench], env))

    assert _token_status(live_server, client_id[1], secret[1]) == 200
    assert "revoked" in _ok(_cli(["client", "revoke", client_id[1]], env))
    assert _token_status(live_server, client_id[1], secret[1]) == 401
    assert client_id[1] not in _ok(_cli(["client", "list"], env))
    assert _cli(["client", "revoke", client_id[1]], env).returncode == 1


def test_demo_loads_a_reseller_once_and_says_so_on_rerun(
    database_url: str, live_server: str, sdk_credentials: TenantCredentials, tmp_path: Path
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "DATABASE_URL" and not key.startswith("PARTNERBILL_")
    }
    env.update(COLUMNS="250", NO_COLOR="1", TERM="dumb", PARTNERBILL_VAR_DIR=str(tmp_path))
    (tmp_path / "demo-client.json").write_text(
        json.dumps(
            {
                "tenant": "demo",
                "client_id": sdk_credentials.client_id,
                "client_secret": sdk_credentials.client_secret,
            }
        )
    )
    with running_worker(database_url):
        first = _ok(_cli(["demo", "--url", live_server], env))
    assert "Sample reseller loaded" in first
    reseller = re.search(r"reseller \(invoice owner\):\s+(A\d{8})", first)
    owners = re.search(r"subscription owners:\s+(.+)", first)
    invoices = re.search(r"invoices:\s+(.+)", first)
    payments = re.search(r"payments:\s+(.+)", first)
    assert reseller and owners and invoices and payments, first
    assert len(owners[1].split(", ")) == 3
    # One invoice per owner per run unless invoiceSeparately: the reseller gets one.
    assert re.fullmatch(r"INV\d{8}", invoices[1].strip()), invoices[1]

    token = httpx.post(
        f"{live_server}/oauth/token",
        data={
            "client_id": sdk_credentials.client_id,
            "client_secret": sdk_credentials.client_secret,
            "grant_type": "client_credentials",
        },
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    account = httpx.get(f"{live_server}/v1/accounts/{reseller[1]}", headers=headers).json()
    assert account["basicInfo"]["partnerAccount"] is True
    assert account["basicInfo"]["lastMetricsUpdate"] is not None
    # 12 + 5 + 30 seats at 12.50 and three support plans at 99.00, January in advance (884.50),
    # less the two payments (300.00 and 250.00).
    assert str(account["metrics"]["totalInvoiceBalance"]) in ("334.5", "334.50")
    assert len(payments[1].split(", ")) == 2

    again = _ok(_cli(["demo", "--url", live_server], env))
    assert "already loaded" in again
    assert reseller[1] in again
    documents = httpx.get(
        f"{live_server}/v1/billing-documents",
        params={"accountNumber": reseller[1]},
        headers=headers,
    ).json()["documents"]
    assert len(documents) == 1

    # The README's shell examples, as written: the Quick start's partner account, then the
    # demo's reseller and its billing documents.
    quick_start, demo_reads = _curl_blocks()
    created = json.loads(_run_curl_block(quick_start, live_server, tmp_path, tmp_path / "qs"))
    assert created["success"] is True and created["accountNumber"], created
    printed = _run_curl_block(demo_reads, live_server, tmp_path, tmp_path / "demo")
    account_text, documents_text = printed.split("\n}\n", 1)
    read = json.loads(account_text + "\n}")
    assert read["basicInfo"]["accountNumber"] == reseller[1]
    assert read["basicInfo"]["partnerAccount"] is True
    assert len(json.loads(documents_text)["documents"]) == 1
