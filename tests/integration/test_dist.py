"""Issue 30 packaging: an sdist and a wheel an index would accept, and `make run` without the
test, docs and benchmark packages."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_sdist_and_wheel_pass_twine_check_with_complete_metadata(tmp_path: Path) -> None:
    """`python -m build` makes both; `twine check --strict` passes; the wheel's metadata has
    the license, classifiers, URLs and the README as its description."""
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    built = sorted(path.name for path in tmp_path.iterdir())
    assert built == ["gos_web_socket-0.1.0-py3-none-any.whl", "gos_web_socket-0.1.0.tar.gz"]
    check = subprocess.run(
        [str(VENV_BIN / "twine"), "check", "--strict", *map(str, tmp_path.iterdir())],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count("PASSED") == 2
    with zipfile.ZipFile(tmp_path / built[0]) as wheel:
        text = wheel.read("gos_web_socket-0.1.0.dist-info/METADATA").decode()
        assert "gos_web_socket-0.1.0.dist-info/licenses/LICENSE" in wheel.namelist()
    metadata = Parser().parsestr(text)
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert "Typing :: Typed" in metadata.get_all("Classifier", [])
    # No Project-URL until the project has a public home: an invented address would mislead.
    assert metadata.get_all("Project-URL", []) == []
    assert metadata.get_payload().startswith("# gos-web-socket")


def test_make_run_installs_the_runtime_without_an_extra(tmp_path: Path) -> None:
    """`make run` on a fresh checkout installs `-e .` only: no [dev], [bench] or [examples]."""
    dry = subprocess.run(
        ["make", "-n", "-B", "run", f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    installs = [line for line in dry.stdout.splitlines() if "pip install" in line]
    assert installs, dry.stdout
    packages = [line.split(" -e ")[-1] for line in installs if " -e " in line]
    assert packages == ["."], installs
    assert "[dev]" not in dry.stdout and "gos_web_socket.app server" in dry.stdout
