"""The hub with ``server.workers: 2``: SSE subscribers on every worker get every push and every
HTTP publish with one event id, a ``Last-Event-ID`` taken on one worker replays on the other,
and a publish fires ``push_success`` once."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import yaml

from gos_web_socket.app.events import PUSH_FAIL, PUSH_SUCCESS
from gos_web_socket.app.sse import workers
from gos_web_socket.app.sse.wire import parse_position
from gos_web_socket.app.sse.workers import ParentPublishes, WorkerPublishes
from tests.sse.conftest import (
    HUB,
    PUBLISHER,
    SECRET,
    SseReader,
    hub_server,
    publish,
    subscribed,
    subscribed_at,
)
from tests.support.process import ServerProcess, setting
from tests.support.rabbitmq import RabbitMQNode
from tests.support.waiting import eventually
from tests.workers.conftest import health, pushers, until_ready, workers_env

CHANNEL = "acme/channel/7"
ROUTES = {
    "acme_topic": {
        "pattern": "acme/channel/{room}",
        "callback": "acme.topic",
        "history": {"size": 1000},
    },
}


def config_file(directory: Path, mercure: dict[str, Any] | None = None) -> Path:
    """A gos_web_socket.yaml: the demo topic on a route with history, the JWT provider, and
    the ``mercure`` settings given."""
    routing = directory / "routing.yaml"
    routing.write_text(yaml.safe_dump(ROUTES))
    tree = {
        "server": {"router": {"resources": [str(routing)]}},
        "authentication": {"providers": {"jwt": {"enabled": True, "secret": SECRET}}},
        "mercure": mercure or {},
    }
    config = directory / "gos_web_socket.yaml"
    config.write_text(yaml.safe_dump({"gos_web_socket": tree}))
    return config


@pytest.fixture
async def pool(rabbitmq: RabbitMQNode, tmp_path: Path) -> AsyncIterator[ServerProcess]:
    """Two workers with the hub, ZeroMQ through the parent's fan-out, AMQP per worker."""
    env = workers_env(rabbitmq)
    server = await ServerProcess(env, "--config", str(config_file(tmp_path))).start()
    try:
        await until_ready(server)
        yield server
    finally:
        await server.stop()


def port_of(server: ServerProcess) -> int:
    return int(setting(server.env, "SERVER__PORT"))


async def connections(server: ServerProcess) -> dict[str, int]:
    """Connections per worker, as the parent's /health tells them."""
    _, body = await health(server)
    return {name: w["server"]["connections"] for name, w in body["workers"].items()}


class Spread:
    """SSE readers opened one at a time, each with the worker it landed on (the worker whose
    connection count went up on /health)."""

    def __init__(self, server: ServerProcess, stack: contextlib.AsyncExitStack) -> None:
        self.server = server
        self.stack = stack
        self.readers: dict[str, list[SseReader]] = {}

    async def open(
        self, query: str, headers: dict[str, str] | None = None
    ) -> tuple[str, SseReader]:
        before = await connections(self.server)
        reader = await self.stack.enter_async_context(
            subscribed_at(port_of(self.server), query, headers)
        )
        after = await connections(self.server)
        (worker,) = [name for name in after if after[name] > before.get(name, 0)]
        self.readers.setdefault(worker, []).append(reader)
        return worker, reader

    async def on_every_worker(self, query: str, each: int = 2) -> None:
        """Open readers until every worker has ``each`` of them (40 at most)."""
        for _ in range(40):
            counts = await connections(self.server)
            if len(counts) == 2 and all(len(self.readers.get(w, [])) >= each for w in counts):
                return
            await self.open(query)
        raise AssertionError(f"readers did not spread over the workers: {self.readers.keys()}")

    async def on(self, worker: str, query: str, headers: dict[str, str]) -> SseReader:
        """A reader that landed on ``worker`` (the others opened meanwhile stay open)."""
        for _ in range(40):
            landed, reader = await self.open(query, headers)
            if landed == worker:
                return reader
        raise AssertionError(f"no connection landed on {worker}")

    def all(self) -> list[SseReader]:
        return [reader for readers in self.readers.values() for reader in readers]


