"""Dependencies point one way (AST over `src/`, by `scripts/code_sizes.py`'s import graph):
`core` and `settings` import no feature; entry points (`app`, `cli`, `tasks`, `demo`) may
import anything and nothing imports them but each other; and feature packages that import each
other in a cycle are only those listed in `KNOWN_CYCLES`, debt being paid off: a new cycle fails
the test, and so does a listed one that is gone (strike it from the list)."""

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "code_sizes.py"
SHARED = {"core", "settings"}
ENTRY_POINTS = {"app", "cli", "tasks", "demo", "__init__"}
# Feature packages in one cycle today (strongly connected components of the import graph).
KNOWN_CYCLES = [
    {
        "accounts",
        "billing",
        "memos",
        "metrics",
        "payment_methods",
        "payments",
        "subscriptions",
    },
]


def _graph() -> dict[str, set[str]]:
    spec = importlib.util.spec_from_file_location("code_sizes", SCRIPT)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    graph: dict[str, set[str]] = module.package_imports()
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one package (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, set()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_core_and_settings_import_no_feature() -> None:
    graph = _graph()
    assert graph["core"] <= SHARED
    assert graph["settings"] <= SHARED


def test_only_entry_points_import_entry_points() -> None:
    graph = _graph()
    importers = {
        (package, target)
        for package, targets in graph.items()
        for target in targets & ENTRY_POINTS
        if package not in ENTRY_POINTS
    }
    assert importers == set()


def test_feature_cycles_are_only_the_known_ones() -> None:
    graph = _graph()
    features = {p: t - SHARED - ENTRY_POINTS for p, t in graph.items() if p not in ENTRY_POINTS}
    assert sorted(map(sorted, _cycles(features))) == sorted(map(sorted, KNOWN_CYCLES))


def test_a_cycle_is_found() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
