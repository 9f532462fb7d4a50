"""The v2 broker role of a session: SUBSCRIBE, UNSUBSCRIBE, PUBLISH and the ``_recover`` replay.

Each verb goes to the ``Broker`` shared with v1; this module only parses and answers in v2.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.exceptions import MetaRefused
from gos_web_socket.app.history import Recovery
from gos_web_socket.app.server.session import Failure, KeywordArguments, new_publication_id
from gos_web_socket.app.server.wamp2.answers import Answers
from gos_web_socket.app.server.wamp2.audience import Listing, identity
from gos_web_socket.app.server.wamp2.codes import (
    EVENT,
    INVALID_ARGUMENT,
    INVALID_URI,
    NO_SUCH_SUBSCRIPTION,
    OPTION_DISALLOWED_DISCLOSE_ME,
    PUBLISH,
    PUBLISHED,
    RECOVERY,
    SUBSCRIBE,
    SUBSCRIBED,
    UNSUBSCRIBE,
    UNSUBSCRIBED,
)
from gos_web_socket.app.server.wamp2.matching import MATCHES
from gos_web_socket.app.server.wamp2.parsing import (
    Request,
    a_dict,
    a_str,
    an_id,
    arguments,
    flag,
    length,
    recover_option,
    session_ids,
)

if TYPE_CHECKING:
    from gos_web_socket.app.position import Position
    from gos_web_socket.app.server.broker import Broker
    from gos_web_socket.app.server.topic import Topic


class PubSub:
    """Subscriptions and publications of one v2 session; answers go through ``Answers``."""

    __slots__ = ("answers", "broker")

    def __init__(self, answers: Answers, broker: Broker) -> None:
        self.answers = answers
        self.broker = broker

    # -- messages (parsed at once, run in order by the connection's worker) --------------------

    def subscribe_message(self, message: list[Any]) -> None:
        length(message, 4, 4, "SUBSCRIBE")
        request = Request(SUBSCRIBE, an_id(message[1], "SUBSCRIBE request"))
        options = a_dict(message[2], "SUBSCRIBE options")
        uri = a_str(message[3], "SUBSCRIBE topic")
        match = options.get("match", "exact")
        if match == "exact" and self.broker.meta.serves(uri):
            self.answers.enqueue(request, partial(self.subscribe_meta, request, uri))
            return
        if match != "exact":
            self.answers.enqueue(request, partial(self.subscribe_pattern, request, uri, match))
            return
        recover = recover_option(options)
        self.answers.enqueue(request, partial(self.subscribe, request, uri, recover))

    def unsubscribe_message(self, message: list[Any]) -> None:
        length(message, 3, 3, "UNSUBSCRIBE")
        request = Request(UNSUBSCRIBE, an_id(message[1], "UNSUBSCRIBE request"))
        subscription = an_id(message[2], "UNSUBSCRIBE subscription")
        self.answers.enqueue(request, partial(self.unsubscribe, request, subscription))

    def publish_message(self, message: list[Any]) -> None:
        length(message, 4, 6, "PUBLISH")
        request_id = an_id(message[1], "PUBLISH request")
        options = a_dict(message[2], "PUBLISH options")
        uri = a_str(message[3], "PUBLISH topic")
        args, kwargs = arguments(message, 4, "PUBLISH")
        acknowledge = flag(options, "acknowledge", False)
        exclude = session_ids(options, "exclude") or []
        eligible = session_ids(options, "eligible") or []
        if flag(options, "exclude_me", True):
            exclude.append(self.answers.connection.session_id)
        listing = Listing.parse(options)
        disclose = flag(options, "disclose_me", False)
        request = Request(PUBLISH, request_id, answer_errors=acknowledge)
        audience = (exclude, eligible, listing)
        job = partial(self.publish, request, uri, args, kwargs, audience, acknowledge, disclose)
        self.answers.enqueue(request, job)

    # -- requests -----------------------------------------------------------------------------

    async def subscribe(
        self, request: Request, uri: str, recover: tuple[bool, Position | None] = (False, None)
    ) -> None:
        answers = self.answers
        connection = answers.connection
        held: list[Topic] = []

        def accepted(topic: Topic) -> None:  # SUBSCRIBED goes before what on_subscribe sends
            if request.answered:
                return
            answers.acknowledge(request, [SUBSCRIBED, request.id, topic.subscription_id])
            if recover[0]:  # pushes wait until the recovery is written (``_recover``)
                topic.hold(connection)
                held.append(topic)

        outcome = await self.broker.subscribe(connection, uri, accepted)
        if isinstance(outcome, Failure):
            answers.failed(request, outcome)
        else:  # subscribed before, or no handler for the route: subscribed all the same
            accepted(outcome)
        for topic in held:
            await self.recover(topic, recover[1])

    async def subscribe_pattern(self, request: Request, pattern: str, match: Any) -> None:
        """SUBSCRIBE ``match: prefix | wildcard`` (patterns.py); no ``_recover`` there."""
        if match not in MATCHES:
            desc = f"SUBSCRIBE match {match!r}: allowed {', '.join(MATCHES)}"
            self.answers.error(request, INVALID_ARGUMENT, desc)
            return
        subscription, _ = self.broker.pattern_verbs.subscribe(
            self.answers.connection, match, pattern
        )
        self.answers.acknowledge(request, [SUBSCRIBED, request.id, subscription.id])

    async def subscribe_meta(self, request: Request, uri: str) -> None:
        """SUBSCRIBE to a meta API topic (``wamp.session.on_join`` ...: meta.py)."""
        answers = self.answers
        try:
            subscription = self.broker.meta.subscribe(answers.connection, answers.send, uri)
        except MetaRefused as exc:
            answers.error(request, exc.uri, str(exc))
            return
        answers.acknowledge(request, [SUBSCRIBED, request.id, subscription])

    async def recover(self, topic: Topic, since: Position | None) -> None:
        """Replay what was missed since ``since``, then say how that went (``_recovery``),
        then what was broadcast while the recovery was prepared.

        The EVENTs carry their ``_position``; the report has no arguments and details
        ``{"_recovery": {"recovered", "position", "replayed"}}``: ``recovered`` false means
        that pushes were missed which the history no longer has (reload your state).
        """
        connection = self.answers.connection
        try:
            recovery = await self.broker.history.recover(topic, since)
            # Held until the replay is written, at the pace the client reads it: a long one
            # is neither held in memory at once nor a backlog that cuts the client off.
            await connection.write_paced(topic.replay(connection, recovery))
        finally:
            meanwhile = topic.release(connection)
        if not topic.has(connection):
            return  # it left meanwhile (closed, or its on_subscribe failed)
        if meanwhile is None:  # the client was held so long that broadcasts were dropped
            recovery = Recovery(recovery.publications, False, recovery.position)
            meanwhile = []
        report = recovery.as_dict(with_publications=False)
        report["replayed"] = len(recovery.publications)
        self.answers.send([EVENT, topic.subscription_id, new_publication_id(), {RECOVERY: report}])
        reached = recovery.position
        for position, frame in meanwhile:
            replayed = (
                position is not None
                and reached is not None
                and position.epoch == reached.epoch
                and position.offset <= reached.offset
            )
            if not replayed:  # those the replay had are not sent twice
                connection.write_frame(frame)

    async def unsubscribe(self, request: Request, subscription: int) -> None:
        answers = self.answers
        joined = answers.connection.subscriptions.items()
        uri = next((uri for uri, (t, _) in joined if t.subscription_id == subscription), None)
        session_id = answers.connection.session_id
        if uri is None and (
            self.broker.pattern_verbs.unsubscribe(answers.connection, subscription)
            or self.broker.meta.topics.unsubscribe(session_id, subscription)
        ):
            answers.acknowledge(request, [UNSUBSCRIBED, request.id])
            return
        if uri is None:
            answers.error(request, NO_SUCH_SUBSCRIPTION, f"no subscription {subscription}")
            return
        accepted = partial(answers.acknowledge, request, [UNSUBSCRIBED, request.id])
        failure = await self.broker.unsubscribe(answers.connection, uri, accepted)
        if failure is not None:
            answers.failed(request, failure)
        accepted()

    async def publish(
        self,
        request: Request,
        uri: str,
        args: list[Any],
        kwargs: dict[str, Any],
        audience: tuple[list[str], list[str], Listing | None],
        acknowledge: bool,
        disclose: bool = False,
    ) -> None:
        """``audience``: the ``exclude`` and ``eligible`` session ids and the authid/authrole
        lists (audience.py), applied when the hook broadcasts (``PatternVerbs.narrow``);
        ``disclose``: name the publisher in the EVENTs (unless the route says
        ``disclose_publisher: false``)."""
        answers = self.answers
        connection = answers.connection
        if self.broker.meta.serves(uri):
            desc = f"{uri} is the router's meta API: clients cannot publish to it"
            answers.error(request, INVALID_URI, desc)
            return
        if args and kwargs:
            desc = "publish either arguments or keyword arguments"
            answers.error(request, INVALID_ARGUMENT, desc)
            return
        disclosed = None
        if disclose:
            if not self.broker.procedures.discloses(uri, "publisher"):
                desc = f"the route of {uri} does not disclose publishers"
                answers.error(request, OPTION_DISALLOWED_DISCLOSE_ME, desc)
                return
            authid, authrole = identity(connection.user, connection.session_id)
            disclosed = {
                "publisher": int(connection.session_id),
                "publisher_authid": authid,
                "publisher_authrole": authrole,
            }
        exclude, eligible, listing = audience
        event: Any = KeywordArguments(kwargs) if kwargs else _one(args)
        failure = await self.broker.publish(
            connection, uri, event, exclude, eligible, disclosed, listing
        )
        if failure is not None:
            answers.failed(request, failure)
        elif acknowledge:
            answers.acknowledge(request, [PUBLISHED, request.id, new_publication_id()])


def _one(args: list[Any]) -> Any:
    """The event of positional arguments: the one argument, the list of several, or None."""
    return args[0] if len(args) == 1 else args or None
