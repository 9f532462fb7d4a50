"""The checkout's top level (app/, settings/, containers.py) is imported as gos_web_socket."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
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


def test_every_package_of_the_checkout_is_in_the_wheel() -> None:
    """pyproject lists the packages by hand (package-dir maps the root): a new one must be added."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {"gos_web_socket"} | {
        "gos_web_socket." + ".".join(init.parent.relative_to(ROOT).parts)
        for folder in ("app", "settings")
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert found - listed == set()
