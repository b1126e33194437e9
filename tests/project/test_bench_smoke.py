"""One fast smoke run of each `partnerbill bench` scenario at tiny sizes against the live server:
the result file exists with its keys, the reconciliation passed, and the partner variants had no
lock errors. Benchmarks are not tests: nothing here looks at timings."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench import harness
from bench.scenarios import SCENARIOS as BENCH_SCENARIOS

from partnerbill.cli import BENCH_SCENARIOS as NAMED_BY_THE_CLI
from tests.helpers import TenantCredentials

CHECKOUT = Path(__file__).resolve().parents[2]
# scenario -> its variants on partner accounts (must never see a lock error)
SCENARIOS = {
    "hot-account": ("a-partner-hot", "c-partner-spread"),
    "ceiling": ("api-partner-hot", "ceiling-psycopg"),
    "reads": ("writes-partner-hot", "writes-fixed-admission"),
    "write-path": ("uvicorn-group", "uvicorn-each", "granian-group", "granian-each"),
}
RESULT_KEYS = {
    "scenario",
    "startedAt",
    "command",
    "config",
    "machine",
    "variants",
    "ratios",
    "targets",
    "reconciliation",
    "passed",
}
SUMMARY_KEYS = {
    "requestsPerSecond",
    "objectsPerSecond",
    "latencyMs",
    "errors",
    "lockErrors",
    "serverRssPeakMb",
    "refreshDurationMs",
    "refreshLagSeconds",
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_bench_scenario_smoke(
    scenario: str, live_server: str, tenant_credentials: TenantCredentials, tmp_path: Path
) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "partnerbill.cli",
            "bench",
            scenario,
            "--url",
            live_server,
            "--client-id",
            tenant_credentials.client_id,
            "--client-secret",
            tenant_credentials.client_secret,
            "--tiny",
            "--results-dir",
            str(tmp_path),
        ],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    (result_file,) = tmp_path.glob(f"{scenario}-*.json")
    assert result_file.with_suffix(".md").exists()
    assert result_file.with_suffix(".png").stat().st_size > 0
    result = json.loads(result_file.read_text())
    assert set(result) >= RESULT_KEYS
    assert result["scenario"] == scenario
    assert tenant_credentials.client_secret not in result["command"]
    assert result["reconciliation"]["passed"] is True, result["reconciliation"]["mismatches"]
    assert result["reconciliation"]["accounts"] >= 1
    assert result["passed"] is True
    assert result["ratios"]
    summary_file = harness.write_summary([result], result["files"], "partnerbill bench all")
    summary_lines = summary_file.read_text().splitlines()
    for target in result["targets"]:
        assert any(f"| {target['target']} |" in line for line in summary_lines), target
    for variant in SCENARIOS[scenario]:
        summary = result["variants"][variant]["summary"]
        assert set(summary) >= SUMMARY_KEYS
        assert summary["ok"] > 0
        assert summary["lockErrors"] == 0, summary["errors"]
        assert set(summary["latencyMs"]) == {"p50", "p95", "p99", "max"}


def test_the_cli_names_every_scenario_and_all() -> None:
    assert set(NAMED_BY_THE_CLI) == set(BENCH_SCENARIOS) | {harness.ALL}
