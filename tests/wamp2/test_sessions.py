"""The subprotocol picks each connection's session; connections of one format share its encoder."""

from __future__ import annotations

import pytest

from gos_web_socket.app.server import Wamp1Session, Wamp2Session, WampConnection, WampServer
from gos_web_socket.app.server.wamp1 import Wamp1Format
from gos_web_socket.app.server.wamp2.serializers import MsgpackSerializer
from gos_web_socket.app.testing import RawPeer, WampTestClient
from tests.support.server import url_of
from tests.support.waiting import eventually


def connection_of(server: WampServer, session_id: str) -> WampConnection:
    return next(c for c in server.live_connections if c.session_id == session_id)


@pytest.mark.parametrize("offered", [("wamp",), (), ("wamp.2.cbor", "wamp")])
async def test_v1_clients_get_a_wamp1_session(
    demo_server: WampServer, offered: tuple[str, ...]
) -> None:
    """``wamp``, no subprotocol, or only unknown ones before ``wamp``: a Wamp1Session."""
    first = await WampTestClient.connect(url_of(demo_server), subprotocols=offered)
    second = await WampTestClient.connect(url_of(demo_server), subprotocols=offered)
    try:
        one, two = (
            connection_of(demo_server, first.session_id),
            connection_of(demo_server, second.session_id),
        )
        assert isinstance(one.session, Wamp1Session) and isinstance(two.session, Wamp1Session)
        assert isinstance(one.wire_format, Wamp1Format)
        assert one.wire_format is two.wire_format  # one encoder per server and format
    finally:
        await first.close()
        await second.close()


async def test_v2_client_gets_the_first_format_it_offered(demo_server: WampServer) -> None:
    """The client's order decides: msgpack before json before v1 gives a msgpack Wamp2Session."""
    offered = ("wamp.2.cbor", "wamp.2.msgpack", "wamp.2.json", "wamp")
    peers = [await RawPeer.connect(url_of(demo_server), offered) for _ in range(2)]
    try:
        assert [peer.subprotocol for peer in peers] == ["wamp.2.msgpack"] * 2
        await eventually(lambda: demo_server.connections == 2, what="both peers open")
        one, two = demo_server.live_connections
        assert isinstance(one.session, Wamp2Session) and isinstance(two.session, Wamp2Session)
        assert isinstance(one.wire_format, MsgpackSerializer)
        assert one.wire_format is two.wire_format
    finally:
        for peer in peers:
            peer.close()
            await peer.wait_closed()
