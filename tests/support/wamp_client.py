"""The WAMP v1 test client now ships in the package for users' tests (app.testing.wamp1)."""

from gos_web_socket.app.testing.wamp1 import CallError, ConnectFailed, WampTestClient

__all__ = ["CallError", "ConnectFailed", "WampTestClient"]
