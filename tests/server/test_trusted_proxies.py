"""``server.trusted_proxies``: X-Forwarded-For / Forwarded are read only from a trusted peer."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.server.guard import Guard
from gos_web_socket.app.testing import ConnectFailed, WampTestClient
from gos_web_socket.settings.models import Settings
from tests.support.server import running_server, url_of

PROXY = "127.0.0.2"  # trusted; the test's clients connect from other loopback addresses
BLOCKED = "127.0.0.5"
OTHER = "127.0.0.6"


async def test_untrusted_peers_forwarded_for_is_ignored() -> None:
    """A peer that is not a trusted proxy is judged by its own address: its X-Forwarded-For
    neither unblocks a blocked peer nor blocks an allowed one, and the log address is its own."""
    blocked = {"ip_address_check": True, "blocked_ip_addresses": [BLOCKED]}
    async with running_server(trusted_proxies=[PROXY], **blocked) as server:
        url = url_of(server)
        with pytest.raises(ConnectFailed):
            await WampTestClient.connect(
                url, local_host=BLOCKED, headers={"X-Forwarded-For": "198.51.100.1"}
            )
        client = await WampTestClient.connect(
            url, local_host=OTHER, headers={"X-Forwarded-For": BLOCKED}
        )
        try:
            assert [c.remote_address for c in server.live_connections] == [OTHER]
        finally:
            await client.close()


async def test_trusted_peers_forwarded_header_is_believed() -> None:
    """From a trusted peer, the Forwarded header's ``for=`` is the client: blocked, refused."""
    blocked = {"ip_address_check": True, "blocked_ip_addresses": ["198.51.100.1"]}
    async with running_server(trusted_proxies=[f"{PROXY}/32"], **blocked) as server:
        url = url_of(server)
        with pytest.raises(ConnectFailed):
            await WampTestClient.connect(
                url, local_host=PROXY, headers={"Forwarded": 'for="198.51.100.1:4711"'}
            )
        client = await WampTestClient.connect(
            url, local_host=PROXY, headers={"Forwarded": "for=198.51.100.2;proto=https"}
        )
        try:
            assert [c.remote_address for c in server.live_connections] == ["198.51.100.2"]
        finally:
            await client.close()


def guard(*proxies: str) -> Guard:
    settings = Settings(server={"trusted_proxies": list(proxies)})
    return Guard.from_settings(settings, EventDispatcher())


def test_client_address_walks_past_trusted_hops_only() -> None:
    """The nearest forwarded hop that is not a trusted proxy is the client; hops to its left
    (written by the client itself) are not read."""
    chain = {"x-forwarded-for": "6.6.6.6, 203.0.113.9, 10.0.0.3"}
    assert guard("10.0.0.0/8").client_address("10.0.0.1", chain) == "203.0.113.9"
    assert guard("10.0.0.0/8").client_address("192.0.2.1", chain) == "192.0.2.1"
    assert guard().client_address("10.0.0.1", chain) == "10.0.0.1"
    assert guard("10.0.0.1").client_address("10.0.0.1", {}) == "10.0.0.1"


def test_client_address_reads_forwarded_forms() -> None:
    """``Forwarded`` wins over X-Forwarded-For; quoted IPv6 with a port, and ``unknown``."""
    proxy = guard("::1", "127.0.0.1")
    headers = {"forwarded": 'for="[2001:db8::1]:443", for=127.0.0.1', "x-forwarded-for": "1.2.3.4"}
    assert proxy.client_address("::1", headers) == "2001:db8::1"
    assert proxy.client_address("127.0.0.1", {"x-forwarded-for": "unknown"}) == "unknown"


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    """A proxy that is not an IP address or CIDR network is a one-line settings error."""
    with pytest.raises(ValueError, match="trusted_proxies: 'proxy.local' is not an IP address"):
        Settings(server={"trusted_proxies": ["proxy.local"]})


def test_deploy_docs_settings_block_is_valid() -> None:
    """The trusted-proxies YAML in docs/deploy.md loads as settings, as written."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    settings = Settings(**yaml.safe_load(block)["gos_web_socket"])
    assert settings.server.trusted_proxies == ["127.0.0.1"]
    assert settings.blocked_ips == ["203.0.113.9"]
