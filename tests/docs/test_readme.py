"""Every code block of README.md, docs/install.md and docs/guide.md runs, or is a copy of a
file that runs. The README's blocks moved to the two pages with their checks.

How a block is checked, by what precedes it and its language tag:

- after ``<!-- from PATH -->``: a copy of PATH, whose own tests run it. The parts between
  lines ``...`` are each, dedented, a run of PATH's lines in order.
- ``text``: output or a diagram; nothing to run.
- ``yaml``: loaded, a ``gos_web_socket:`` tree by the settings loader (so validated), anything
  else as a routing file by the route loader.
- ``console``: each ``$ command`` runs in bash in the checkout; what it prints must be the lines
  that follow it (``...`` matches anything).
- ``python``, ``sh``, ``js``: run by a test below that finds the block by a line of it, in a
  subprocess (Chromium for js), against a real server on free ports wherever a block pushes or
  connects. Only the environment is rewritten: ``127.0.0.1:1337`` becomes the test server's
  port, ``.venv/bin/`` the venv running the tests, ``/path/to/gos-web-socket`` a copy of the
  checkout; ``make X`` runs as ``make -n X`` (the target exists and expands: ``make test``
  from inside the suite would recurse), ``pip install`` with ``--dry-run`` (it must not replace
  the editable install) and ``pytest`` with ``--collect-only``.

``test_every_block_is_checked`` fails on a block that none of these claims.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import sys
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml

from gos_web_socket import containers
from gos_web_socket.app.router import load_routes
from gos_web_socket.settings import load_settings
from gos_web_socket.testing import WampTestClient, make_container, running, url_of
from tests.docs import extending
from tests.integration.test_install import PROJECT_FILES
from tests.support.chromium import launch, require_chromium
from tests.support.rabbitmq import free_port
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = (README, ROOT / "docs" / "install.md", ROOT / "docs" / "guide.md")
"""The pages whose every block is checked here."""
VENV_BIN = Path(sys.executable).parent
CHANNEL = "acme/channel/lobby"
GENERIC = ("text", "yaml", "console")


@dataclass(frozen=True)
class Block:
    path: str
    """The page, relative to the checkout."""
    line: int
    """The line of the opening fence."""
    lang: str
    code: str
    source: str | None
    """PATH of a ``<!-- from PATH -->`` comment right before the block."""

    def __str__(self) -> str:
        return f"{self.path}:{self.line} ({self.lang or 'no language'})"


def readme_blocks(text: str, path: str = "README.md") -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        fence = re.fullmatch(r"```(\S*)\s*", lines[index])
        if fence is None:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        before = [line for line in lines[:index] if line.strip()][-1:]
        source = re.fullmatch(r"<!-- from (\S+) -->", before[0].strip()) if before else None
        code = "".join(line + "\n" for line in lines[index + 1 : end])
        blocks.append(Block(path, index + 1, fence[1], code, source[1] if source else None))
        index = end + 1
    return blocks


BLOCKS = [b for doc in DOCS for b in readme_blocks(doc.read_text(), str(doc.relative_to(ROOT)))]
CLAIMED: set[tuple[str, int]] = set()


def claim(containing: str) -> Block:
    """The one block (not a copy) with ``containing`` in it, marked as run by a test here."""
    found = [b for b in BLOCKS if containing in b.code and b.source is None]
    assert len(found) == 1, f"{len(found)} blocks contain {containing!r}"
    CLAIMED.add((found[0].path, found[0].line))
    return found[0]


MAKE_RUN = claim("make run     # creates .venv")
PUSH_CLI = claim("gos-websocket push acme_topic -p room=lobby")
PIP = claim("pip install /path/to/gos-web-socket")
SETTINGS_NODE = claim("class AcmeSettings(TransportSettings)")
CONTAINER = claim("asyncio.run(main())")
OVERRIDE = claim("with gws.zmq.pusher.override(")
BROWSER = claim("GosSocket.connect(")
USER_PUSH = claim('"acme_user", {"user_id": "42"})')
WAMP2 = claim("from autobahn.asyncio.component import Component")
DEVELOPMENT = claim("make lint        # ruff check")


def test_every_block_is_checked() -> None:
    """Each README block is a copy of a file, a text, YAML or console block, or one that a
    test here runs; none is left without a language tag."""
    claimed = [b for b in BLOCKS if (b.path, b.line) in CLAIMED]
    unchecked = [str(b) for b in BLOCKS if not (b.source or b.lang in GENERIC or b in claimed)]
    assert unchecked == []
    assert [str(b) for b in BLOCKS if not b.lang] == []
    assert len(BLOCKS) > 20


# -- copies ---------------------------------------------------------------------------------


def _is_run_of(part: list[str], lines: list[str], start: int) -> int | None:
    """The index after the first run of ``lines`` from ``start`` equal to ``part`` (dedented)."""
    wanted = textwrap.dedent("\n".join(part))
    for index in range(start, len(lines) - len(part) + 1):
        if textwrap.dedent("\n".join(lines[index : index + len(part)])) == wanted:
            return index + len(part)
    return None


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.source], ids=str)
def test_a_copied_block_is_in_its_file(block: Block) -> None:
    """A block marked ``<!-- from PATH -->`` is PATH's text, part by part, in PATH's order
    (blank lines next to a ``...`` aside)."""
    assert block.source is not None
    lines = (ROOT / block.source).read_text().splitlines()
    parts: list[list[str]] = [[]]
    for line in block.code.splitlines():
        if line.strip() == "...":
            parts.append([])
        else:
            parts[-1].append(line)
    position = 0
    for part in parts:
        while part and not part[0].strip():  # ruff format puts blank lines around `...`
            del part[0]
        while part and not part[-1].strip():
            del part[-1]
        found = _is_run_of(part, lines, position)
        assert found is not None, f"{block}: not in {block.source}:\n" + "\n".join(part)
        position = found


# -- YAML -----------------------------------------------------------------------------------


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "yaml" and not b.source], ids=str)
def test_a_yaml_block_loads(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A settings block loads and validates; a routing block loads as routes."""
    file = tmp_path / "block.yaml"
    file.write_text(block.code)
    tree = yaml.safe_load(block.code)
    if "gos_web_socket" in tree:
        # the authentication block says its secret comes from the environment
        monkeypatch.setenv("GOS_WEB_SOCKET__AUTHENTICATION__PROVIDERS__JWT__SECRET", "s" * 32)
        settings = load_settings(file)
        assert settings.model_dump()  # validated, every key known
    else:
        routes = load_routes(file)
        assert sorted(routes) == sorted(tree)


