"""The browser client as an npm package: packed, type-checked, bundled by esbuild and loaded as
a plain <script> in Debian's Chromium against a real server."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from gos_web_socket.app.demo import AcmeRpc, AcmeTopic
from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.exceptions import InvalidPayload
from gos_web_socket.app.message import Message
from gos_web_socket.app.router import Router, load_routes
from gos_web_socket.app.server import WampServer
from gos_web_socket.app.transports.memory import InMemoryServerPushHandler
from gos_web_socket.settings.models import DEFAULT_ROUTING
from tests.catalogue.test_catalogue import NODE_MODULES, node_tool, tsc
from tests.support.server import running_server, url_of
from tests.unit.test_cli import run

ROOT = Path(__file__).resolve().parents[2]
CHAT = "acme/chat/lobby"
pytestmark = pytest.mark.npm

MAIN = """\
import { GosSocket, type DisconnectEvent } from "gos-websocket-client";
import type { PayloadOf } from "./channels";

type Chat = PayloadOf<"acme_chat">;
declare global {
  interface Window {
    received: Chat[];
    start(url: string): Promise<string>;
  }
}

window.received = [];
window.start = (url) =>
  new Promise((resolve) => {
    const socket = GosSocket.connect(url, { maxRetries: 0 });
    socket.on("socket/connect", () => {
      socket.subscribeToChannel<Chat>("acme/chat/lobby", (_uri, message) => {
        window.received.push(message);
      });
      // The call's answer comes after the subscription was handled, on the same connection.
      socket.rpcCall<number>("acme/rpc/sum", [2, 3]).then((sum) => {
        resolve(`${socket.protocol}:${sum}`);
      });
    });
    // @ts-expect-error: socket/connect hands over the socket, not a DisconnectEvent
    socket.on("socket/connect", (event: DisconnectEvent) => event.code);
  });
"""

PLAIN = """\
<!doctype html>
<html><head>
<script src="node_modules/gos-websocket-client/dist/gos-websocket.global.js"></script>
<script>
  window.received = [];
  window.start = (url) => new Promise((resolve) => {
    const socket = WS.connect(url, { maxRetries: 0 });  // GOS's global
    socket.on("socket/connect", () => {
      socket.subscribeToChannel("acme/chat/lobby", (uri, message) => window.received.push(message));
      socket.rpcCall("acme/rpc/sum", [2, 3]).then((sum) => resolve(
        `${socket.protocol}:${sum}:${socket instanceof GosWebSocket.GosSocket}`));
    });
  });
