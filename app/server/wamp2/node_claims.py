"""This node's procedures across nodes (``server.dealer.across_nodes``, nodes.py): the claim
window of each REGISTER, the (match, URI)s the node holds, and giving one back.

A REGISTER claims its URI and waits ``claim_window`` seconds: a node holding the URI objects
(``taken``); two nodes claiming at once both yield to the smaller node id. Two nodes found to
hold one URI all the same keep it at the smaller id (``contest``). ``NodeLink`` (nodes.py) hands
in how to publish to the other nodes, how to tell the relay, and what the other nodes hold.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gos_web_socket.app.server.wamp2.relay import with_match

if TYPE_CHECKING:
    from gos_web_socket.app.server.wamp2.dealer import Key
    from gos_web_socket.settings.dealer import DealerSettings

logger = logging.getLogger(f"{__package__}.nodes")  # the dealer nodes' lines: one name

__all__ = ["EVERYONE", "Claim", "NodeClaims", "about"]

EVERYONE = "all"
"""The routing key every node's queue is bound with (a message to all nodes)."""

Publish = Callable[[str, dict[str, Any]], None]
"""Sends a message to one node, or to ``EVERYONE``."""
Tell = Callable[[dict[str, Any]], None]
"""Hands a message to this node's relay."""


def about(op: str, key: Key) -> dict[str, Any]:
    """A message ``op`` naming (match, URI) ``key`` (``match`` only for a pattern)."""
    return with_match({"op": op, "uri": key[1]}, key[0])


class Claim:
    """One claim in its window; ``released``: the URI was released meanwhile (its callee
    left), so the claim ends without holding it."""

    __slots__ = ("future", "released")

    def __init__(self, future: asyncio.Future[bool]) -> None:
        self.future = future
        self.released = False

    def lose(self) -> None:
        """Another node holds the URI, or claimed it too with a smaller id."""
        if not self.future.done():
            self.future.set_result(False)


class NodeClaims:
    """The (match, URI)s this node holds or claims (``node``: its id; ``others``: the
    (match, URI)s each other node holds, kept by ``NodeLink``)."""

    def __init__(
        self,
        node: str,
        settings: DealerSettings,
        others: dict[str, set[Key]],
        publish: Publish,
        tell: Tell,
    ) -> None:
        self.node = node
        self.settings = settings
        self.others = others
        self.held: set[Key] = set()
        """The (match, URI)s this node holds."""
        self.claiming: set[asyncio.Task[None]] = set()
        """The claims running (held until done: the loop keeps weak references only)."""
        self._claims: dict[Key, list[Claim]] = {}
        """Claims in their window, by URI (several REGISTERs of one URI may overlap)."""
        self._publish = publish
        self._tell = tell

    def claim(self, key: Key) -> None:
        """Claim ``key`` in a task of its own; the relay is told ``claimed`` when it ends."""
        task = asyncio.get_running_loop().create_task(self._claim(key))
        self.claiming.add(task)
        task.add_done_callback(self.claiming.discard)

    def release(self, key: Key) -> None:
        """This node no longer serves (match, URI) ``key``: given back if held; claims of it
        in their window end without holding it (a callee that left while its REGISTER was
        claimed)."""
        for claim in self._claims.get(key, ()):
            claim.released = True
        if key in self.held:
            self.held.discard(key)
            self._publish(EVERYONE, about("released", key))

    async def _claim(self, key: Key) -> None:
        """Claim ``key``: ours unless another node objects within ``claim_window``."""
        ok = not any(key in keys for keys in self.others.values())
        if ok:
            claim = Claim(asyncio.get_running_loop().create_future())
            self._claims.setdefault(key, []).append(claim)
            self._publish(EVERYONE, about("claim", key))
            try:
                ok = await asyncio.wait_for(
                    asyncio.shield(claim.future), self.settings.claim_window
                )
            except TimeoutError:
                ok = True
            finally:
                self._end_claim(key, claim)
            if ok and claim.released:
                self._publish(EVERYONE, about("released", key))
                ok = False
        if ok:
            self.held.add(key)
            self._publish(EVERYONE, about("held", key))
        self._tell(about("claimed", key) | {"ok": ok})

    def _end_claim(self, key: Key, claim: Claim) -> None:
        claims = self._claims.get(key, [])
        if claim in claims:
            claims.remove(claim)
        if not claims:
            self._claims.pop(key, None)

    def answer(self, source: str, key: Key) -> None:
        """Node ``source`` claims ``key``: object when this node holds it, or claims it too
        with the smaller id; yield when it claims it too with a smaller id."""
        claiming = self._claims.get(key, [])
        if key in self.held or (claiming and self.node < source):
            self._publish(source, about("taken", key))
        else:
            for claim in claiming:
                claim.lose()

    def lose(self, key: Key) -> None:
        """Another node objected to this node's claims of ``key``."""
        for claim in self._claims.get(key, []):
            claim.lose()

    def contest(self, source: str, key: Key) -> None:
        """``source`` holds (match, URI) ``key`` and so does this node (an objection lost or
        late, a false expiry): the smaller node id keeps it; the other revokes its callees'
        registrations (relay.py, ``on_revoked``) and publishes ``released``."""
        if key in self.held and source < self.node:
            logger.warning("dealer node %s: %s is held by %s too: given up", self.node, key, source)
            self.release(key)
            self._tell(about("revoked", key))
