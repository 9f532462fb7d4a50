"""The package's modules import each other without a cycle, type-only imports included, and
the layers point one way: app -> settings, never back."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = "gos_web_socket"
SOURCE = Path(__file__).resolve().parents[2]
TOP_MODULES = ("containers.py", "push.py", "testing.py")
"""The modules at the package's top level (the repository root is the package)."""
SERVER = f"{ROOT}.app.server"


def package_modules() -> dict[str, Path]:
    """Every module of the package by dotted name: app/, settings/ and the top-level ones."""
    paths = [*(SOURCE / "app").rglob("*.py"), *(SOURCE / "settings").rglob("*.py")]
    paths += [SOURCE / name for name in TOP_MODULES if (SOURCE / name).exists()]
    modules: dict[str, Path] = {}
    for path in paths:
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join([ROOT, *parts])] = path
    return modules


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every package module that ``path`` imports, wherever the import statement is."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # ``from app.server import topic`` names a module; ``import X`` from a package
            # names its __init__, which imports what it re-exports.
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


def module_graph() -> dict[str, set[str]]:
    modules = package_modules()
    known = set(modules)
    return {
        name: {target for target in imports_of(path, known) if target != name}
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


def test_no_import_cycle_in_the_package() -> None:
    """No module of app/, settings/ or the top level reaches itself through imports,
    TYPE_CHECKING ones included."""
    graph = module_graph()
    assert {f"{SERVER}.server", f"{ROOT}.containers", f"{ROOT}.settings.models"} <= set(graph)
    assert len(graph) >= 60, sorted(graph)  # the globs found the package
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_settings_import_no_app_module() -> None:
    """The direction is app -> settings only: settings are read before anything is built."""
    graph = module_graph()
    wrong = {
        name: sorted(target for target in targets if target.startswith(f"{ROOT}.app"))
        for name, targets in graph.items()
        if name.startswith(f"{ROOT}.settings")
    }
    assert {name: targets for name, targets in wrong.items() if targets} == {}


def test_app_imports_no_composition_module() -> None:
    """containers.py (and push.py, testing.py beside it) build app's parts: app modules receive
    them and never import those, except the console entry point that starts the container."""
    graph = module_graph()
    top = {f"{ROOT}.{name.removesuffix('.py')}" for name in TOP_MODULES}
    wrong = {
        name: sorted(targets & top)
        for name, targets in graph.items()
        if name.startswith(f"{ROOT}.app") and name != f"{ROOT}.app.__main__" and targets & top
    }
    assert wrong == {}


def test_only_the_package_imports_the_package() -> None:
    """Modules inside app/server/ import each other by module, never through app.server."""
    graph = module_graph()
    inside = [name for name in graph if name.startswith(f"{SERVER}.")]
    assert len(inside) >= 10, inside
    assert [name for name in inside if SERVER in graph[name]] == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check itself works: a made-up graph with a cycle is reported."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
