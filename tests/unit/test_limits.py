"""Per-connection budgets: token bucket, bounded JSON decode, bounded prefixes, their settings."""

from __future__ import annotations

import json

import pytest

from gos_web_socket.app.close_codes import CLOSE_CODES
from gos_web_socket.app.exceptions import (
    ConfigurationError,
    LimitExceeded,
    PayloadRejected,
    ProtocolError,
)
from gos_web_socket.app.limits import (
    BoundedPrefixes,
    TokenBucket,
    check_count,
    decode_json,
)
from gos_web_socket.settings import load_settings
from gos_web_socket.settings.models import LimitsSettings, ServerSettings


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_bucket_allows_the_burst_then_refuses() -> None:
    """A full bucket gives ``burst`` tokens at once and refuses the next one."""
    bucket = TokenBucket(rate=10, burst=3)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]


def test_bucket_refills_at_its_rate_up_to_the_burst() -> None:
    """Tokens come back at ``rate`` per second and never beyond ``burst``."""
    bucket = TokenBucket(rate=10, burst=2)
    assert bucket.take(0.0) and bucket.take(0.0) and not bucket.take(0.0)
    assert bucket.take(0.1) and not bucket.take(0.1)  # 0.1 s at 10/s: one token
    assert [bucket.take(100.0) for _ in range(3)] == [True, True, False]  # capped at 2


def test_bucket_ignores_a_clock_going_backwards() -> None:
    """An earlier ``now`` than the last one adds no tokens."""
    bucket = TokenBucket(rate=1, burst=1)
    assert bucket.take(10.0)
    assert not bucket.take(5.0) and not bucket.take(10.5)
    assert bucket.take(11.0)


def test_bucket_refuses_a_useless_configuration() -> None:
    """A zero rate or a burst below one is a ValueError naming both values."""
    with pytest.raises(ValueError, match="rate > 0 and burst >= 1, got 0, 5"):
        TokenBucket(0, 5)


def test_decode_json_returns_what_json_loads_returns() -> None:
    """An ordinary CALL frame decodes exactly as ``json.loads`` decodes it."""
    frame = b'[2, "id-1", "acme/rpc/sum", [1, 2, {"a": [3]}]]'
    assert decode_json(frame, 65536, 64) == json.loads(frame)
    assert decode_json(frame.decode(), 65536, 64) == json.loads(frame)


def test_decode_json_refuses_nesting_past_the_limit() -> None:
    """Depth equal to the limit decodes; one deeper is PayloadRejected with 1007."""
    assert decode_json(nested(10), 65536, 10) == json.loads(nested(10))
    with pytest.raises(PayloadRejected) as caught:
        decode_json(nested(11), 65536, 10)
    assert (caught.value.reason, caught.value.code) == ("json_max_depth", 1007)
    assert "deeper than the limit of 10" in str(caught.value)


def test_decode_json_turns_a_recursion_error_into_payload_rejected() -> None:
    """32,000 levels (the parser's recursion gives out) is a 1007 ProtocolError, not a crash."""
    with pytest.raises(ProtocolError) as caught:
        decode_json(nested(32_000), 65536, 64)
    assert isinstance(caught.value, PayloadRejected) and caught.value.code == 1007


def test_decode_json_counts_brackets_inside_strings_correctly() -> None:
    """Brackets in strings make the check look closer but never refuse a shallow value."""
    frame = json.dumps([7, "acme/channel/1", "[" * 500]).encode()
    assert decode_json(frame, 65536, 4)[2] == "[" * 500


def test_decode_json_refuses_a_payload_over_the_size_limit_with_1009() -> None:
    """A payload longer than ``max_bytes`` is refused before decoding, with 1009."""
    with pytest.raises(PayloadRejected) as caught:
        decode_json(b"[" + b"1," * 100 + b"1]", 128, 64)
    assert (caught.value.reason, caught.value.code) == ("max_message_size", 1009)


@pytest.mark.parametrize("frame", [b"[1, 2", b"", b"NaN]", b"[1] [2]"])
def test_decode_json_refuses_what_is_not_json(frame: bytes) -> None:
    """Broken JSON is PayloadRejected ``invalid_json`` with 1007."""
    with pytest.raises(PayloadRejected) as caught:
        decode_json(frame, 65536, 64)
    assert (caught.value.reason, caught.value.code) == ("invalid_json", 1007)


def test_decode_json_refuses_invalid_utf8() -> None:
    """Bytes that are not UTF-8 are PayloadRejected ``invalid_utf8`` with 1007."""
    with pytest.raises(PayloadRejected) as caught:
        decode_json(b'[7, "\xff\xfe"]', 65536, 64)
    assert (caught.value.reason, caught.value.code) == ("invalid_utf8", 1007)


def test_decode_json_accepts_whitespace_around_the_value() -> None:
    """Leading and trailing whitespace is valid JSON, as for ``json.loads``."""
    assert decode_json(b" \r\n[1, {}]\t ", 65536, 64) == [1, {}]


