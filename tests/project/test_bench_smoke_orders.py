"""One fast smoke run of each order-driven `partnerbill bench` scenario (reseller, distributor,
owner-transfer, mixed, freshness) at tiny sizes against the live server, with a job worker
beside it (the reseller's bill run is a job, the refresh loop runs in it): the result files
exist with their keys, the reconciliation passed, and partner accounts saw no lock error.
Benchmarks are not tests: nothing here looks at timings."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import TenantCredentials

CHECKOUT = Path(__file__).resolve().parents[2]
# scenario -> (variants whose requests all went to partner accounts, the zero-lock-error target,
#              accounts reconciled at --tiny)
SCENARIOS: dict[str, tuple[tuple[str, ...], str, int]] = {
    "reseller": (("orders-partner",), "zero lock errors on partner accounts (orders)", 4),
    "distributor": ((), "zero lock errors on the partner distributor", 7),
    "owner-transfer": (("transfers-partner",), "zero lock errors on the two partner accounts", 2),
    "mixed": (
        ("writers-no-refresh", "writers-refresh-every-5s"),
        "zero lock errors on the partner account",
        1,
    ),
    "freshness": (
        ("writers-refresh-1s", "writers-refresh-off"),
        "zero lock errors on the partner account",
        1,
    ),
}
# scenario -> variants every run has
VARIANTS = {
    "reseller": {"orders-partner", "bill-run", "refresh-all"},
    "distributor": {"edi-batch"},
    "owner-transfer": {"transfers-partner"},
    "mixed": {"writers-no-refresh", "writers-refresh-every-5s", "refresh-every-5s"},
    "freshness": {"writers-refresh-1s", "writers-refresh-off"},
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
    "notes",
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


@pytest.fixture(scope="module")
def job_worker(database_url: str) -> Iterator[subprocess.Popen[bytes]]:
    """`partnerbill worker` on the test database, for the reseller's bill run."""
    env = {**os.environ, "DATABASE_URL": database_url, "PARTNERBILL_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-m", "partnerbill.cli", "worker"], env=env)
    yield process
    process.terminate()
    process.wait(timeout=30)


# scenario -> options beside --tiny (the reseller's orders of up to 4 subscriptions, the last
# one short)
OPTIONS = {"reseller": ["--subscriptions", "13"]}


def bench(scenario: str, url: str, credentials: TenantCredentials, results: Path) -> dict[str, Any]:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "partnerbill.cli",
            "bench",
            scenario,
            "--url",
            url,
            "--client-id",
            credentials.client_id,
            "--client-secret",
            credentials.client_secret,
            "--tiny",
            *OPTIONS.get(scenario, []),
            "--results-dir",
            str(results),
        ],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    (result_file,) = results.glob(f"{scenario}-*.json")
    assert result_file.with_suffix(".md").exists()
    assert result_file.with_suffix(".png").stat().st_size > 0
    result: dict[str, Any] = json.loads(result_file.read_text())
    return result


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_bench_order_scenario_smoke(
    scenario: str,
    live_server: str,
    job_worker: subprocess.Popen[bytes],
    tenant_credentials: TenantCredentials,
    tmp_path: Path,
) -> None:
    result = bench(scenario, live_server, tenant_credentials, tmp_path)
    assert job_worker.poll() is None, "the job worker died"
    partner_variants, lock_target, accounts = SCENARIOS[scenario]

    assert set(result) >= RESULT_KEYS
    assert result["scenario"] == scenario
    assert result["config"]["tiny"] is True
    assert tenant_credentials.client_secret not in result["command"]
    assert result["reconciliation"]["passed"] is True, result["reconciliation"]["mismatches"]
    assert result["reconciliation"]["accounts"] == accounts
    assert result["passed"] is True
    assert set(result["variants"]) == VARIANTS[scenario]
    for name, variant in result["variants"].items():
        summary = variant["summary"]
        assert set(summary) >= SUMMARY_KEYS
        assert summary["ok"] > 0, (name, summary)
        assert set(summary["latencyMs"]) == {"p50", "p95", "p99", "max"}
    for name in partner_variants:
        summary = result["variants"][name]["summary"]
        assert summary["lockErrors"] == 0, summary["errors"]
        assert summary["errors"] == {}, summary["errors"]
    targets = {t["target"]: t for t in result["targets"]}
    assert targets[lock_target]["measured"] == 0 and targets[lock_target]["met"] is True
    assert result["notes"]
    if scenario == "reseller":  # the worker ran the bill run, which billed every seat ordered
        assert targets["bill run posted"]["met"] is True, targets
        assert targets["reseller invoiced = seats x price"]["met"] is True, targets
        assert targets["zero failed orders"]["measured"] == 0
        assert targets[">= 1,000 subscriptions/s ordered"]["measured"].startswith("13 in ")
        assert targets["reconciliation exact (metrics = recompute)"]["met"] is True
