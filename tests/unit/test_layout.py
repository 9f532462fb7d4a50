"""The checkout's top level (app/, settings/, containers.py) is imported as gos_web_socket."""

from __future__ import annotations

import importlib.util
import re
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("app", "settings")
TOP_LEVEL_IMPORT = re.compile(r"^\s*(?:from|import) (?:app|settings|containers)\b", re.MULTILINE)


def test_no_module_imports_the_generic_top_level_names() -> None:
    """`import app` would load a second copy of every module beside `gos_web_socket.app`."""
    sources = [*ROOT.glob("containers.py")]
    for folder in ("app", "settings", "tests", "bench", "examples"):
        sources += (ROOT / folder).rglob("*.py")
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0).strip()}"
        for path in sources
        if "node_modules" not in path.parts and path.name != "test_install.py"  # theirs, in text
        for match in TOP_LEVEL_IMPORT.finditer(path.read_text())
    ]
    assert offenders == []


def test_every_module_of_the_checkout_is_imported_from_the_checkout_under_one_name() -> None:
    """setup.py computes the package list and the strict editable install links each file:
    every module of app/, settings/ and containers.py resolves, as gos_web_socket.*, to its
    file in this checkout (a module added since `make install` fails here: run it again)."""
    sources = [ROOT / "containers.py"]
    for folder in PACKAGES:
        sources += (ROOT / folder).rglob("*.py")
    unresolved = []
    for path in sources:
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(("gos_web_socket", *parts[: -1 if parts[-1] == "__init__" else None]))
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None or Path(spec.origin).resolve() != path:
            unresolved.append(f"{name}: {spec.origin if spec else None}")
    assert unresolved == []


@pytest.mark.parametrize("name", ["app", "settings", "app.server", "settings.models"])
def test_the_generic_names_refuse_to_import_from_the_checkout(name: str) -> None:
    """From the checkout's root (on sys.path in the suite and in `python -c`), `import app`
    would load a second copy of the package: it raises instead."""
    result = subprocess.run(
        [sys.executable, "-c", f"import {name}"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 1 and "ImportError: import gos_web_socket." in result.stderr


def test_the_rest_of_the_checkout_is_not_part_of_the_package() -> None:
    """tests, bench, examples and setup.py are importable under their own names only."""
    for name in ("tests", "bench", "examples", "setup", "docs"):
        assert importlib.util.find_spec(f"gos_web_socket.{name}") is None, name


def test_the_editable_install_is_static_paths_only() -> None:
    """No import hook: each .pth line of the distribution is a directory (pyright, mypy and
    Pylance read those; an `import` line is code they cannot follow)."""
    folders = [Path(folder) for folder in site.getsitepackages()]
    pth = [path for folder in folders for path in folder.glob("__editable__*gos_web_socket*.pth")]
    lines = [line for path in pth for line in Path(path).read_text().splitlines() if line.strip()]
    assert lines and all(Path(line).is_dir() for line in lines), lines