def test_prefixes_are_capped_in_entries() -> None:
    """The entry past ``max_entries`` raises LimitExceeded (1008); redefining one is fine."""
    prefixes = BoundedPrefixes(max_entries=2, max_bytes=1000)
    prefixes.define("a", "http://a/")
    prefixes.define("b", "http://b/")
    prefixes.define("a", "http://a2/")
    with pytest.raises(LimitExceeded) as caught:
        prefixes.define("c", "http://c/")
    assert (caught.value.reason, caught.value.code) == ("max_prefixes", 1008)
    assert dict(prefixes) == {"a": "http://a2/", "b": "http://b/"}
    assert "server.limits.max_prefixes" in str(caught.value)


def test_prefixes_are_capped_in_bytes_and_replacing_frees_the_old_size() -> None:
    """Total CURIE+URI bytes stay under ``max_bytes``; a refused entry leaves the map as it was."""
    prefixes = BoundedPrefixes(max_entries=100, max_bytes=20)
    prefixes.define("a", "x" * 9)  # 10 bytes
    prefixes.define("a", "y" * 19)  # replaces: 20 bytes
    assert prefixes.size == 20
    with pytest.raises(LimitExceeded) as caught:
        prefixes.define("b", "z")
    assert caught.value.reason == "max_prefix_bytes"
    assert (dict(prefixes), prefixes.size) == ({"a": "y" * 19}, 20)


def test_check_count_raises_at_the_limit() -> None:
    """One more item than the limit allows raises LimitExceeded naming the setting."""
    check_count("max_subscriptions", 1, 2, "subscriptions")
    with pytest.raises(LimitExceeded, match=r"more than 2 subscriptions.*max_subscriptions"):
        check_count("max_subscriptions", 2, 2, "subscriptions")


def test_every_limit_setting_has_a_close_code() -> None:
    """Each budget in LimitsSettings that cuts a client off names its code in CLOSE_CODES."""
    cut_off = set(LimitsSettings.model_fields) - {
        "messages_burst",
        "calls_burst",
        "pings_burst",
        "handshake_max_bytes",  # refused with HTTP 431 before any WebSocket close code exists
        "handshake_timeout",  # dropped: no WebSocket yet
        "handshakes_in_progress",  # later handshakes wait for a slot; nobody is cut off
        "handshake_lag",  # fewer handshakes at once while the loop lags; nobody is cut off
        "handshakes_per_turn",  # the rest of the requests are worked on next turn
        "messages_per_turn",  # a fairness knob, nobody is cut off
        "departures_per_turn",  # gone clients leave in later turns; nobody is cut off
        "frames_burst",
        "frames_per_turn",  # fairness knobs too: the rest is parsed next turn
        "read_bytes_per_turn",
        "zmq_max_message_size",  # a ZeroMQ peer, not a WebSocket client
        # the dealer's: one call ends with an ERROR to its caller, nobody is cut off
        "max_pending_invocations",
        "max_progressive_results",
        "call_timeout",
        # presence's: a query over the rate gets error 429, too large an info is shown as {}
        "presence_queries_per_second",
        "presence_queries_burst",
        "presence_info_bytes",
    }
    assert cut_off <= set(CLOSE_CODES)
    assert set(CLOSE_CODES.values()) == {1003, 1007, 1008, 1009}


def test_limits_have_safe_defaults_under_server() -> None:
    """The shipped settings carry the limits with their documented defaults."""
    limits = load_settings().server.limits
    assert (limits.messages_per_second, limits.messages_burst) == (100.0, 200)
    assert (limits.max_prefixes, limits.max_prefix_bytes, limits.json_max_depth) == (64, 16384, 64)
    assert (limits.handshake_max_bytes, limits.handshake_timeout) == (16384, 5.0)
    assert ServerSettings().limits == limits


def test_a_limit_is_set_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """GOS_WEB_SOCKET__SERVER__LIMITS__MAX_SUBSCRIPTIONS overrides the default."""
    monkeypatch.setenv("GOS_WEB_SOCKET__SERVER__LIMITS__MAX_SUBSCRIPTIONS", "7")
    assert load_settings().server.limits.max_subscriptions == 7


def test_a_bad_limit_is_one_readable_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A zero rate stops start-up with the key path, the value and what is allowed."""
    monkeypatch.setenv("GOS_WEB_SOCKET__SERVER__LIMITS__MESSAGES_PER_SECOND", "0")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.problems == [
        "server.limits.messages_per_second: '0' is not allowed: Input should be greater than 0"
    ]


def test_payload_rejected_carries_the_close_code_of_its_reason() -> None:
    """Each PayloadRejected reason closes with the code CLOSE_CODES documents."""
    for reason in ("json_max_depth", "invalid_json", "invalid_utf8", "max_message_size"):
        assert PayloadRejected(reason, "x").code == CLOSE_CODES[reason]
    binary = PayloadRejected("binary_on_text_protocol", "binary frame; WAMP v1 uses text")
    assert binary.code == CLOSE_CODES["binary_on_text_protocol"] == 1003
