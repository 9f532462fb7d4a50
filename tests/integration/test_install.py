"""The console script from a real, non-editable install: wheel built, fresh venv, script run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = ("pyproject.toml", "README.md", "containers.py", "app", "settings")
"""What the wheel is built from (pyproject's packages, py-modules and readme), copied so the
build leaves no build/ or egg-info in the checkout."""


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_console_script_runs_from_a_fresh_venv_with_a_wheel_install(tmp_path: Path) -> None:
    """`pip wheel` + `pip install` into a new venv: `gos-websocket --help` and `routes` work."""
    source = tmp_path / "src"
    source.mkdir()
    for name in PROJECT_FILES:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, source, cwd=tmp_path
    )
    (wheel,) = wheels.glob("gos_web_socket-*.whl")
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    _run(venv / "bin" / "python", "-m", "pip", "install", "-q", wheel, cwd=tmp_path)

    elsewhere = tmp_path / "elsewhere"  # not the checkout: imports must come from the venv
    elsewhere.mkdir()
    where = _run(venv / "bin" / "python", "-c", "import app; print(app.__file__)", cwd=elsewhere)
    assert Path(where.stdout.strip()).is_relative_to(venv)

    help_text = _run(venv / "bin" / "gos-websocket", "--help", cwd=elsewhere).stdout
    assert help_text.startswith("usage: gos-websocket")
    assert all(command in help_text for command in ("server", "push", "routes", "config"))
    routes = _run(venv / "bin" / "gos-websocket", "routes", cwd=elsewhere).stdout
    assert "acme_topic" in routes  # the shipped settings and routing YAML were installed
