"""The WAMP v2 test peers now ship in the package for users' tests (app.testing.wamp2)."""

from gos_web_socket.app.testing.wamp2 import JoinFailed, RawPeer, V2Client

__all__ = ["JoinFailed", "RawPeer", "V2Client"]
