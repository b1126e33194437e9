"""Dependencies point one way (AST over `src/`, by `scripts/code_sizes.py`'s import graph):
`settings` imports nothing, `core` only settings, `tables` only core; entry points (`app`,
`cli`, `tasks`, `demo`) may import anything and nothing imports them but each other; and no
feature packages import each other in a cycle (a feature reads another's rows through
`tables`, never by importing that feature's code back)."""

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "code_sizes.py"
SHARED = {"core", "settings", "tables"}
ENTRY_POINTS = {"app", "cli", "tasks", "demo", "__init__"}


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


def test_the_shared_layers_import_no_feature() -> None:
    graph = _graph()
    assert graph["settings"] == set()
    assert graph["core"] <= {"settings"}
    assert graph["tables"] <= {"core"}


def test_only_entry_points_import_entry_points() -> None:
    graph = _graph()
    importers = {
        (package, target)
        for package, targets in graph.items()
        for target in targets & ENTRY_POINTS
        if package not in ENTRY_POINTS
    }
    assert importers == set()


def test_no_two_features_import_each_other_in_a_cycle() -> None:
    graph = _graph()
    features = {p: t - SHARED - ENTRY_POINTS for p, t in graph.items() if p not in ENTRY_POINTS}
    assert _cycles(features) == []


def test_a_cycle_is_found() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
