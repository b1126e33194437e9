"""One fast smoke run of the `migration` and `growth` bench scenarios at tiny sizes against the
live server: the result files exist with their keys, the reconciliation passed, every invoice
asked for was written, and the partner variants had no lock errors. No timing is looked at."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import TenantCredentials

CHECKOUT = Path(__file__).resolve().parents[2]
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
    "requests",
    "ok",
    "requestsPerSecond",
    "objectsPerSecond",
    "latencyMs",
    "errors",
    "lockErrors",
    "serverRssPeakMb",
    "serverRssPeakProcessMb",
    "refreshDurationMs",
    "refreshLagSeconds",
}
TINY_INVOICES = 500
TINY_SIZES = ("0", "200", "500")


def run_bench(
    scenario: str, live_server: str, credentials: TenantCredentials, results: Path
) -> dict[str, Any]:
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
            credentials.client_id,
            "--client-secret",
            credentials.client_secret,
            "--tiny",
            "--results-dir",
            str(results),
        ],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    (result_file,) = results.glob(f"{scenario}-*.json")
    assert result_file.with_suffix(".md").exists()
    assert result_file.with_suffix(".png").stat().st_size > 0
    result: dict[str, Any] = json.loads(result_file.read_text())
    assert set(result) >= RESULT_KEYS
    assert result["scenario"] == scenario
    assert credentials.client_secret not in result["command"]
    assert result["reconciliation"]["passed"] is True, result["reconciliation"]["mismatches"]
    assert result["passed"] is True
    assert result["ratios"]
    for summary in (v["summary"] for v in result["variants"].values()):
        assert set(summary) >= SUMMARY_KEYS
        assert set(summary["latencyMs"]) == {"p50", "p95", "p99", "max"}
    for target in result["targets"]:
        assert set(target) >= {"target", "measured", "met"}
    return result


def test_bench_migration_smoke(
    live_server: str, tenant_credentials: TenantCredentials, tmp_path: Path
) -> None:
    result = run_bench("migration", live_server, tenant_credentials, tmp_path)
    variants = result["variants"]
    assert set(variants) == {"partner-50", "partner-500", "non-partner-50", "day-partner-50"}
    for name in ("partner-50", "partner-500", "day-partner-50"):
        summary = variants[name]["summary"]
        assert summary["ok"] == summary["requests"] > 0, summary["errors"]
        assert summary["lockErrors"] == 0, summary["errors"]
    # 500 invoices at 50 per call and at 500 per call (the raised invoiceBatchLimit).
    assert variants["partner-50"]["summary"]["requests"] == TINY_INVOICES // 50
    assert variants["partner-500"]["summary"]["requests"] == 1
    by_variant = {t["variant"]: t for t in result["targets"] if "variant" in t}
    assert by_variant["partner-50"]["invoices"] == TINY_INVOICES
    assert by_variant["partner-500"]["invoices"] == TINY_INVOICES
    assert by_variant["day-partner-50"]["invoices"] == round(TINY_INVOICES * 0.15)
    (refreshed,) = [t for t in result["targets"] if "durationMs" in t]
    # The refresh folded the changes of the migration and of the day (one per call or per
    # invoice, as the write path logs them).
    assert 1 <= refreshed["foldedChanges"] <= TINY_INVOICES + round(TINY_INVOICES * 0.15)
    assert set(result["ratios"]) == {"partner/non-partner", "500/50 per call"}
    # Four accounts: three migrated, the day went into the first one.
    assert result["reconciliation"]["accounts"] == 3


def test_bench_growth_smoke(
    live_server: str, tenant_credentials: TenantCredentials, tmp_path: Path
) -> None:
    result = run_bench("growth", live_server, tenant_credentials, tmp_path)
    variants = result["variants"]
    assert set(variants) == {
        f"{flag}@{size}" for flag in ("partner", "non-partner") for size in TINY_SIZES
    }
    for name, variant in variants.items():
        summary = variant["summary"]
        assert summary["ok"] == summary["requests"] > 0, (name, summary["errors"])
        assert summary["lockErrors"] == 0
    assert set(result["ratios"]) == {
        f"{flag} {stat} 500/0" for flag in ("partner", "non-partner") for stat in ("p50", "p99")
    } | {"fold 500/0"}
    folds = [t for t in result["targets"] if t["target"].startswith("fold of")]
    assert len(folds) == 2 and all(t["flag"] == "partner" for t in folds), folds
    assert {t["flag"] for t in result["targets"]} == {"partner", "non-partner"}
    # One measured account per flag and size, and the two warm-up accounts.
    assert result["reconciliation"]["accounts"] == 2 * len(TINY_SIZES) + 2
