"""The v2 caller side of a session: CALL answered by RESULT or ERROR, and CANCEL.

A CALL goes to the procedure a client registered (invocations.py: INVOCATION to that callee, the
answers come back through ``FrameReply`` without holding the session's queue) or else to the
server's ``RpcHandler``s (app/server/rpc.py), reached through the ``Broker`` shared with v1.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.exceptions import MetaRefused, ProtocolError
from gos_web_socket.app.server.session import Failure, KeywordArguments, Result, call_params
from gos_web_socket.app.server.wamp2.answers import Answers, result_message
from gos_web_socket.app.server.wamp2.calls import FrameReply
from gos_web_socket.app.server.wamp2.codes import (
    CALL,
    INVALID_ARGUMENT,
    OPTION_DISALLOWED_DISCLOSE_ME,
    RESULT,
)
from gos_web_socket.app.server.wamp2.invocations import CANCEL_MODES, DEFAULT_CANCEL_MODE
from gos_web_socket.app.server.wamp2.parsing import (
    Request,
    a_dict,
    a_str,
    an_id,
    arguments,
    flag,
    length,
)
from gos_web_socket.app.server.wamp2.registrations import Registration

if TYPE_CHECKING:
    from gos_web_socket.app.server.broker import Broker
    from gos_web_socket.app.server.wamp2.handshake import Handshake


class Rpc:
    """Calls of one v2 session; answers go through ``Answers``."""

    __slots__ = ("answers", "broker", "handshake")

    def __init__(self, answers: Answers, broker: Broker, handshake: Handshake) -> None:
        self.answers = answers
        self.broker = broker
        self.handshake = handshake

    def call_message(self, message: list[Any]) -> None:
        length(message, 4, 6, "CALL")
        request = Request(CALL, an_id(message[1], "CALL request"))
        options = a_dict(message[2], "CALL options")
        uri = a_str(message[3], "CALL procedure")
        args, kwargs = arguments(message, 4, "CALL")
        timeout = options.get("timeout", 0)
        if type(timeout) is not int or timeout < 0:
            raise ProtocolError(f"CALL option timeout must be milliseconds >= 0, got {timeout!r}")
        flag(options, "receive_progress", False)
        flag(options, "disclose_me", False)
        job = partial(self.call, request, uri, args, kwargs, options)
        self.answers.enqueue(request, job, call=True)

    def cancel_message(self, message: list[Any]) -> None:
        """CANCEL ``[49, call request, {mode}]``, in order after its CALL."""
        length(message, 3, 3, "CANCEL")
        request = an_id(message[1], "CANCEL request")
        mode = a_dict(message[2], "CANCEL options").get("mode", DEFAULT_CANCEL_MODE)
        if mode not in CANCEL_MODES:
            raise ProtocolError(f"CANCEL mode {mode!r}: allowed {', '.join(CANCEL_MODES)}")
        self.answers.connection.enqueue(partial(self.cancel, request, mode))

    async def cancel(self, request: int, mode: str) -> None:
        """Cancel this session's call ``request`` (invocations.py: what each mode does)."""
        self.broker.dealer.invocations.cancel(self.answers.connection.session_id, request, mode)

    async def call(
        self,
        request: Request,
        uri: str,
        args: list[Any],
        kwargs: dict[str, Any],
        options: dict[str, Any],
    ) -> None:
        answers = self.answers
        if self.broker.meta.serves(uri):
            await self.meta_call(request, uri, args)
            return
        target = self.broker.procedures.procedure(answers.connection, uri)
        if isinstance(target, Registration):
            self.invoke(request, uri, target, (args, kwargs), options)
            return
        if isinstance(target, Failure):
            answers.failed(request, target)
            return
        if args and kwargs:
            desc = "call with either arguments or keyword arguments"
            answers.error(request, INVALID_ARGUMENT, desc)
            return
        params: Any = KeywordArguments(kwargs) if kwargs else call_params(args)
        outcome = await self.broker.call(answers.connection, uri, params)
        if isinstance(outcome, Result):
            answers.acknowledge(request, result_message(request.id, outcome.value))
        else:
            answers.failed(request, outcome)

    async def meta_call(self, request: Request, uri: str, args: list[Any]) -> None:
        """A meta API procedure (meta.py): its result is RESULT's one argument."""
        try:
            value = await self.broker.meta.ask(self.answers.connection, uri, args)
        except MetaRefused as exc:
            self.answers.error(request, exc.uri, str(exc))
            return
        self.answers.acknowledge(request, [RESULT, request.id, {}, [value]])

    def invoke(
        self,
        request: Request,
        uri: str,
        registration: Registration,
        arguments: tuple[list[Any], dict[str, Any]],
        options: dict[str, Any],
    ) -> None:
        """INVOCATION of a client procedure: arguments pass through unchanged, both kinds."""
        timeout: int = options.get("timeout", 0)  # checked by call_message
        pattern = registration.terms.match != "exact"
        details: dict[str, Any] = {"procedure": uri} if pattern else {}
        if flag(options, "receive_progress", False) and registration.callee.progresses:
            details["receive_progress"] = True
        if options.get("disclose_me") or registration.terms.disclose_caller:
            if not self.broker.procedures.discloses(registration.uri):
                desc = f"the route of {registration.uri} does not disclose callers"
                self.answers.error(request, OPTION_DISALLOWED_DISCLOSE_ME, desc)
                return
            handshake = self.handshake
            details["caller"] = int(self.answers.connection.session_id)
            details["caller_authid"] = handshake.authid
            details["caller_authrole"] = handshake.authrole
        session = self.answers.connection.session_id
        reply = FrameReply(self.answers, request)
        invocations = self.broker.dealer.invocations
        invocations.call(registration, session, request.id, arguments, details, reply, timeout)
