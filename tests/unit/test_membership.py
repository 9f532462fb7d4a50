"""Node liveness (app/server/membership.py) as the dealer's node link applies it: one lease
rule with presence between nodes (tests/presence/test_partition.py covers presence's side)."""

from __future__ import annotations

from typing import Any

from gos_web_socket.app.server.wamp2.nodes import NodeLink
from gos_web_socket.settings.dealer import DealerSettings
from gos_web_socket.settings.models import AmqpSettings

TIMEOUT = 10.0


class Relay:
    """Stands for the relay: what the link told it."""

    def __init__(self) -> None:
        self.told: list[dict[str, Any]] = []

    def received(self, message: dict[str, Any]) -> None:
        self.told.append(message)


def linked_to_peer() -> tuple[NodeLink, Relay]:
    """A node link (not started: nothing leaves) that heard peer ``p`` hold ``com.acme.x``."""
    link = NodeLink(DealerSettings(across_nodes=True, node_timeout=TIMEOUT), AmqpSettings())
    relay = Relay()
    link.attach(relay)
    link.received({"op": "beat", "uris": ["com.acme.x"], "from": "p"})
    link.expire_silent()  # the first tick: nobody is silent yet
    assert "p" in link.live and link.uris == {"p": {("exact", "com.acme.x")}}
    return link, relay


async def test_a_silent_node_is_gone_with_its_procedures() -> None:
    """A peer not heard for node_timeout is gone: its URI is released and its calls end."""
    link, relay = linked_to_peer()
    link.live.seen["p"] -= TIMEOUT + 1
    link.expire_silent()
    assert "p" not in link.live and link.uris == {}
    assert {"op": "released", "uri": "com.acme.x"} in relay.told
    assert {"op": "gone", "worker": "p"} in relay.told


async def test_a_stalled_loop_renews_leases_instead_of_expiring() -> None:
    """When this node's own loop stood still past node_timeout, its silence was its own: the
    peer keeps its lease and its procedures (as presence between nodes does)."""
    link, relay = linked_to_peer()
    link.live.seen["p"] -= TIMEOUT + 1
    assert link.live.last_tick is not None
    link.live.last_tick -= TIMEOUT + 1
    link.expire_silent()
    assert "p" in link.live and link.uris == {"p": {("exact", "com.acme.x")}}
    assert not any(m["op"] in ("released", "gone") for m in relay.told)
    link.expire_silent()  # the next tick, in time: still live
    assert "p" in link.live
