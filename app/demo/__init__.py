"""The example topic and RPC handler behind the default routes (``settings/routing.yaml``)."""

from gos_web_socket.app.demo.handlers import AcmeRpc, AcmeTopic

__all__ = ["AcmeRpc", "AcmeTopic"]
