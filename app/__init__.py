"""GOS WebSocket for Python: a WAMP v1 server with pushers (AMQP, ZeroMQ, WAMP) and push handlers."""

__version__ = "0.1.0"
