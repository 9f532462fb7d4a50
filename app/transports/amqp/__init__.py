"""The AMQP transport on aio-pika, one concern a module.

- ``topology``: the broker address, the connection, exchange/queue/stream declarations and
  php-amqp's publish flags;
- ``pusher``: ``AmqpPusher`` (persistent messages, broker confirms, retries through outages);
- ``receiver``: ``AmqpReceiver`` (one queue, batched acks, dead-lettering);
- ``stream``: ``AmqpStreamReceiver`` (``queue_mode: stream``: every node reads the stream);
- ``offsets``: the stream reader's offset file;
- ``handler``: ``AmqpServerPushHandler``, the receiver that ``queue_mode`` picks.

Delivery is at-least-once from ``push()`` to a topic's ``on_push``: the pusher publishes
persistent messages with a ``message_id`` and waits for the broker's confirm, retrying through
outages until ``push_timeout``; the handler acks only after ``on_push`` returned, rejects failures
into a dead-letter queue, and drops redelivered duplicates by ``message_id``. See docs/amqp.md.
"""
