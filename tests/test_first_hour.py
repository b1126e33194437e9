"""A new user's first hour: the README's examples run as written against the live server."""

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import TenantCredentials

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


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
