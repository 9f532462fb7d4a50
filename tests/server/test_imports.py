"""The modules of app/server/ import each other without a cycle, type-only imports included."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "gos_web_socket.app.server"
SOURCE = Path(__file__).resolve().parents[2] / "app" / "server"


def imports_of(path: Path) -> set[str]:
    """Every ``app.server`` module that ``path`` imports, wherever the import statement is."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # ``from app.server import topic`` names a module; ``import X`` from the package
            # itself names __init__, which imports everything.
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name.startswith(PACKAGE))
    return found


def module_graph() -> dict[str, set[str]]:
    modules = {f"{PACKAGE}.{path.stem}": path for path in SOURCE.glob("*.py")}
    modules[PACKAGE] = modules.pop(f"{PACKAGE}.__init__")
    return {
        name: {target for target in imports_of(path) if target in modules and target != name}
        for name, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it starts, or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph[node]):
            cycle = visit(target)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        cycle = visit(node)
        if cycle:
            return cycle
    return None


def test_no_import_cycle_in_app_server() -> None:
    """No module of app/server/ reaches itself through imports, TYPE_CHECKING ones included."""
    graph = module_graph()
    assert len(graph) >= 10, sorted(graph)  # the glob found the package
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_only_the_package_imports_the_package() -> None:
    """Modules inside app/server/ import each other by module, never through app.server."""
    graph = module_graph()
    assert [name for name, targets in graph.items() if PACKAGE in targets] == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check itself works: a made-up graph with a cycle is reported."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
