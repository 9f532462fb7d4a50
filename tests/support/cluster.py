"""A private three-node RabbitMQ cluster on loopback for the ``cluster`` tests (issue #29).

Each node is a ``RabbitMQNode``: its own node name (``gostest<port>@localhost``), AMQP and
distribution ports, data dir and config, under its own temp dir, with no system-wide config.
What a cluster needs them to share: one epmd (its port) and one Erlang cookie (written into
each node's ``HOME``, which is where both the node and ``rabbitmqctl`` read it). Nodes 2 and 3
join node 1 with ``stop_app``, ``reset``, ``join_cluster``, ``start_app`` (RabbitMQ 3.10).
"""

from __future__ import annotations

import secrets
import subprocess
from concurrent.futures import ThreadPoolExecutor

from tests.support.ports import free_port
from tests.support.rabbitmq import BrokerSetupError, RabbitMQNode


class RabbitMQCluster:
    """Three clustered nodes; ``nodes`` in start order, node 1 the seed."""

    def __init__(self, size: int = 3) -> None:
        epmd_port = free_port()
        cookie = secrets.token_hex(20).upper()
        self.nodes = [RabbitMQNode() for _ in range(size)]
        for node in self.nodes:
            node.epmd_port = epmd_port
            path = node.dir / ".erlang.cookie"
            path.write_text(cookie)
            path.chmod(0o600)

    @property
    def addresses(self) -> list[str]:
        """``host:port`` of every node, as ``pushers.amqp.nodes`` takes them."""
        return [f"127.0.0.1:{node.port}" for node in self.nodes]

    def start(self) -> None:
        """Start every node at once, then join nodes 2.. to node 1 and check the cluster."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda node: node.start(timeout=180), self.nodes))
        seed = self.nodes[0].nodename
        for node in self.nodes[1:]:
            for step in (("stop_app",), ("reset",), ("join_cluster", seed), ("start_app",)):
                self._ctl(node, *step)
        status = self._ctl(self.nodes[0], "cluster_status").stdout
        missing = [node.nodename for node in self.nodes if node.nodename not in status]
        if missing:
            raise BrokerSetupError(f"nodes {missing} did not join the cluster: {status}")

    def _ctl(self, node: RabbitMQNode, *args: str) -> subprocess.CompletedProcess[str]:
        done = node.ctl(*args, timeout=120)
        if done.returncode != 0:
            raise BrokerSetupError(f"rabbitmqctl {' '.join(args)} on {node.nodename}: {done}")
        return done

    def leader_of(self, queue: str) -> RabbitMQNode:
        """The node holding the quorum queue's (or stream's) leader."""
        out = self._ctl(
            self.nodes[0], "list_queues", "-q", "--no-table-headers", "name", "leader"
        ).stdout
        for line in out.splitlines():
            fields = line.split()
            if len(fields) == 2 and fields[0] == queue:
                return next(node for node in self.nodes if node.nodename == fields[1])
        raise LookupError(f"queue {queue!r} has no leader listed: {out!r}")

    def queue_names(self) -> list[str]:
        """Every queue (and stream) the cluster holds, as the first running node lists them."""
        for node in self.nodes:
            done = node.ctl("list_queues", "-q", "--no-table-headers", "name", timeout=60)
            if done.returncode == 0:
                return done.stdout.split()
        raise BrokerSetupError("no node answered list_queues")

    def restart(self, node: RabbitMQNode) -> None:
        """Stop the node's Erlang VM (``rabbitmqctl shutdown``, as an upgrade does) and start it
        again; it keeps its data and rejoins the cluster. The shared epmd stays up."""
        self._ctl(node, "shutdown")
        node.kill()  # reaps the exited process and its watchdog; start() makes new ones
        node.start(timeout=180)

    def stop(self) -> None:
        """Stop every node (the last one also stops the shared epmd)."""
        for node in reversed(self.nodes):
            node.stop()
