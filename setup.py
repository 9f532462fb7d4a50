"""The wheel's package list, computed: the checkout's top level is the package `gos_web_socket`.

Everything else lives in pyproject.toml. setuptools cannot give what `packages.find` finds the
`gos_web_socket.` prefix that `package-dir` maps onto this directory, so the list is made here:
every folder under app/ and settings/ is a package (app/static holds data only). A new module
or package needs no edit here; tests, bench and examples stay out of the wheel.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

NAME = "gos_web_socket"
TOP_LEVEL_PACKAGES = ("app", "settings")
TOP_LEVEL_MODULES = ("containers", "push", "testing")
"""The root's modules in the wheel: the composition root, the pushers-only entry and the test
helpers; this file (and any other script at the root) is not."""


def packages() -> list[str]:
    """`gos_web_socket` and one dotted name per folder of app/ and settings/ (no caches)."""
    folders = [Path(top) for top in TOP_LEVEL_PACKAGES]
    folders += [p for top in TOP_LEVEL_PACKAGES for p in sorted(Path(top).rglob("*")) if p.is_dir()]
    return [NAME] + [
        ".".join((NAME, *folder.parts))
        for folder in folders
        if not any(part == "__pycache__" or part.startswith(".") for part in folder.parts)
    ]


class BuildPy(build_py):
    """The root is the package's folder, so setup.py would be `gos_web_socket.setup`: keep
    only the modules the design puts at the top."""

    def find_package_modules(self, package: str, package_dir: str) -> list[tuple[str, str, str]]:
        modules: list[tuple[str, str, str]] = super().find_package_modules(package, package_dir)
        if package != NAME:
            return modules
        return [module for module in modules if module[1] in TOP_LEVEL_MODULES]


setup(packages=packages(), cmdclass={"build_py": BuildPy})
