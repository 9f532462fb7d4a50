"""The meta API's lookups: ``wamp.subscription.*`` and ``wamp.registration.*`` procedures
(meta.py says who may call them and what each client sees)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from gos_web_socket.app.exceptions import MetaRefused
from gos_web_socket.app.server.wamp2.codes import (
    INVALID_ARGUMENT,
    NO_SUCH_REGISTRATION,
    NO_SUCH_SUBSCRIPTION,
)
from gos_web_socket.app.server.wamp2.matching import MATCHES

if TYPE_CHECKING:
    from gos_web_socket.app.auth.authorization import RouteRules
    from gos_web_socket.app.router import Router
    from gos_web_socket.app.server.manager import TopicManager
    from gos_web_socket.app.server.topic import Topic
    from gos_web_socket.app.server.wamp2.dealer import Dealer
    from gos_web_socket.app.server.wamp2.patterns import PatternSubscriptions, Reader
    from gos_web_socket.app.server.wamp2.registrations import Procedure

Procedures = dict[str, Callable[["Reader", list[Any]], Any]]


class Broker(Protocol):
    """What the meta API reads of the broker (broker.py)."""

    router: Router
    rules: RouteRules
    manager: TopicManager
    patterns: PatternSubscriptions
    dealer: Dealer

    def readers(self, uri: str) -> Callable[[Reader], bool] | None: ...


class Meta(Protocol):
    """What the lookups need of the meta API (meta.py ``MetaApi``)."""

    @property
    def broker(self) -> Broker: ...

    @property
    def created(self) -> dict[str, str]: ...

    def sees_channel(self, connection: Reader, channel: str) -> bool: ...

    def sees_procedure(self, connection: Reader, uri: str) -> bool: ...


class Lookups:
    """One family of meta procedures: ``wamp.<KIND>.<name>`` is method ``<KIND>_<name>``."""

    KIND = ""
    NAMES: tuple[str, ...] = ()

    def __init__(self, meta: Meta) -> None:
        self.meta = meta

    def procedures(self) -> Procedures:
        kind = self.KIND
        return {f"wamp.{kind}.{name}": getattr(self, f"{kind}_{name}") for name in self.NAMES}


class SubscriptionLookups(Lookups):
    """``wamp.subscription.list|lookup|match|get|list_subscribers|count_subscribers``."""

    KIND = "subscription"
    NAMES = ("list", "lookup", "match", "get", "list_subscribers", "count_subscribers")

    def _topics(self, connection: Reader) -> list[Topic]:
        topics = self.meta.broker.manager.topics
        return [t for uri, t in topics.items() if self.meta.sees_channel(connection, uri)]

    def subscription_list(self, connection: Reader, args: list[Any]) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {
            "exact": [t.subscription_id for t in self._topics(connection)]
        }
        found["prefix"], found["wildcard"] = [], []
        for subscription in self.meta.broker.patterns:
            if connection.session_id in subscription.members:
                found[subscription.match].append(subscription.id)
        return found

    def subscription_lookup(self, connection: Reader, args: list[Any]) -> int | None:
        uri, match = a_uri(args), a_match(args)
        if match == "exact":
            topic = self.meta.broker.manager.topics.get(uri)
            visible = topic is not None and self.meta.sees_channel(connection, uri)
            return topic.subscription_id if visible and topic is not None else None
        held = self.meta.broker.patterns.lookup(match, uri)
        return held.id if held is not None and connection.session_id in held.members else None

    def subscription_match(self, connection: Reader, args: list[Any]) -> list[int] | None:
        uri = a_uri(args)
        found: list[int] = []
        topic = self.meta.broker.manager.topics.get(uri)
        if topic is not None and self.meta.sees_channel(connection, uri):
            found.append(topic.subscription_id)
        for subscription in self.meta.broker.patterns.matching(uri):
            if connection.session_id in subscription.members:
                found.append(subscription.id)
        return found or None

    def _subscription(
        self, connection: Reader, args: list[Any]
    ) -> tuple[dict[str, Any], list[str]]:
        """(get's details, subscriber session ids) of a visible subscription."""
        wanted = an_id(args)
        for topic in self._topics(connection):
            if topic.subscription_id == wanted:
                details = {
                    "id": wanted,
                    "created": self.meta.created.get(topic.id),
                    "uri": topic.id,
                    "match": "exact",
                }
                return details, [c.session_id for c in topic]
        held = self.meta.broker.patterns.get(wanted)
        if held is None or connection.session_id not in held.members:
            raise MetaRefused(NO_SUCH_SUBSCRIPTION, f"no subscription {wanted}")
        details = {"id": held.id, "created": held.created, "uri": held.pattern, "match": held.match}
        return details, list(held.members)

    def subscription_get(self, connection: Reader, args: list[Any]) -> dict[str, Any]:
        return self._subscription(connection, args)[0]

    def subscription_list_subscribers(self, connection: Reader, args: list[Any]) -> list[int]:
        return [int(s) for s in self._subscription(connection, args)[1]]

    def subscription_count_subscribers(self, connection: Reader, args: list[Any]) -> int:
        return len(self._subscription(connection, args)[1])


class RegistrationLookups(Lookups):
    """``wamp.registration.list|lookup|match|get|list_callees|count_callees``."""

    KIND = "registration"
    NAMES = ("list", "lookup", "match", "get", "list_callees", "count_callees")

    def _visible(self, connection: Reader, procedure: Procedure | None) -> Procedure | None:
        if procedure is None or not procedure.callees:
            return None
        return procedure if self.meta.sees_procedure(connection, procedure.uri) else None

    def registration_list(self, connection: Reader, args: list[Any]) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {match: [] for match in MATCHES}
        for procedure in self.meta.broker.dealer.registrations.procedures():
            if self._visible(connection, procedure) is not None:
                found[procedure.match].append(procedure.id)
        return found

    def registration_lookup(self, connection: Reader, args: list[Any]) -> int | None:
        procedure = self.meta.broker.dealer.registrations.lookup(a_match(args), a_uri(args))
        visible = self._visible(connection, procedure)
        return None if visible is None else visible.id

    def registration_match(self, connection: Reader, args: list[Any]) -> int | None:
        procedure = self.meta.broker.dealer.serving(a_uri(args))  # the call's, over workers
        visible = self._visible(connection, procedure)
        return None if visible is None else visible.id

    def _registration(self, connection: Reader, args: list[Any]) -> Procedure:
        """The procedure of a registration id: its own id or any of its callees'."""
        wanted = an_id(args)
        procedure = self.meta.broker.dealer.registrations.procedure_of(wanted)
        visible = self._visible(connection, procedure)
        if visible is None:
            raise MetaRefused(NO_SUCH_REGISTRATION, f"no registration {wanted}")
        return visible

    def registration_get(self, connection: Reader, args: list[Any]) -> dict[str, Any]:
        return registration_details(self._registration(connection, args))

    def registration_list_callees(self, connection: Reader, args: list[Any]) -> list[int]:
        return [int(r.callee.session_id) for r in self._registration(connection, args).callees]

    def registration_count_callees(self, connection: Reader, args: list[Any]) -> int:
        return len(self._registration(connection, args).callees)


def registration_details(procedure: Procedure) -> dict[str, Any]:
    """``wamp.registration.get`` and ``on_create``'s details (the spec's keys)."""
    return {
        "id": procedure.id,
        "created": procedure.created,
        "uri": procedure.uri,
        "match": procedure.match,
        "invoke": procedure.invoke,
    }


def an_id(args: list[Any]) -> int:
    if not args or type(args[0]) is not int:
        raise MetaRefused(INVALID_ARGUMENT, "the first argument must be an id")
    return args[0]


def a_uri(args: list[Any]) -> str:
    if not args or not isinstance(args[0], str):
        raise MetaRefused(INVALID_ARGUMENT, "the first argument must be a URI")
    return args[0]


def a_match(args: list[Any]) -> str:
    options = args[1] if len(args) > 1 else {}
    match = options.get("match", "exact") if isinstance(options, dict) else None
    if match not in MATCHES:
        raise MetaRefused(INVALID_ARGUMENT, f"options.match: allowed {', '.join(MATCHES)}")
    return str(match)
