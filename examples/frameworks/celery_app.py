"""A Celery worker that pushes at the end of a job, through the AMQP pusher.

Run, with RabbitMQ up and a server whose AMQP push handler is on
(``GOS_WEB_SOCKET__PUSHERS__AMQP__ENABLED=true``, ``..._LOGIN`` / ``..._PASSWORD``, for the
server and the worker alike): ``celery -A celery_app worker`` in this directory, then
``celery -A celery_app call celery_app.build_report --args '["lobby", 1000]'``.
"""

import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_shutdown, worker_shutdown

from gos_web_socket import containers
from gos_web_socket.app.transports.pusher import Pusher

app = Celery(
    broker=os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    broker_connection_retry_on_startup=True,
)

container = containers.create_container()  # settings + GOS_WEB_SOCKET__* environment
pusher: Pusher = containers.get_service(container, "gos_web_socket.amqp.pusher")


@app.task
def build_report(room: str, rows: int) -> int:
    total = sum(range(rows))  # the job
    pusher.push_sync({"report": "ready", "total": total}, "acme_topic", {"room": room})
    return total


@worker_process_shutdown.connect  # each prefork child (it connected at its first push)
@worker_shutdown.connect  # the worker itself (--pool solo or threads)
def close_pusher(**kwargs: Any) -> None:
    pusher.close_sync()
