"""Pushers and server push handlers: the contract in ``contract``, one module per transport
(AMQP and ZeroMQ: one package each); ``pusher``, ``sync``, ``background`` and ``handler`` are
shared."""
