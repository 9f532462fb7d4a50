"""The example topic and RPC handler behind the default routes (``settings/routing.yaml``)."""

from app.demo.handlers import AcmeRpc, AcmeTopic

__all__ = ["AcmeRpc", "AcmeTopic"]
