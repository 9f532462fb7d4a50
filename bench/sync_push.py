"""``push()`` from synchronous code, each call returning once the broker confirmed the message.

* ours: ``AmqpPusher.push_sync()`` (a private loop thread carries the aio-pika connection);
  also in ``confirm_mode: background`` (``background_*``): each call returns once the push is
  handed to that loop, at most ``max_in_flight`` (1,000) unconfirmed, and the clock stops
  when ``flush_sync()`` has every confirm (``background_pushes_per_s``; the calls alone:
  ``background_calls_per_s``; with transient messages: ``background_transient_pushes_per_s``);
* raw: pika ``BlockingConnection`` with ``confirm_delivery()``, one ``basic_publish`` per push
  (persistent, mandatory), the plain blocking client the way ours publishes;
* python-socketio: ``KombuManager(write_only=True)`` ``emit()``, its sync external emitter, with
  kombu's ``confirm_publish`` transport option so every emit waits for the broker's ack; also
  as shipped, without it (``no_confirm_pushes_per_s``): emit waits for no ack at all.

Each runs in its own process, in a worker thread, sequentially: one push, one confirm. Ours and
raw publish persistent messages to a durable queue, so the broker writes them to disk before it
confirms; python-socketio's queues are transient. The raw row therefore also measures pika on a
transient queue (``transient_pushes_per_s``), which shows what durability costs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from bench.agent import Agent
from bench.wire import ROOM, ROUTE, data, envelope


class SyncPusher(Agent):
    def __init__(self, system: str, amqp_url: str, pids: dict[str, int] | None = None) -> None:
        self.system = system
        self.amqp_url = amqp_url
        self.pids = {name: pid for name, pid in (pids or {}).items() if pid}
        """Other processes whose CPU per push is reported: the system's server, the broker."""

    def _cpu_of_others(self) -> dict[str, float]:
        import psutil

        out = {}
        for name, pid in self.pids.items():
            times = psutil.Process(pid).cpu_times()
            out[name] = float(times.user + times.system + times.children_user)
        return out

    async def do_run(self, count: int) -> dict[str, Any]:
        return await asyncio.to_thread(self._run, count)

    def _run(self, count: int) -> dict[str, Any]:
        result = self._measure(getattr(self, "_" + self.system), count)
        if self.system == "ours":  # the same pusher without waiting for each confirm
            background = self._measure(self._ours_background, count * 5)
            result |= {f"background_{key}": value for key, value in background.items()}
            # ... with transient messages, as python-socketio's queue holds them: the broker
            # confirms without writing them to disk
            transient = self._measure(lambda: self._ours_background(persistent=False), count * 5)
            result["background_transient_pushes_per_s"] = transient["pushes_per_s"]
            result["background_transient_broker_cpu_us_per_push"] = transient.get(
                "broker_cpu_us_per_push"
            )
        if self.system == "sio":  # python-socketio's default: no publisher confirms
            no_confirm = self._measure(lambda: self._sio(confirm=False), count * 5)
            result["no_confirm_pushes_per_s"] = no_confirm["pushes_per_s"]
            result |= {f"no_confirm_{k}": v for k, v in no_confirm.items() if "cpu" in k}
        if self.system == "raw":  # the same client on a transient queue: the cost of durability
            transient = self._measure(self._raw_transient, count)
            result["transient_pushes_per_s"] = transient["pushes_per_s"]
        return result

    def _measure(self, make: Callable[[], Any], count: int) -> dict[str, Any]:
        """``make()`` gives ``push(seq)``, ``close()`` and optionally ``settle()``: the clock
        runs from the first push until ``settle()`` returned (every confirm is in)."""
        push, close, *rest = make()
        settle = rest[0] if rest else lambda: None
        try:
            for i in range(5):  # connect and declare outside the clock
                push(-1 - i)
            settle()
            others0 = self._cpu_of_others()
            cpu0, t0 = time.process_time(), time.perf_counter()
            for i in range(count):
                push(i)
            calls = time.perf_counter() - t0
            settle()
            seconds = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            others = {k: v - others0[k] for k, v in self._cpu_of_others().items()}
        finally:
            close()
        return {
            "pushes": count,
            "seconds": round(seconds, 4),
            "pushes_per_s": round(count / seconds, 1),
            "ms_per_push": round(seconds / count * 1e3, 3),
            "calls_per_s": round(count / calls, 1),
            # this process (every thread): what the pusher itself costs, broker aside
            "cpu_us_per_push": round(cpu / count * 1e6, 1),
            **{f"{k}_cpu_us_per_push": round(v / count * 1e6, 1) for k, v in others.items()},
        }

    def _ours(self) -> tuple[Callable[[int], None], Callable[[], None]]:
        from bench.ours import make_pusher

        pusher = make_pusher("amqp", self.amqp_url)

        def push(seq: int) -> None:
            pusher.push_sync(data(seq), ROUTE, {"room": ROOM}, timeout=30)

        return push, pusher.close_sync

    def _ours_background(
        self, persistent: bool = True
    ) -> tuple[Callable[[int], None], Callable[[], None], Any]:
        from bench.ours import make_pusher

        pusher = make_pusher("amqp", self.amqp_url)
        pusher.confirm_mode, pusher.max_in_flight = "background", 1000
        context = None if persistent else {"attributes": {"delivery_mode": 1}}

        def push(seq: int) -> None:
            pusher.push_sync(data(seq), ROUTE, {"room": ROOM}, context, timeout=30)

        return push, pusher.close_sync, lambda: pusher.flush_sync(timeout=120)

    def _raw(self) -> tuple[Callable[[int], None], Callable[[], None]]:
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.exchange_declare("bench_raw", "direct", durable=True)
        props = pika.BasicProperties(content_type="application/json", delivery_mode=2)

        def push(seq: int) -> None:
            channel.basic_publish("bench_raw", ROOM, envelope(seq), props, mandatory=True)

        return push, connection.close

    def _raw_transient(self) -> tuple[Callable[[int], None], Callable[[], None]]:
        """Like python-socketio's: non-durable queue (bounded here), messages not persisted."""
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.exchange_declare("bench_transient", "fanout")
        channel.queue_declare("bench_transient", arguments={"x-max-length": 1000})
        channel.queue_bind("bench_transient", "bench_transient")
        props = pika.BasicProperties(content_type="application/json")

        def push(seq: int) -> None:
            channel.basic_publish("bench_transient", "", envelope(seq), props)

        def close() -> None:
            channel.queue_delete("bench_transient")
            connection.close()

        return push, close

    def _sio(self, confirm: bool = True) -> tuple[Callable[[int], None], Callable[[], None]]:
        import socketio

        options = {"transport_options": {"confirm_publish": True}} if confirm else {}
        manager = socketio.KombuManager(
            self.amqp_url.rstrip("/") + "//",
            channel="bench_sio",
            write_only=True,
            connection_options=options,
        )

        def push(seq: int) -> None:
            manager.emit("push", data(seq), namespace="/", room=ROOM)

        return push, manager.publisher_connection.release
