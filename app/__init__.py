"""GOS WebSocket for Python: a WAMP v1 + v2 server with pushers and push handlers."""

__version__ = "0.1.0"

if __name__ != "gos_web_socket.app":  # the checkout's root on sys.path makes `import app` work
    raise ImportError(f"import gos_web_socket.app, not {__name__} (a second copy of every module)")
