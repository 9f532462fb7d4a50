"""The site's pusher: one per process, from gos_web_socket's container.

``create_container()`` reads gos_web_socket's default settings and the ``GOS_WEB_SOCKET__*``
environment (``GOS_WEB_SOCKET__PUSHERS__ZMQ__PORT=5555``, ...); pass a path for your own file.
"""

import atexit

from gos_web_socket import containers
from gos_web_socket.app.transports.pusher import Pusher

container = containers.create_container()
pusher: Pusher = containers.get_service(container, "gos_web_socket.zmq.pusher")
atexit.register(pusher.close_sync)  # connects lazily; closed when the process exits
