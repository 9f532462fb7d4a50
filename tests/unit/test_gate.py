"""The HTTP gate before the WebSocket handshake, fed bytes, without a socket."""

from __future__ import annotations

import ipaddress
from typing import Any

from gos_web_socket.app.events import EventDispatcher
from gos_web_socket.app.server.gate import FORBIDDEN, HEAD_TOO_LARGE, Admit, Answer, HttpGate
from gos_web_socket.app.server.guard import Guard

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Origin: 127.0.0.1\r\n\r\n"
)


def gate(
    blocked: tuple[str, ...] = (),
    proxies: tuple[str, ...] = (),
    health: Any = None,
    max_head: int = 1024,
) -> HttpGate:
    networks = tuple(ipaddress.ip_network(p) for p in proxies)
    guard = Guard(False, frozenset(), frozenset(blocked), EventDispatcher(), networks)
    return HttpGate(guard, max_head, health)


def test_incomplete_head_under_the_limit_reads_on() -> None:
    """A head without its blank line yet, under the limit, gets no verdict."""
    assert gate().check(UPGRADE[:30], "10.0.0.1") is None


def test_head_over_the_limit_gets_431() -> None:
    """A head over handshake_max_bytes, complete or not, is answered 431."""
    big = b"GET / HTTP/1.1\r\nX: " + b"a" * 2000
    for data in (big, big + b"\r\n\r\n"):
        verdict = gate().check(data, "10.0.0.1", "7")
        assert verdict == Answer(HEAD_TOO_LARGE, "handshake_max_bytes", "10.0.0.1")


def test_an_upgrade_is_admitted_with_its_origin_normalised() -> None:
    """A complete upgrade goes on, the scheme-less Origin read as sent and rewritten in the
    head; the bytes after the head are kept."""
    verdict = gate().check(UPGRADE + b"rest", "10.0.0.1")
    assert isinstance(verdict, Admit)
    assert verdict.origin == "127.0.0.1"
    assert verdict.address == "10.0.0.1"
    assert verdict.data.endswith(b"\r\n\r\nrest")
    assert b"Origin: http://127.0.0.1" in verdict.data


def test_blocked_peer_is_refused_unless_it_is_a_trusted_proxy() -> None:
    """A blocked peer is refused at accept; a trusted proxy is not (its clients are read)."""
    assert gate(blocked=("10.0.0.9",)).refuses_peer("10.0.0.9")
    assert not gate(blocked=("10.0.0.9",)).refuses_peer("10.0.0.1")
    assert not gate(blocked=("10.0.0.9",), proxies=("10.0.0.9/32",)).refuses_peer("10.0.0.9")


def test_a_trusted_proxy_forwards_the_client_address() -> None:
    """Behind a trusted proxy the client's address is its X-Forwarded-For hop; a blocked
    one gets 403."""
    head = UPGRADE.replace(b"\r\n\r\n", b"\r\nX-Forwarded-For: 203.0.113.5\r\n\r\n")
    admitted = gate(proxies=("10.0.0.0/8",)).check(head, "10.0.0.1")
    assert isinstance(admitted, Admit) and admitted.address == "203.0.113.5"
    refused = gate(blocked=("203.0.113.5",), proxies=("10.0.0.0/8",)).check(head, "10.0.0.1")
    assert refused == Answer(FORBIDDEN, "blocked", "203.0.113.5")


def test_forwarded_headers_of_an_untrusted_peer_are_ignored() -> None:
    """A peer that is not a trusted proxy keeps its own address whatever it forwards."""
    head = UPGRADE.replace(b"\r\n\r\n", b"\r\nX-Forwarded-For: 203.0.113.5\r\n\r\n")
    verdict = gate(blocked=("203.0.113.5",)).check(head, "10.0.0.1")
    assert isinstance(verdict, Admit) and verdict.address == "10.0.0.1"


def test_health_is_answered_without_upgrade_only() -> None:
    """GET /health gets 200 (ready) or 503, HEAD gets the head only; with Upgrade, or
    without a readiness check, it goes on to the handshake."""
    ready = gate(health=lambda: (True, {"ok": True}))
    verdict = ready.check(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", "10.0.0.1")
    assert isinstance(verdict, Answer) and verdict.reason == "health"
    assert verdict.reply.startswith(b"HTTP/1.1 200 ") and verdict.reply.endswith(b'{"ok": true}')
    head_only = ready.check(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n", "10.0.0.1")
    assert isinstance(head_only, Answer) and head_only.reply.endswith(b"\r\n\r\n")
    not_ready = gate(health=lambda: (False, {}))
    answer = not_ready.check(b"GET /health HTTP/1.1\r\n\r\n", "10.0.0.1")
    assert isinstance(answer, Answer) and answer.reply.startswith(b"HTTP/1.1 503 ")
    upgrade = b"GET /health HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"
    assert isinstance(ready.check(upgrade, "10.0.0.1"), Admit)
    assert isinstance(gate().check(b"GET /health HTTP/1.1\r\n\r\n", "10.0.0.1"), Admit)
