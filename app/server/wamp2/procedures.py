"""One procedure namespace for the server's RPC handlers and the procedures clients register.

A route whose callback is a server RPC handler is the server's: no client registers there,
and a client's prefix or wildcard pattern covering it does not take its calls. What a call or
a REGISTER may do is decided here; the dealer (dealer.py) then routes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gos_web_socket.app.exceptions import NotAuthorized, ResourceNotFound
from gos_web_socket.app.server.dispatch import rpc_failure
from gos_web_socket.app.server.session import Failure
from gos_web_socket.app.server.wamp2.meta import MetaApi

if TYPE_CHECKING:
    from gos_web_socket.app.router import WampRequest
    from gos_web_socket.app.server.connection import WampConnection
    from gos_web_socket.app.server.dispatch import RpcDispatcher
    from gos_web_socket.app.server.verb_gate import VerbGate
    from gos_web_socket.app.server.wamp2.dealer import Dealer
    from gos_web_socket.app.server.wamp2.registrations import Registration


class Procedures:
    """Which procedure a call reaches, and who may register which URI."""

    def __init__(self, gate: VerbGate, rpcs: RpcDispatcher, dealer: Dealer) -> None:
        self.gate = gate
        self.rpcs = rpcs
        self.dealer = dealer

    def procedure(self, connection: WampConnection, uri: str) -> Registration | Failure | None:
        """The client registration a CALL of ``uri`` goes to, once the route's ``call`` rule
        allowed it; None: the server's own procedures answer (``Broker.call``)."""
        try:
            request = self.gate.router.match(uri)
        except ResourceNotFound:
            return None  # Broker.call answers no_such_procedure
        registration = self.client_procedure(request)
        if registration is None:
            return None
        refused = self.gate.refused("call", connection, request)
        if refused is not None:
            return rpc_failure(uri, refused, 403, None, NotAuthorized(refused))
        return registration

    def client_procedure(self, request: WampRequest) -> Registration | None:
        """The client registration serving the matched URI; a route of a server RPC handler
        is the server's even when a client's prefix or wildcard pattern covers it."""
        if request.route.callback in self.rpcs.handlers:
            return None
        return self.dealer.procedure(request.matched)

    def discloses(self, uri: str, role: str = "caller") -> bool:
        """Whether a call of ``uri`` may name its caller to the callee (``role`` publisher:
        a PUBLISH its publisher to subscribers): yes, unless the route says
        ``options.disclose_caller: false`` (``disclose_publisher: false``). No route: yes
        (the verb itself fails on it)."""
        try:
            options = self.gate.router.match(uri).route.options
        except ResourceNotFound:
            return True
        return options.get(f"disclose_{role}", True) is not False

    def registrable(self, connection: WampConnection, uri: str) -> Failure | None:
        """Why ``connection`` may not register ``uri``; None: it may.

        No route is an invalid URI; then the route's ``register`` rule (default
        ``authenticated``); then one namespace: a URI whose route names a server RPC handler
        is the server's (code 409, procedure_already_exists), never a client's.
        """
        if MetaApi.serves(uri):  # the router's own namespace
            return Failure(uri, f"{uri} is reserved for the meta API", {}, no_route=True)
        request = self.gate.allowed("register", connection, uri)
        if isinstance(request, Failure):
            return request
        callback = request.route.callback
        if callback in self.rpcs.handlers:
            route = request.route_name
            desc = f"{uri} is served by the server's RPC handler {callback!r} (route {route})"
            return Failure(uri, desc, {"code": 409})
        return None