# -- console transcripts --------------------------------------------------------------------


def block_env(**settings: Any) -> dict[str, str]:
    """The environment a reader has: no GOS_WEB_SOCKET__ variables but ``settings``, the venv
    first on PATH (``python``, ``gos-websocket``, ``pip``), the caller's PYTHONPATH kept."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOS_WEB_SOCKET__")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env |= {f"GOS_WEB_SOCKET__{key}": str(value) for key, value in settings.items()}
    return env


def transcript(code: str) -> list[tuple[str, list[str]]]:
    """``$ command`` (with ``\\`` continuation lines) → the output lines after it."""
    steps: list[tuple[str, list[str]]] = []
    continued = False
    for line in code.splitlines():
        if continued:
            steps[-1] = (steps[-1][0] + "\n" + line, [])
        elif line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
        continued = line.endswith("\\")
    return steps


async def run(
    args: list[str], env: dict[str, str], cwd: Path = ROOT, within: float = 120
) -> tuple[int, str, str]:
    """Run a command to its end: exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        *args, cwd=cwd, env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), within)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "console"], ids=str)
async def test_a_console_block_prints_what_it_shows(block: Block) -> None:
    """Each command of a transcript prints exactly the lines shown after it."""
    for command, expected in transcript(block.code):
        code, out, err = await run(["bash", "-c", command], block_env())
        printed = [line.rstrip() for line in (out + err).splitlines()]
        patterns = [re.escape(line.rstrip()).replace(r"\.\.\.", ".*") for line in expected]
        assert len(printed) == len(patterns), (command, printed)
        for line, pattern in zip(printed, patterns, strict=True):
            assert re.fullmatch(pattern, line), (command, line)
        assert code != 0 if any("error" in line for line in expected) else code == 0


# -- shell and Python blocks ----------------------------------------------------------------


def shell_commands(block: Block, checkout: Path | None = None) -> list[str]:
    """The block's commands as this test runs them (see the module docstring)."""
    commands = []
    for line in block.code.splitlines():
        command = re.sub(r"\s+#.*$", "", line).strip()
        if not command or command.startswith("#"):
            continue
        command = command.replace(".venv/bin/", f"{VENV_BIN}/")
        if checkout is not None:
            command = command.replace("/path/to/gos-web-socket", str(checkout))
        if command.startswith("make "):
            command = "make -n " + command.removeprefix("make ")
        if command.startswith("pip install "):
            command = command.replace("pip install ", "pip install --dry-run --no-deps ", 1)
        if "pytest" in command.split()[0]:
            command += " --collect-only"
        commands.append(command)
    return commands


