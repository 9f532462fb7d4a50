"""WAMP v1 message type numbers: the server's session and the WAMP pusher both speak them.

Dependency-free, so that a pusher can name ``PUBLISH`` without loading the server.
"""

from __future__ import annotations

__all__ = [
    "CALL",
    "CALLERROR",
    "CALLRESULT",
    "EVENT",
    "PREFIX",
    "PUBLISH",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "WELCOME",
]

WELCOME, PREFIX, CALL, CALLRESULT, CALLERROR = 0, 1, 2, 3, 4
SUBSCRIBE, UNSUBSCRIBE, PUBLISH, EVENT = 5, 6, 7, 8