async def test_pushes_reach_sse_readers_on_both_workers_with_one_id(
    pool: ServerProcess,
) -> None:
    """ZeroMQ and AMQP pushes reach SSE readers on both workers; a ZeroMQ push has the same
    event id on both (the parent's fan-out numbers it); a Last-Event-ID taken on worker A
    replays what followed, in order and complete, on worker B."""
    zmq, amqp = pushers(pool)
    async with contextlib.AsyncExitStack() as stack:
        spread = Spread(pool, stack)
        await spread.on_every_worker(f"topic={CHANNEL}")
        await amqp.push({"n": 0}, "acme_topic", {"room": "7"})
        for reader in spread.all():  # AMQP (per_node): each worker numbers it in its own log
            (event,) = await reader.wait(1, timeout=20)
            assert json.loads(event.data) == {"n": 0}
        for n in range(1, 6):
            await zmq.push({"n": n}, "acme_topic", {"room": "7"})
        got = [(await reader.wait(6, timeout=20))[1:] for reader in spread.all()]
        for events in got:
            assert [json.loads(e.data)["n"] for e in events] == [1, 2, 3, 4, 5]
        zmq_ids = {tuple(e.id for e in events) for events in got}
        assert len(zmq_ids) == 1, zmq_ids  # the same ids on every reader of every worker
        (ids,) = zmq_ids
        assert all(parse_position(i or "") is not None for i in ids)

        cursor = ids[1]  # the ZeroMQ push n=2, seen on every worker
        for n in range(6, 9):
            await zmq.push({"n": n}, "acme_topic", {"room": "7"})
        for worker in spread.readers:
            again = await spread.on(worker, f"topic={CHANNEL}", {"Last-Event-ID": cursor})
            assert again.response.headers["last-event-id"] == cursor, worker
            events = await again.wait(6, timeout=20)
            assert [json.loads(e.data)["n"] for e in events] == [3, 4, 5, 6, 7, 8], worker
            assert [e.id for e in events[:3]] == list(ids[2:]), worker
            assert again.events[6:] == [], worker  # nothing twice
    await zmq.disconnect()
    await amqp.disconnect()