async def run_shell(block: Block, env: dict[str, str], cwd: Path = ROOT, **kw: Any) -> str:
    """Run each command; all must succeed. Returns what they printed."""
    printed = ""
    for command in shell_commands(block, **kw):
        code, out, err = await run(["bash", "-c", command], env, cwd)
        assert code == 0, f"{command}:\n{out}\n{err}"
        printed += out + err
    return printed


async def run_python(block: Block, env: dict[str, str]) -> str:
    """Run the block as a script: exit 0 and nothing on stderr (no warning, no noise)."""
    code, out, err = await run([sys.executable, "-c", block.code], env, within=60)
    assert (code, err) == (0, ""), f"{block}:\n{out}\n{err}"
    return out


@contextlib.asynccontextmanager
async def lobby_server(
    token: str | None = None, channel: str = CHANNEL, **settings: Any
) -> AsyncIterator[tuple[containers.Container, WampTestClient, dict[str, str]]]:
    """A running server (demo routes, ZeroMQ on a free port), a client subscribed to
    ``channel``, and the environment that points a block's pusher at that server."""
    zmq_port = free_port()
    async with running(pushers={"zmq": {"port": zmq_port}}, **settings) as container:
        url = url_of(container) + (f"?token={token}" if token else "")
        client = await WampTestClient.connect(url)
        client.subscribe(channel)
        assert await client.call("acme/rpc/sum", 1, 2) == [3]  # its SUBSCRIBE is handled by now
        try:
            yield container, client, block_env(PUSHERS__ZMQ__PORT=zmq_port)
        finally:
            await client.close()


async def test_make_targets_of_two_commands_exist() -> None:
    """`make run` and `make test` are targets of the Makefile (dry run)."""
    printed = await run_shell(MAKE_RUN, block_env())
    assert "gos_web_socket.app server" in printed and "pytest" in printed


async def test_the_cli_push_reaches_the_lobby() -> None:
    """The `gos-websocket push ... --pusher zmq` line delivers {"msg": "hi"} to the lobby."""
    async with lobby_server() as (_, client, env):
        await run_shell(PUSH_CLI, env)
        assert await client.next_event(CHANNEL, timeout=10) == {"msg": "hi"}


@pytest.mark.slow  # builds the wheel
async def test_the_install_commands_work_on_a_checkout(tmp_path: Path) -> None:
    """`pip install PATH` resolves and builds the checkout (dry run); `pip wheel` builds the
    wheel, under the one import name."""
    checkout = tmp_path / "gos-web-socket"
    checkout.mkdir()
    for name in PROJECT_FILES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, checkout / name, ignore=shutil.ignore_patterns("__py*"))
        else:
            shutil.copy2(ROOT / name, checkout / name)
    printed = await run_shell(PIP, block_env(), cwd=tmp_path, checkout=checkout)
    assert re.search(r"Would install gos-web-socket-\S+", printed), printed
    (wheel,) = (tmp_path / "dist").iterdir()
    assert re.fullmatch(r"gos_web_socket-[^-]+-py3-none-any\.whl", wheel.name)


async def test_a_custom_transports_settings_node_reads_its_defaults() -> None:
    """The TransportSettings block runs as pasted and prints the model's default port."""
    assert await run_python(SETTINGS_NODE, block_env()) == "7000\n"


async def test_the_container_example_pushes_and_closes() -> None:
    """The container example, run as a script, pushes to the lobby and exits quietly."""
    async with lobby_server() as (_, client, env):
        await run_python(CONTAINER, env)
        assert await client.next_event(CHANNEL, timeout=10) == {"msg": "hi"}


async def test_the_override_example_records_the_push() -> None:
    """Overriding the ZeroMQ pusher with an InMemoryPusher records the push, no server needed."""
    assert await run_python(OVERRIDE, block_env()) == "['acme/channel/lobby']\n"


async def test_a_push_to_one_user_reaches_that_user() -> None:
    """The acme_user push reaches user 42, authenticated by a JWT, on its private channel."""
    secret = "a-test-secret-of-at-least-32-bytes"
    auth = {"providers": {"jwt": {"enabled": True, "secret": secret, "algorithms": ["HS256"]}}}
    token = jwt.encode({"sub": "42"}, secret, algorithm="HS256")
    async with lobby_server(token, "acme/user/42", authentication=auth) as (_, client, env):
        await run_python(USER_PUSH, env)
        assert await client.next_event("acme/user/42", timeout=10) == {"msg": "hi 42"}


