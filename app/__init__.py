"""GOS WebSocket for Python: a WAMP v1 + v2 server with pushers and push handlers."""

__version__ = "0.1.0"
