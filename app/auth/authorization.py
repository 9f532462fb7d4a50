"""Who may subscribe, publish and call, per route, without code (``options.auth`` in routing.yaml).

::

    acme_user:
      pattern: "acme/user/{user_id}"
      callback: "acme.topic"
      options:
        auth:
          subscribe: owner:user_id    # the route parameter user_id must equal the user's id
          publish: nobody

``register`` (a WAMP v2 client registering a procedure, app/server/wamp2/dealer.py) takes the
same rules and defaults to ``authenticated``; the other verbs default to ``anyone``.
A rule is ``anyone`` (the default: what GOS allows today), ``authenticated``, ``nobody``,
``owner`` (parameter ``user_id``) or ``owner:<parameter>``, or ``roles:A,B`` (any of them).
The broker checks the rule before any topic or RPC code runs; ``SecuredTopic.secure()``
stays for everything else. Server pushes (AMQP, ZeroMQ) go to ``on_push`` and no rule applies;
the WAMP pusher publishes as a client, so its token carries ``PUSHER_ROLE``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gos_web_socket.app.auth.user import User
from gos_web_socket.app.exceptions import ConfigurationError
from gos_web_socket.app.router import Router, WampRequest
from gos_web_socket.app.router.route import Route

VERBS = ("subscribe", "publish", "call", "register")
PUSHER_ROLE = "ROLE_GOS_PUSHER"
"""The WAMP pusher's PUBLISH is a push, not a client's: a user holding this role (only a token
signed with your key can give it) passes every ``publish`` rule, ``nobody`` included."""
KINDS = ("anyone", "authenticated", "nobody", "owner", "roles")
OPTION = "auth"


@dataclass(frozen=True, slots=True)
class Rule:
    """One verb's rule; ``argument`` is the owner parameter or the roles."""

    kind: str = "anyone"
    argument: tuple[str, ...] = ()

    def allows(self, user: User, attributes: Mapping[str, Any]) -> bool:
        if self.kind == "anyone":
            return True
        if self.kind == "nobody" or user.is_anonymous:
            return False
        if self.kind == "authenticated":
            return True
        if self.kind == "owner":
            return str(attributes.get(self.argument[0], "")) == user.id
        return user.has_role(*self.argument)

    def __str__(self) -> str:
        return self.kind + (":" + ",".join(self.argument) if self.argument else "")


ANYONE = Rule()
DEFAULTS = {"register": Rule("authenticated")}
"""A verb's rule when the route names none: ``anyone``, but anonymous clients never register
a procedure unless a route allows it."""


def parse_rule(text: Any, where: str, route: Route) -> Rule:
    """``anyone`` / ``authenticated`` / ``nobody`` / ``owner[:param]`` / ``roles:A,B``.

    Raises:
        ConfigurationError: one line naming the route, the verb, the value and what is allowed.
    """
    allowed = "anyone, authenticated, nobody, owner, owner:<parameter>, roles:<A,B>"
    if not isinstance(text, str):
        raise ConfigurationError([f"{where}: {text!r} is not allowed (allowed: {allowed})"])
    kind, _, argument = text.strip().partition(":")
    names = tuple(part.strip() for part in argument.split(",") if part.strip())
    if kind in ("anyone", "authenticated", "nobody") and not argument:
        return Rule(kind)
    if kind == "owner" and len(names) <= 1:
        parameter = names[0] if names else "user_id"
        if parameter not in route.compile().variables:
            variables = ", ".join(route.compile().variables) or "none"
            raise ConfigurationError(
                [
                    f"{where}: owner parameter {parameter!r} is not in pattern {route.pattern!r} "
                    f"(its parameters: {variables})"
                ]
            )
        return Rule("owner", (parameter,))
    if kind == "roles" and names:
        return Rule("roles", names)
    raise ConfigurationError([f"{where}: {text!r} is not allowed (allowed: {allowed})"])


class RouteRules:
    """The rules of every route of a router, read once; refusals counted by verb."""

    def __init__(self, rules: Mapping[str, Mapping[str, Rule]] | None = None) -> None:
        self._rules: dict[str, Mapping[str, Rule]] = dict(rules or {})
        self.refused: Counter[str] = Counter()

    @classmethod
    def from_router(cls, router: Router) -> RouteRules:
        """Read ``options.auth`` of each route.

        Raises:
            ConfigurationError: an unknown verb or rule, an owner parameter not in the pattern.
        """
        rules: dict[str, dict[str, Rule]] = {}
        problems: list[str] = []
        for name, route in router.collection.items():
            node = route.options.get(OPTION)
            if node is None:
                continue
            where = f"route {name} options.{OPTION}"
            if not isinstance(node, Mapping):
                problems.append(f"{where}: must be a mapping of {', '.join(VERBS)} to rules")
                continue
            for verb, text in node.items():
                if verb not in VERBS:
                    problems.append(f"{where}: unknown key {verb} (allowed: {', '.join(VERBS)})")
                    continue
                try:
                    rules.setdefault(name, {})[verb] = parse_rule(text, f"{where}.{verb}", route)
                except ConfigurationError as exc:
                    problems.extend(exc.problems)
        if problems:
            raise ConfigurationError(problems)
        return cls(rules)

    def rule(self, verb: str, route_name: str) -> Rule:
        return self._rules.get(route_name, {}).get(verb) or DEFAULTS.get(verb, ANYONE)

    def allows(self, verb: str, user: User, request: WampRequest) -> bool:
        """Whether ``user`` may ``verb`` on ``request``'s route, counting nothing: a filter
        (the meta API hiding what a reader may not see) is not a refused verb."""
        rule = self.rule(verb, request.route_name)
        return rule.allows(user, request.attributes) or (
            verb == "publish" and user.has_role(PUSHER_ROLE)
        )

    def refusal(self, verb: str, user: User, request: WampRequest) -> Rule | None:
        """The rule that refuses ``user`` to ``verb`` on ``request``'s route (counted in
        ``refused``); None: allowed."""
        if self.allows(verb, user, request):
            return None
        self.refused[verb] += 1
        return self.rule(verb, request.route_name)
