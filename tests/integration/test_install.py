"""A real, non-editable install beside a user's project that has its own `app/` and `settings.py`.

The wheel is built from a copy of the checkout, installed into a fresh venv, and used from a
project whose top-level names are the generic ones our repository uses: theirs must still import,
and ours must come from the venv under `gos_web_socket` alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.process import ServerProcess, server_env, setting

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # a wheel built and installed, with its dependencies, in a new venv
PROJECT_FILES = (
    "pyproject.toml",
    "setup.py",
    "README.md",
    "py.typed",
    "containers.py",
    "push.py",
    "testing.py",
    "app",
    "settings",
)
"""What the wheel is built from (pyproject's package-dir and readme, setup.py's package list),
copied so the build leaves no build/ or egg-info in the checkout."""
GENERIC_NAMES = ("app", "settings", "containers", "containers.py")

THEIR_APP = {
    "app/__init__.py": 'NAME = "their app"\n',
    "app/demo.py": "WHO = 'their demo module'\n",  # the name our own demo package has
    "settings.py": 'ROOM = "lobby"\n',
    "app/notify.py": """\
        '''Their code, pushing with our pusher at the end of a request.'''
        import sys
        from pathlib import Path

        import settings
        from app import NAME
        from app.demo import WHO
        from gos_web_socket import containers

        container = containers.create_container(Path(sys.argv[1]))
        pusher = containers.get_service(container, "gos_web_socket.zmq.pusher")
        pusher.push_sync({"from": NAME, "who": WHO}, "acme_topic", {"room": settings.ROOM})
        pusher.close_sync()
        print("pushed from", NAME)
        """,
}


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, env=_clean_env(), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH: every import must come from the venv or the project's directory."""
    return {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with the wheel installed (not editable)."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "src"
    source.mkdir()
    for name in PROJECT_FILES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    wheels = tmp / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, source, cwd=tmp)
    (wheel,) = wheels.glob("gos_web_socket-*.whl")
    env = tmp / "venv"
    _run(sys.executable, "-m", "venv", env, cwd=tmp)
    _run(env / "bin" / "python", "-m", "pip", "install", "-q", wheel, cwd=tmp)
    yield env


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Their project: its own `app` package (with an `app.demo`) and a `settings.py`."""
    for name, text in THEIR_APP.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


def _site_packages(venv: Path) -> Path:
    (site,) = (venv / "lib").glob("python3.*/site-packages")
    return site


def test_the_wheel_occupies_one_distinctive_name_in_site_packages(venv: Path) -> None:
    """No `app`, `settings` or `containers` at the top of site-packages: only `gos_web_socket`."""
    site = _site_packages(venv)
    assert (site / "gos_web_socket" / "containers.py").is_file()
    assert (site / "gos_web_socket" / "settings" / "gos_web_socket.yaml").is_file()
    assert (site / "gos_web_socket" / "app" / "static" / "gos-websocket.js").is_file()
    assert [name for name in GENERIC_NAMES if (site / name).exists()] == []
    assert (site / "gos_web_socket" / "py.typed").is_file()  # PEP 561 for containers.py too
    top_level = {path.name for path in (site / "gos_web_socket").iterdir()} - {"__pycache__"}
    assert top_level == {"app", "settings", "containers.py", "push.py", "testing.py", "py.typed"}
    (record,) = site.glob("gos_web_socket-*.dist-info/RECORD")
    installed = [line for line in record.read_text().splitlines() if not line.startswith("../")]
    assert {path.split("/", 1)[0].split("-", 1)[0] for path in installed} == {"gos_web_socket"}


def test_console_script_runs_from_a_fresh_venv(venv: Path, tmp_path: Path) -> None:
    """`gos-websocket --help` and `routes` from the installed script, away from the checkout."""
    help_text = _run(venv / "bin" / "gos-websocket", "--help", cwd=tmp_path).stdout
    assert help_text.startswith("usage: gos-websocket")
    assert all(command in help_text for command in ("server", "push", "routes", "config"))
    routes = _run(venv / "bin" / "gos-websocket", "routes", cwd=tmp_path).stdout
    assert "acme_topic" in routes  # the shipped settings and routing YAML were installed


async def test_a_project_with_its_own_app_and_settings_pushes_to_a_running_server(
    venv: Path, project: Path
) -> None:
    """Their `app`, `app.demo` and `settings` import beside ours; their push reaches a client."""
    python = venv / "bin" / "python"
    names = _run(python, "-c", "import app, app.demo, settings; print(app.NAME, settings.ROOM)",
                 cwd=project)  # fmt: skip
    assert names.stdout.split() == ["their", "app", "lobby"]

    env = {key: value for key, value in server_env().items() if key != "PYTHONPATH"}
    config = project / "realtime.yaml"
    zmq_port = setting(env, "PUSHERS__ZMQ__PORT")
    node = f"{{host: 127.0.0.1, port: {zmq_port}}}"
    config.write_text(f"gos_web_socket:\n  pushers:\n    zmq: {node}\n")
    server = ServerProcess(
        env, "--config", str(config), cwd=project, program=[str(venv / "bin" / "gos-websocket")]
    )
    await server.start()
    try:
        client = await server.subscriber("acme/channel/lobby")
        pushed = _run(python, "-m", "app.notify", config, cwd=project)
        assert pushed.stdout.strip() == "pushed from their app"
        data = await client.next_event("acme/channel/lobby", timeout=10)
        assert data == {"from": "their app", "who": "their demo module"}
        await client.close()
    finally:
        await server.stop()
    assert "Traceback" not in server.output, server.output
