"""Pushers and server push handlers: the contract in ``contract``, one module per transport
(AMQP: one package); ``pusher``, ``sync``, ``background`` and ``handler`` are shared."""
