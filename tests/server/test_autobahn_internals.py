"""The autobahn internals app/server/connection.py relies on are still there (autobahn is pinned
to one major version; a new one must pass this first). Each failure names the internal."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import autobahn
import pytest
from autobahn.asyncio import websocket as asyncio_websocket
from autobahn.asyncio.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket import protocol as websocket_protocol

from gos_web_socket.app.server import connection
from tests.support.server import running_server

SOURCES = inspect.getsource(websocket_protocol) + inspect.getsource(asyncio_websocket)
SOURCES += inspect.getsource(autobahn.util)

METHODS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "processHandshake": (WebSocketServerProtocol, ()),
    "succeedHandshake": (WebSocketServerProtocol, ("res",)),
    "sendData": (WebSocketServerProtocol, ("data", "sync", "chopsize")),
    "_fail_connection": (WebSocketServerProtocol, ("code", "reason")),
    "sendCloseFrame": (WebSocketServerProtocol, ("code", "reasonUtf8", "isReply")),
    "dropConnection": (WebSocketServerProtocol, ("abort",)),
    "onPing": (WebSocketServerProtocol, ("payload",)),
    "_dataReceived": (WebSocketServerProtocol, ("data",)),
    "consumeData": (WebSocketServerProtocol, ()),
    "processData": (WebSocketServerProtocol, ()),
    "onFrameBegin": (WebSocketServerProtocol, ()),
    "set_valid_events": (WebSocketServerProtocol, ("valid_events",)),
    "connection_made": (WebSocketServerProtocol, ("transport",)),
    "connection_lost": (WebSocketServerProtocol, ("exc",)),
    "data_received": (WebSocketServerProtocol, ("data",)),
    "prepareMessage": (WebSocketServerFactory, ("payload", "isBinary", "doNotCompress")),
    "setProtocolOptions": (WebSocketServerFactory, ()),
}
"""Methods the adapter overrides, shadows or calls with keywords, and the parameters it uses."""

ATTRIBUTES = (
    "data",
    "receive_queue",
    "send_queue",
    "_valid_events",
    "_results",
    "_perMessageCompress",
    "http_request_data",
    "http_response_data",
    "http_status_line",
    "_wskey",
    "websocket_protocols",
    "wasNotCleanReason",
    "payloadHybi",
    "current_frame",
)
"""Instance attributes the adapter reads or writes; autobahn assigns each as ``self.<name>``."""


@pytest.mark.parametrize("name", sorted(METHODS))
def test_each_method_the_adapter_uses_exists_with_its_parameters(name: str) -> None:
    """Each autobahn method the adapter touches exists and takes the parameters it passes."""
    owner, parameters = METHODS[name]
    method: Callable[..., Any] | None = getattr(owner, name, None)
    assert callable(method), f"autobahn {autobahn.__version__}: {owner.__name__}.{name} is gone"
    known = inspect.signature(method).parameters
    missing = [p for p in parameters if p not in known]
    assert not missing, f"autobahn {autobahn.__version__}: {owner.__name__}.{name} lost {missing}"


@pytest.mark.parametrize("name", ATTRIBUTES)
def test_each_attribute_the_adapter_uses_is_still_assigned(name: str) -> None:
    """Autobahn still assigns each internal attribute the adapter reads or overwrites."""
    assignment = re.compile(rf"self\.{name}\b[^=\n(!<>]*=[^=]")
    assert assignment.search(SOURCES), f"autobahn {autobahn.__version__}: self.{name} is gone"


def test_succeed_handshake_sends_the_101_with_send_data() -> None:
    """``send_now`` shares the 101's write only if succeedHandshake writes through sendData."""
    source = inspect.getsource(WebSocketServerProtocol.succeedHandshake)
    assert "self.sendData(" in source, "succeedHandshake no longer writes with self.sendData"


def test_the_protocol_options_and_the_open_state_are_there() -> None:
    """``with_options`` reads CONFIG_ATTRS (every name set on the factory) and the output
    path compares ``state`` with STATE_OPEN."""
    names = WebSocketServerProtocol.CONFIG_ATTRS
    assert names and all(isinstance(n, str) for n in names), "CONFIG_ATTRS is gone"
    assert "maxMessagePayloadSize" in names and "autoPingInterval" in names
    assert isinstance(WebSocketServerProtocol.STATE_OPEN, int), "STATE_OPEN is gone"


def test_the_adapter_docstring_lists_every_internal() -> None:
    """Every internal this test guards is named in the adapter's docstring (one place)."""
    doc = connection.__doc__ or ""
    unlisted = [n for n in (*METHODS, *ATTRIBUTES) if n.startswith("_") and n not in doc]
    assert unlisted == []


def test_consume_data_parses_with_process_data_in_a_loop() -> None:
    """The per-turn budget stops parsing by returning False from processData, which works only
    while consumeData loops over it and each frame goes through onFrameBegin."""
    consume = inspect.getsource(WebSocketServerProtocol.consumeData)
    assert "while self.processData()" in consume, "consumeData no longer loops on processData"
    process = inspect.getsource(WebSocketServerProtocol.processData)
    assert "self.onFrameBegin()" in process, "processData no longer calls onFrameBegin"


async def test_a_server_connection_class_holds_every_option_and_copies_none() -> None:
    """A server's connection class has each of autobahn's options as a class attribute and an
    empty ``CONFIG_ATTRS``, so a new connection copies nothing and formats no option log."""
    async with running_server() as server:
        factory = server.listener.build_factory(server.connection_services(), "127.0.0.1", False)
        cls = factory.protocol
        assert cls.CONFIG_ATTRS == ()
        missing = [n for n in WebSocketServerProtocol.CONFIG_ATTRS if n not in vars(cls)]
        assert missing == []
        assert cls.openHandshakeTimeout == server.settings.server.limits.handshake_timeout
