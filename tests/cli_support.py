"""The `partnerbill` command run as a subprocess, as the tests run it: the environment it gets,
its output when it succeeded or failed, and what the tests read from that output. Shared by
the CLI, embedded-server, reseller-feature and fault tests."""

import asyncio
import os
import re
import subprocess
import sys

import httpx

from tests.ui_support import sign_in_over_http

CLI = [sys.executable, "-m", "partnerbill.cli"]
CLI_TIMEOUT = 120


def _base_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "DATABASE_URL" and not key.startswith("PARTNERBILL_")
    }
    # Wide, plain output so rich never wraps or colours what the tests parse.
    env.update(COLUMNS="200", NO_COLOR="1", TERM="dumb", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def _cli_sync(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False
    )


async def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(_cli_sync, args, env)


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.args, result.stdout, result.stderr)
    return result.stdout


def _failed(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, (result.args, result.stdout, result.stderr)
    return result.stdout + result.stderr


def _credentials(output: str) -> tuple[str, str]:
    client_id = re.search(r"client_id:\s+(\S+)", output)
    client_secret = re.search(r"client_secret:\s+(\S+)", output)
    assert client_id and client_secret, output
    return client_id.group(1), client_secret.group(1)


def _settings_table(output: str) -> dict[str, str]:
    found = {}
    for name in ("metricsRefreshIntervalSeconds", "lockWaitMs", "invoiceBatchLimit"):
        match = re.search(rf"{name}\W+(\d+)", output)
        assert match, (name, output)
        found[name] = match.group(1)
    return found


def _ui_role(base_url: str, email: str, password: str) -> str:
    """Sign in to the web UI; "admin" or "user" by what Manage Features answers, or the
    sign-in page's refusal."""
    with httpx.Client(base_url=base_url, timeout=30) as http:
        signed_in = sign_in_over_http(http, email, password)
        if signed_in.status_code != 303:
            return signed_in.text
        assert signed_in.headers["location"] == "/ui/accounts"
        features = http.get("/ui/features").status_code
    return {200: "admin", 403: "user"}[features]
