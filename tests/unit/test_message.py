"""The GOS envelope and its codec."""

from __future__ import annotations

import json

import pytest

from gos_web_socket.app.exceptions import InvalidPushArgument, MessageDecodeError
from gos_web_socket.app.message import Message


def test_string_data_becomes_a_one_item_list() -> None:
    """A string is wrapped as PHP's AbstractPusher wraps it."""
    assert Message.create("acme/channel/1", "hi").data == ["hi"]


def test_dict_and_list_pass_through() -> None:
    """Arrays pass through unchanged."""
    assert Message.create("c", {"msg": "x"}).data == {"msg": "x"}
    assert Message.create("c", [1, 2]).data == [1, 2]


def test_other_data_is_refused() -> None:
    """Numbers and None are neither strings nor arrays in GOS either."""
    with pytest.raises(InvalidPushArgument, match="must be a string, a dict or a list"):
        Message.create("c", 42)


def test_encode_is_the_gos_envelope() -> None:
    """The body is {"topic": ..., "data": ...}, JSON, UTF-8 unescaped."""
    body = Message.create("acme/channel/é", {"k": "ü"}).encode()
    assert json.loads(body) == {"topic": "acme/channel/é", "data": {"k": "ü"}}
    assert "é".encode() in body


def test_unencodable_data_is_an_argument_error() -> None:
    """NaN and objects JSON cannot hold fail at push time, not on the server."""
    with pytest.raises(InvalidPushArgument):
        Message.create("c", {"x": float("nan")}).encode()
    with pytest.raises(InvalidPushArgument):
        Message.create("c", {"x": object()}).encode()


def test_decode_reads_php_json_encode_output() -> None:
    """PHP escapes '/' as '\\/' and non-ASCII as \\uXXXX."""
    body = b'{"topic":"acme\\/channel\\/42","data":["h\\u00e9"]}'
    assert Message.decode(body) == Message("acme/channel/42", ["hé"])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"data": 1}', "lacks the key"),
        (b'{"topic": "c"}', "lacks the key"),
        (b'{"topic": 5, "data": 1}', "non-empty string"),
    ],
)
def test_decode_rejects_what_is_not_an_envelope(body: bytes, reason: str) -> None:
    """Each malformed body is a MessageDecodeError that says what is wrong."""
    with pytest.raises(MessageDecodeError, match=reason):
        Message.decode(body)


def test_round_trip() -> None:
    """What we encode, we decode."""
    message = Message.create("a/b", {"n": [1, 2.5, None, True]})
    assert Message.decode(message.encode()) == message
