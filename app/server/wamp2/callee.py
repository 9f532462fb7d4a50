"""The v2 callee role of a session: REGISTER, UNREGISTER, and the YIELD or ERROR of an INVOCATION.

REGISTER and UNREGISTER run in order with the session's other requests (a CALL right after its
REGISTER finds the procedure); YIELD and ERROR go to the dealer at once. The role is also the
``CalleeEnd`` the dealer sends INVOCATION and INTERRUPT through.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.exceptions import ProtocolError
from gos_web_socket.app.server.wamp2.codes import (
    INVALID_ARGUMENT,
    NO_SUCH_REGISTRATION,
    PROCEDURE_ALREADY_EXISTS,
    REGISTER,
    REGISTERED,
    UNREGISTER,
    UNREGISTERED,
    error_uri,
)
from gos_web_socket.app.server.wamp2.parsing import (
    Request,
    a_dict,
    a_str,
    an_id,
    arguments,
    flag,
    length,
)
from gos_web_socket.app.server.wamp2.registrations import MATCHES, POLICIES, Terms

if TYPE_CHECKING:
    from gos_web_socket.app.server.broker import Broker
    from gos_web_socket.app.server.wamp2.answers import Answers
    from gos_web_socket.app.server.wamp2.handshake import Handshake

_ALLOWED = {"match": MATCHES, "invoke": POLICIES}
"""REGISTER options and the values this dealer implements."""


class Callee:
    """Procedures one v2 session serves; answers go through ``Answers``."""

    __slots__ = ("answers", "broker", "handshake")

    def __init__(self, answers: Answers, broker: Broker, handshake: Handshake) -> None:
        self.answers = answers
        self.broker = broker
        self.handshake = handshake

    # -- the dealer's view (CalleeEnd) --------------------------------------------------------

    @property
    def session_id(self) -> str:
        return self.answers.connection.session_id

    @property
    def cancels(self) -> bool:
        return self.handshake.feature("callee", "call_canceling")

    @property
    def progresses(self) -> bool:
        return self.handshake.feature("callee", "progressive_call_results")

    @property
    def revokes(self) -> bool:
        """UNREGISTERED may tell it a registration is gone (relay.py, ``on_revoked``)."""
        return self.handshake.feature("callee", "registration_revocation")

    def send(self, message: list[Any]) -> bool:
        return self.answers.send(message)

    # -- messages ----------------------------------------------------------------------------

    def register_message(self, message: list[Any]) -> None:
        length(message, 4, 4, "REGISTER")
        request = Request(REGISTER, an_id(message[1], "REGISTER request"))
        options = a_dict(message[2], "REGISTER options")
        uri = a_str(message[3], "REGISTER procedure")
        self.answers.enqueue(request, partial(self.register, request, uri, options))

    def unregister_message(self, message: list[Any]) -> None:
        length(message, 3, 3, "UNREGISTER")
        request = Request(UNREGISTER, an_id(message[1], "UNREGISTER request"))
        registration = an_id(message[2], "UNREGISTER registration")
        self.answers.enqueue(request, partial(self.unregister, request, registration))

    def yield_message(self, message: list[Any]) -> None:
        """YIELD ``[70, invocation, options, args?, kwargs?]``; ``options.progress``."""
        length(message, 3, 5, "YIELD")
        invocation = an_id(message[1], "YIELD request")
        progress = flag(a_dict(message[2], "YIELD options"), "progress", False)
        args, kwargs = arguments(message, 3, "YIELD")
        if self.broker.dealer.invocations.yielded(
            self.session_id, invocation, args, kwargs, progress
        ):
            if not progress:  # a progressive flood counts (and max_progressive_results)
                self.answers.connection.answered()

    def error_message(self, message: list[Any]) -> None:
        """ERROR ``[8, 68, invocation, details, uri, args?, kwargs?]`` from the callee."""
        length(message, 5, 7, "ERROR")
        invocation = an_id(message[2], "ERROR request")
        a_dict(message[3], "ERROR details")
        uri = a_str(message[4], "ERROR uri")
        args, kwargs = arguments(message, 5, "ERROR")
        if self.broker.dealer.invocations.failed(self.session_id, invocation, uri, args, kwargs):
            self.answers.connection.answered()

    # -- requests (run in order by the connection's worker) -----------------------------------

    async def register(self, request: Request, uri: str, options: dict[str, Any]) -> None:
        answers = self.answers
        for key, allowed in _ALLOWED.items():
            if options.get(key, allowed[0]) not in allowed:
                desc = f"REGISTER option {key}={options[key]!r}: this router allows {allowed}"
                answers.error(request, INVALID_ARGUMENT, desc)
                return
        failure = self.broker.procedures.registrable(answers.connection, uri)
        if failure is not None:
            kind = PROCEDURE_ALREADY_EXISTS if failure.code == 409 else error_uri(failure, REGISTER)
            answers.error(request, kind, failure.desc)
            return
        limit = answers.connection.limits.max_registrations
        match, invoke = options.get("match", "exact"), options.get("invoke", "single")
        terms = Terms(match, invoke, flag(options, "disclose_caller", False))
        registration = await self.broker.dealer.register(self, uri, limit, terms)
        if isinstance(registration, str):
            held = "already" if registration == PROCEDURE_ALREADY_EXISTS else "with another invoke"
            answers.error(request, registration, f"{uri} is registered {held}")
            return
        answers.acknowledge(request, [REGISTERED, request.id, registration.id])

    async def unregister(self, request: Request, registration_id: int) -> None:
        dealer = self.broker.dealer
        if dealer.unregister(self.session_id, registration_id) is None:
            desc = f"no registration {registration_id} of this session"
            self.answers.error(request, NO_SUCH_REGISTRATION, desc)
            return
        self.answers.acknowledge(request, [UNREGISTERED, request.id])


def not_an_invocation_error(message: list[Any]) -> ProtocolError:
    """A client's ERROR answers INVOCATION only (type 68)."""
    return ProtocolError(f"a client ERROR must answer an INVOCATION (68), not {message[1:2]}")