async def test_the_wamp2_component_calls_and_receives_a_push() -> None:
    """The autobahn Component prints the sum's result, then a push to the lobby."""
    async with running(pushers={"zmq": {"port": free_port()}}) as container:
        code = WAMP2.code.replace("127.0.0.1:1337", url_of(container).split("//")[1].rstrip("/"))
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-u", "-c", code, env=block_env(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        assert process.stdout is not None
        try:
            printed: list[str] = []

            async def line_with(text: str, within: float) -> None:
                async def read() -> None:
                    while (line := (await process.stdout.readline()).decode()).strip() != text:
                        assert line, f"the component ended: {printed}"
                        printed.append(line)

                try:
                    await asyncio.wait_for(read(), within)
                except TimeoutError:
                    raise AssertionError(f"no {text!r} within {within} s: {printed}") from None

            await line_with("6", 20)  # it subscribed before it called
            pusher = containers.get_service(container, "gos_web_socket.zmq.pusher")
            await pusher.push({"msg": "v2"}, "acme_topic", {"room": "lobby"})
            await line_with("push: {'msg': 'v2'}", 10)
        finally:
            process.kill()
            await process.wait()


@pytest.mark.browser
async def test_the_browser_snippet_connects_calls_and_receives() -> None:
    """The ES-module snippet, run in Chromium from the server's page, logs the RPC result 3
    and the event it published to the lobby."""
    require_chromium()
    from playwright.async_api import async_playwright

    http_port = free_port()
    server = {"http": {"enabled": True, "port": http_port}}
    async with running(server=server) as container, async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            page = await browser.new_page()
            logged: list[list[Any]] = []

            async def on_console(message: Any) -> None:
                logged.append([await arg.json_value() for arg in message.args])

            page.on("console", on_console)
            await page.goto(f"http://127.0.0.1:{http_port}/gos-websocket.js")
            code = BROWSER.code.replace("ws://127.0.0.1:1337/", url_of(container))
            await page.add_script_tag(type="module", content=code)
            await eventually(
                lambda: [3] in logged and [CHANNEL, {"msg": "hi"}] in logged,
                10,
                lambda: f"3 and the push logged; logged: {logged}",
                every=0.05,
            )
        finally:
            await browser.close()


async def test_the_development_commands_exist() -> None:
    """`make test` and `make lint` are targets (dry run); the one-part pytest line collects."""
    printed = await run_shell(DEVELOPMENT, block_env())
    assert "ruff check" in printed and re.search(r"\d+ tests? collected", printed)


# -- the file the topic, RPC and extension blocks are copied from ---------------------------


async def test_the_extension_example_serves_its_topic_rpc_transport_and_listener() -> None:
    """tests/docs/extending.py (two README blocks are its text): ChatTopic greets a subscriber,
    ClockRpc answers now, a push through the line transport reaches the room, and a push the
    route's callback cannot take reaches the push_fail listener."""
    container = make_container(config=Path(extending.__file__).with_name("extending.yaml"))
    extending.extend(container, free_port())
    extending.FAILED.clear()
    async with containers.get_service(container, "gos_web_socket.runtime"):
        client = await WampTestClient.connect(url_of(container))
        client.subscribe("acme/chat/lobby")
        assert await client.next_event("acme/chat/lobby") == {"joined": client.session_id}
        answer = await client.call("acme/clock/now")  # a mapping comes back as it is
        assert isinstance(answer["now"], float)
        lines = containers.get_service(container, "gos_web_socket.pusher_registry")["lines"]
        await lines.push({"hi": 1}, "acme_chat", {"room": "lobby"})
        assert await client.next_event("acme/chat/lobby", timeout=5) == {"hi": 1}
        await lines.push({"hi": 2}, "acme_clock", {"method": "now"})  # an RPC: no on_push
        await eventually(lambda: extending.FAILED, 5, "a push_fail", every=0.01)
        await client.close()


def test_no_block_imports_what_only_the_checkout_has() -> None:
    """Issue 30 item 5: a reader's project has no `tests` or `bench` package, so no Python
    block (a copy or not) imports from them."""
    imports = re.compile(r"^\s*(from|import)\s+(tests|bench)\b", re.MULTILINE)
    offending = [str(b) for b in BLOCKS if b.lang == "python" and imports.search(b.code)]
    assert offending == []