</script>
</head><body></body></html>
"""


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`npm pack` of clients/js (its prepack builds dist/ from app/static), in a copy of the
    tree so the checkout stays clean."""
    node_tool("esbuild")
    tree = tmp_path_factory.mktemp("tree")
    shutil.copytree(ROOT / "clients" / "js", tree / "clients" / "js", ignore=ignore_built)
    (tree / "app" / "static").mkdir(parents=True)
    for name in ("gos-websocket.js", "gos-websocket.d.ts"):
        shutil.copy(ROOT / "app" / "static" / name, tree / "app" / "static" / name)
    out = tree / "out"
    out.mkdir()
    result = subprocess.run(
        ["npm", "pack", "--pack-destination", str(out)],
        cwd=tree / "clients" / "js",
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (packed,) = out.glob("gos-websocket-client-*.tgz")
    return packed


def ignore_built(folder: str, names: list[str]) -> list[str]:
    return [name for name in names if name in ("dist", "node_modules") or name.endswith(".tgz")]


@pytest.fixture(scope="module")
def site(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A front-end project with the package installed from the tarball and the catalogue's
    channels.d.ts beside its code."""
    site = tmp_path_factory.mktemp("site")
    installed = site / "node_modules" / "gos-websocket-client"
    with tarfile.open(tarball) as archive:
        archive.extractall(site / "unpacked", filter="data")
    shutil.move(site / "unpacked" / "package", installed)
    result = run("catalogue", "--out", str(site / "catalogue"))
    assert result.returncode == 0, result.stderr
    shutil.copy(site / "catalogue" / "channels.d.ts", site / "channels.d.ts")
    (site / "main.ts").write_text(MAIN)
    (site / "program.ts").write_text(MAIN)  # what tsc() compiles
    (site / "plain.html").write_text(PLAIN)
    (site / "bundled.html").write_text('<!doctype html><script src="bundle.js"></script>\n')
    return site


def test_the_package_holds_the_module_the_script_and_the_types(tarball: Path) -> None:
    """The tarball has the ES module (the served file, byte for byte), its declarations and
    the plain-script build; package.json points at each."""
    with tarfile.open(tarball) as archive:
        names = sorted(archive.getnames())
        module = archive.extractfile("package/dist/gos-websocket.js")
        assert module is not None
        assert module.read() == (ROOT / "app" / "static" / "gos-websocket.js").read_bytes()
    assert names == [
        "package/README.md",
        "package/dist/gos-websocket.d.ts",
        "package/dist/gos-websocket.global.js",
        "package/dist/gos-websocket.js",
        "package/package.json",
    ]


def test_typescript_checks_a_page_using_the_package_and_the_catalogue(site: Path) -> None:
    """tsc --strict resolves the package's types through its exports and the catalogue's
    channel types; the @ts-expect-error line proves the event map is typed."""
    result = tsc(site)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A page of the test's Chromium (tests/browser/conftest.py), closed after the test."""
    opened = await browser.new_page()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def server() -> AsyncIterator[WampServer]:
    """The demo server with an in-memory push handler, to push from the test."""
    memory = InMemoryServerPushHandler(Router(load_routes(DEFAULT_ROUTING)), EventDispatcher())
    async with running_server(
        topics=[AcmeTopic()], rpcs=[AcmeRpc()], push_handlers={"memory": memory}
    ) as server:
        yield server


async def receive_pushes(page: Page, server: WampServer, html: Path) -> list[object]:
    """Load ``html``, connect, then push a bad and a good chat message: what the page got."""
    await page.goto(html.as_uri())
    joined = await page.evaluate("(url) => window.start(url)", url_of(server))
    memory = server.push_handlers["memory"]
    assert isinstance(memory, InMemoryServerPushHandler)
    with pytest.raises(InvalidPayload, match="does not fit ChatMessage"):
        await memory.feed(Message(CHAT, {"author": "bad"}).encode())  # refused, not broadcast
    await memory.feed(Message(CHAT, {"author": "ann", "text": "hello"}).encode())
    await page.wait_for_function("() => window.received.length > 0", timeout=10_000)
    received: list[object] = await page.evaluate("() => window.received")
    return [joined, *received]


@pytest.fixture(scope="module")
def bundled(site: Path) -> Path:
    """The TypeScript page bundled by esbuild with the installed package: its HTML page."""
    result = subprocess.run(
        [*node_tool("esbuild"), "main.ts", "--bundle", "--format=iife", "--outfile=bundle.js"],
        cwd=site,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return site / "bundled.html"


async def test_bundled_by_esbuild_in_chromium(
    bundled: Path, page: Page, server: WampServer
) -> None:
    """esbuild bundles the TypeScript page with the installed package; in Chromium it joins
    over WAMP v2, calls, and receives the typed push (the bad one never arrives)."""
    got = await receive_pushes(page, server, bundled)
    assert got == ["wamp.2.json:5", {"author": "ann", "text": "hello", "sent_at": None}]


async def test_plain_script_in_chromium(site: Path, page: Page, server: WampServer) -> None:
    """The plain <script> build defines GOS's WS and GosWebSocket; the page joins, calls and
    receives the push."""
    got = await receive_pushes(page, server, site / "plain.html")
    assert got == ["wamp.2.json:5:true", {"author": "ann", "text": "hello", "sent_at": None}]
