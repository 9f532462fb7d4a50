"""Who may connect: GOS's BlockedIpCheck and OriginCheck, apart from the connection itself."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlsplit

from autobahn.websocket.types import ConnectionDeny, ConnectionRequest

from gos_web_socket.app.events import (
    CLIENT_REJECTED,
    CONNECTION_REJECTED,
    ClientRejectedEvent,
    ConnectionRejectedEvent,
    EventDispatcher,
)
from gos_web_socket.settings.models import Settings

logger = logging.getLogger(__name__)


def origin_host(origin: str) -> str:
    """The host part of an Origin header, falling back to the raw value (GOS's OriginCheck).

    A value without a scheme (``127.0.0.1:8080``, from the PHP client) is read as a host.
    """
    try:
        host = urlsplit(origin if "://" in origin else f"//{origin}").hostname
    except ValueError:
        host = None
    return host or origin


def normalise_origin(head: bytes) -> tuple[bytes, str | None]:
    """Give a scheme-less ``Origin`` an ``http://`` so autobahn's parser accepts it.

    Returns the new header block and the header's original value (None when absent).
    """
    lines = head.split(b"\r\n")
    raw: str | None = None
    for index, line in enumerate(lines[1:], start=1):
        name, sep, value = line.partition(b":")
        if not sep or name.strip().lower() not in (b"origin", b"sec-websocket-origin"):
            continue
        value = value.strip()
        raw = value.decode("latin-1")
        if not value:
            lines[index] = b""  # an empty Origin counts as absent (GOS: '')
        elif b"://" not in value and value.lower() != b"null":
            lines[index] = name + b": http://" + value
    return b"\r\n".join(line for line in lines if line), raw


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address from a header element (``[::1]:80``, ``"1.2.3.4:5"``, ``1.2.3.4``), or None."""
    value = value.strip().strip('"')
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def forwarded_chain(headers: Mapping[str, str]) -> list[str]:
    """The client addresses a proxy reported, nearest last: ``Forwarded`` ``for=``, else
    ``X-Forwarded-For`` (an element that is not an IP address, e.g. ``unknown``, stays as is)."""
    if "forwarded" in headers:
        chain = []
        for element in headers["forwarded"].split(","):
            for pair in element.split(";"):
                name, _, value = pair.strip().partition("=")
                if name.strip().lower() == "for":
                    chain.append(value.strip())
        return chain
    return [item.strip() for item in headers.get("x-forwarded-for", "").split(",") if item.strip()]


@dataclass(frozen=True, slots=True)
class Guard:
    """The origin and IP checks of one server, and the events a refusal fires."""

    origin_check: bool
    allowed_origins: frozenset[str]
    blocked_ips: frozenset[str]
    dispatcher: EventDispatcher
    trusted_proxies: tuple[Network, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings, dispatcher: EventDispatcher) -> Guard:
        server = settings.server
        blocked = frozenset(settings.blocked_ips if server.ip_address_check else ())
        origins = frozenset(settings.allowed_origins)
        proxies = tuple(ipaddress.ip_network(p, strict=False) for p in server.trusted_proxies)
        return cls(server.origin_check, origins, blocked, dispatcher, proxies)

    def trusts(self, address: str) -> bool:
        """True when ``address`` (a TCP peer or a hop) is one of ``server.trusted_proxies``."""
        if not self.trusted_proxies:
            return False  # the default: no parsing on a connection's path
        ip = _address(address)
        return ip is not None and any(ip in network for network in self.trusted_proxies)

    def client_address(self, peer: str, headers: Mapping[str, str]) -> str:
        """The client's address: the peer's own, or, from a trusted proxy, the nearest
        forwarded hop that is not itself a trusted proxy (hops a client wrote are not read)."""
        if not self.trusts(peer):
            return peer
        address = peer
        for hop in reversed(forwarded_chain(headers)):
            ip = _address(hop)
            address = str(ip) if ip is not None else hop.strip('"')
            if ip is None or not self.trusts(address):
                break
        return address

    def blocks(self, address: str) -> bool:
        """True for an address to close before any HTTP (an empty set blocks nobody)."""
        return address in self.blocked_ips

    async def blocked(self, connection: Any, address: str) -> None:
        """Tell the listeners that ``connection`` from a blocked address was closed."""
        logger.info("connection from blocked address %s refused", address)
        await self.dispatcher.dispatch(CONNECTION_REJECTED, ConnectionRejectedEvent(connection))

    def refuses_origin(self, origin: str | None) -> bool:
        """True when the origin check is on and the Origin's host is not allowed."""
        return self.origin_check and origin_host(origin or "") not in self.allowed_origins

    async def refuse_origin(
        self, connection: Any, address: str, origin: str, request: ConnectionRequest
    ) -> NoReturn:
        """Fire ``client_rejected`` and ``connection_rejected``, then answer 403."""
        logger.info("origin %r of %s refused", origin, address)
        dispatch = self.dispatcher.dispatch
        await dispatch(CLIENT_REJECTED, ClientRejectedEvent(origin=origin, request=request))
        await dispatch(CONNECTION_REJECTED, ConnectionRejectedEvent(connection, request))
        raise ConnectionDeny(ConnectionDeny.FORBIDDEN, "Origin not allowed")  # type: ignore[no-untyped-call]
