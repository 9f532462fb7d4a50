"""The backend's side of presence: a process (Django management command, Celery worker boot)
that reads the lifecycle events the server puts on ``presence.queue.queue``.

Run it beside the server (``presence: {queue: {enabled: true}}`` in gos_web_socket.yaml)::

    python examples/presence_consumer.py amqp://guest:guest@127.0.0.1:5672/

Delivery is at least once: an event comes again when this process died before it acked, and
``consume_forever`` drops repeats by event id (``Deduplicator``). Make the handler idempotent
all the same (a repeat older than the deduplicator's memory, a restart) - e.g. an upsert
keyed on ``event.id``.
"""

from __future__ import annotations

import sys

from gos_web_socket.app.presence import PresenceEvent
from gos_web_socket.app.presence.consumer import consume_forever


def on_event(event: PresenceEvent) -> None:
    """Record who came and went (here: print; in Django: ``Presence.objects.update_or_create``)."""
    kind = event.kind.rsplit(".", 1)[-1]
    where = f" {event.channel}" if event.channel else ""
    print(f"{event.at:.3f} user {event.user_id} {kind}{where} (event {event.id})", flush=True)


if __name__ == "__main__":
    consume_forever(sys.argv[1] if len(sys.argv) > 1 else "amqp://guest:guest@127.0.0.1/", on_event)