async def test_publishes_taken_by_any_worker_reach_readers_on_every_worker(
    pool: ServerProcess,
) -> None:
    """Form publishes, each on a new connection (the kernel spreads them over the
    workers), reach SSE readers on both workers with the id the publish answered; a
    publisher-given id used as Last-Event-ID replays the later ones on either worker."""
    port = port_of(pool)
    async with contextlib.AsyncExitStack() as stack:
        spread = Spread(pool, stack)
        await spread.on_every_worker(f"topic={CHANNEL}")
        answered = []
        for n in range(8):
            async with httpx.AsyncClient(timeout=10.0) as client:
                answer = await client.post(
                    f"http://127.0.0.1:{port}{HUB}",
                    content=urlencode(
                        [("topic", CHANNEL), ("data", f"u{n}")] + ([("id", "given-4")] * (n == 4))
                    ),
                    headers={
                        "Authorization": f"Bearer {PUBLISHER}",
                        "Content-Type": "application/x-www-form-urlencoded",
                    },
                )
            assert answer.status_code == 200, answer.text
            answered.append(answer.text)
        assert len(set(answered)) == 8 and answered[4] == "given-4"
        assert all(parse_position(i) for i in answered[:4] + answered[5:])
        for reader in spread.all():
            events = await reader.wait(8, timeout=20)
            assert [(e.id, e.data) for e in events] == [
                (i, f"u{n}") for n, i in enumerate(answered)
            ]
        for worker in spread.readers:
            cursor = {"Last-Event-ID": answered[4]}
            again = await spread.on(worker, f"topic={CHANNEL}", cursor)
            assert again.response.headers["last-event-id"] == answered[4], worker
            events = await again.wait(3, timeout=20)
            assert [e.id for e in events] == answered[5:], worker
        seen = {id(reader): len(reader.events) for reader in spread.all()}
        big = "x" * 300_000  # longer than a default line of the parent's link
        async with httpx.AsyncClient(timeout=10.0) as client:
            answer = await client.post(
                f"http://127.0.0.1:{port}{HUB}",
                content=urlencode([("topic", CHANNEL), ("data", big)]),
                headers={
                    "Authorization": f"Bearer {PUBLISHER}",
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
        assert answer.status_code == 200, answer.text
        for reader in spread.all():
            events = await reader.wait(seen[id(reader)] + 1, timeout=20)
            assert (events[-1].id, events[-1].data) == (answer.text, big)


async def test_a_publish_fires_push_success_once_across_workers() -> None:
    """Two servers linked as two workers are (a parent numbering each publish): a form publish
    on A and a JSON API push on B reach the SSE readers of both with one id each, and
    push_success fires once per publish, on the server that took it."""
    key = "k" * 32
    async with hub_server({"api_keys": [key]}) as a, hub_server({"api_keys": [key]}) as b:
        servers = [a, b]
        successes = [0, 0]
        for index, server in enumerate(servers):

            def counted(event: object, index: int = index) -> None:
                successes[index] += 1

            server.dispatcher.add_listener(PUSH_SUCCESS, counted)
        ends: list[WorkerPublishes] = []

        def forward(index: int, line: dict[str, Any]) -> None:
            ends[index].received(json.loads(json.dumps(line)))  # as over the socket pair

        parent = ParentPublishes(forward, 2)
        for index, server in enumerate(servers):

            def send_up(message: dict[str, Any], index: int = index) -> None:
                parent.received(index, json.loads(json.dumps(message)))

            publisher = server.http.publisher  # type: ignore[union-attr]
            ends.append(WorkerPublishes(publisher, send_up, index))
            publisher.peers = ends[index]
        async with (
            subscribed(a, f"topic={CHANNEL}") as on_a,
            subscribed(b, f"topic={CHANNEL}") as on_b,
        ):
            form = await publish(a, [("topic", CHANNEL), ("data", "form")])
            assert form.status_code == 200, form.text
            async with httpx.AsyncClient(timeout=10.0) as client:
                api = await client.post(
                    f"http://127.0.0.1:{b.port}/api/publish",
                    json={"route": "acme_topic", "parameters": {"room": "7"}, "data": {"x": 1}},
                    headers={"X-API-Key": key},
                )
            assert api.status_code == 200, api.text
            for reader in (on_a, on_b):
                events = await reader.wait(2)
                assert [(e.id, e.data) for e in events] == [
                    (form.text, "form"),
                    (api.json()["id"], '{"x":1}'),
                ]
        assert api.json()["position"]["offset"] == parse_position(form.text).offset + 1  # type: ignore[union-attr]
        assert successes == [1, 1]


async def test_a_last_event_id_replays_publishes_between_zeromq_pushes(
    pool: ServerProcess,
) -> None:
    """A channel fed by a ZeroMQ push, an HTTP publish and a ZeroMQ push in turn: a
    Last-Event-ID taken on the first push replays the publish and the second push, on the
    worker it was taken on (one log in the parent numbers both, so the channel's history is
    not started afresh at each source)."""
    zmq, amqp = pushers(pool)
    port = port_of(pool)
    async with contextlib.AsyncExitStack() as stack:
        spread = Spread(pool, stack)
        worker, reader = await spread.open(f"topic={CHANNEL}")
        await zmq.push({"n": 1}, "acme_topic", {"room": "7"})
        (first,) = await reader.wait(1, timeout=20)
        async with httpx.AsyncClient(timeout=10.0) as client:
            answer = await client.post(
                f"http://127.0.0.1:{port}{HUB}",
                content=urlencode([("topic", CHANNEL), ("data", "u2")]),
                headers={
                    "Authorization": f"Bearer {PUBLISHER}",
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
        assert answer.status_code == 200, answer.text
        await reader.wait(2, timeout=20)
        await zmq.push({"n": 3}, "acme_topic", {"room": "7"})
        live = await reader.wait(3, timeout=20)
        again = await spread.on(worker, f"topic={CHANNEL}", {"Last-Event-ID": first.id or ""})
        await again.wait(1, timeout=20)
        with contextlib.suppress(AssertionError):
            await again.wait(2, timeout=5)  # a replay that lost the publish has one event
        assert [(e.id, e.data) for e in again.events] == [(e.id, e.data) for e in live[1:]]
    await zmq.disconnect()
    await amqp.disconnect()


async def test_a_publish_numbered_after_its_timeout_still_fires_its_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A publish the parent numbers only after the worker stopped waiting: the request is
    refused, the update still reaches the readers when the line comes back, and push_success
    then fires on the worker that took it (a listener learns the update went out)."""
    monkeypatch.setattr(workers, "NUMBERED_WITHIN", 0.3)
    async with hub_server() as server, subscribed(server, f"topic={CHANNEL}") as reader:
        events: list[str] = []
        server.dispatcher.add_listener(PUSH_SUCCESS, lambda event: events.append("success"))
        server.dispatcher.add_listener(PUSH_FAIL, lambda event: events.append("fail"))
        loop = asyncio.get_running_loop()
        end: list[WorkerPublishes] = []

        def forward(index: int, line: dict[str, Any]) -> None:
            loop.call_later(1.0, end[index].received, json.loads(json.dumps(line)))  # slow

        parent = ParentPublishes(forward, 1)
        publisher = server.http.publisher  # type: ignore[union-attr]
        end.append(WorkerPublishes(publisher, lambda line: parent.received(0, line), 0))
        publisher.peers = end[0]
        refused = await publish(server, [("topic", CHANNEL), ("data", "late")])
        assert refused.status_code >= 500, refused.text
        (event,) = await reader.wait(1)
        assert event.data == "late"
        await eventually(lambda: events, 2, "a push event", every=0.02)
        assert events == ["success"]
