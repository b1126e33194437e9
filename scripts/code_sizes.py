"""Sizes of the code, to compare a restructuring before and after: the largest modules, the
longest functions, how many annotations say `Any`, and the imports between feature packages
that point both ways.

    python scripts/code_sizes.py [--top 10]
"""

import argparse
import ast
from collections import defaultdict
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "partnerbill"


def package_of(path: Path) -> str:
    relative = path.relative_to(SOURCE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_packages(tree: ast.AST) -> set[str]:
    """The top-level packages (or modules) of partnerbill that `tree` imports."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] != "partnerbill":
                continue
            found.update([parts[1]] if len(parts) > 1 else [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            found.update(
                a.name.split(".")[1] for a in node.names if a.name.startswith("partnerbill.")
            )
    return found


def package_imports() -> dict[str, set[str]]:
    """Which top-level packages of partnerbill each one imports (itself left out)."""
    imports: dict[str, set[str]] = defaultdict(set)
    for path in SOURCE.rglob("*.py"):
        package = package_of(path)
        imports[package] |= imported_packages(ast.parse(path.read_text())) - {package}
    return imports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=10)
    top = parser.parse_args().top
    modules: list[tuple[int, str]] = []
    functions: list[tuple[int, str]] = []
    any_count = 0
    for path in sorted(SOURCE.rglob("*.py")):
        text = path.read_text()
        name = str(path.relative_to(SOURCE.parent))
        modules.append((len(text.splitlines()), name))
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                functions.append((length, f"{name}:{node.lineno} {node.name}"))
            elif isinstance(node, ast.Name) and node.id == "Any":
                any_count += 1
    lines = sum(n for n, _ in modules)
    print(f"{len(modules)} modules, {lines} lines, {len(functions)} functions, {any_count} Any")
    print(f"functions over 100 lines: {sum(1 for n, _ in functions if n > 100)}")
    print(f"\nlargest modules (top {top}):")
    for n, name in sorted(modules, reverse=True)[:top]:
        print(f"  {n:6d}  {name}")
    print(f"\nlongest functions (top {top}):")
    for n, name in sorted(functions, reverse=True)[:top]:
        print(f"  {n:6d}  {name}")
    imports = package_imports()
    both_ways = sorted(
        (a, b)
        for a, targets in imports.items()
        for b in targets
        if a < b and a in imports.get(b, set())
    )
    print(f"\npackages importing each other: {len(both_ways)}")
    for a, b in both_ways:
        print(f"  {a} <-> {b}")


if __name__ == "__main__":
    main()
