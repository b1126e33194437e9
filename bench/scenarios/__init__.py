"""Benchmark scenarios, each a module with `NAME`, `DESCRIPTION` and
`async def run(bench) -> targets`; `partnerbill bench NAME` selects one."""

from importlib import import_module
from types import ModuleType

# CLI name -> module under bench.scenarios
SCENARIOS = {
    "hot-account": "hot_account",
    "ceiling": "ceiling",
    "reads": "reads",
    "reseller": "reseller",
    "distributor": "distributor",
    "owner-transfer": "owner_transfer",
    "mixed": "mixed",
    "freshness": "freshness",
    "migration": "migration",
    "growth": "growth",
    "export": "export",
    "write-path": "write_path",
}


def get_scenario(name: str) -> ModuleType:
    if name not in SCENARIOS:
        raise SystemExit(f"unknown scenario {name!r}; choose one of: {', '.join(SCENARIOS)}")
    return import_module(f"bench.scenarios.{SCENARIOS[name]}")
