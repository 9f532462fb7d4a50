"""Presence of a SecuredTopic route: only who secure() let in sees who is there."""

from __future__ import annotations

import pytest

from gos_web_socket.app.testing import CallError
from tests.presence.conftest import Presenced
from tests.support.waiting import eventually

GUARDED = "acme/guarded/1"
WATCH = "gos/presence/" + GUARDED


async def test_a_user_secure_bars_gets_no_member_list(presenced: Presenced) -> None:
    """A user secure() refuses on the channel gets 403 from gos/presence and its watch refused."""
    welcome = await presenced.client("67")
    welcome.subscribe(GUARDED)
    await eventually(lambda: presenced.presence.counts(GUARDED) == (1, 1))
    barred = await presenced.client("66")
    with pytest.raises(CallError) as refused:
        await barred.call("gos/presence", GUARDED)
    assert refused.value.details["code"] == 403
    assert "secure" in refused.value.desc
    barred.subscribe(WATCH)
    error = await barred.next_topic_error(WATCH)
    assert "secure" in error.desc and barred.is_open


async def test_a_member_of_a_secured_channel_sees_it_without_session_ids(
    presenced: Presenced,
) -> None:
    """A member secure() let in gets the member list, the watch state, and no session ids."""
    welcome = await presenced.client("67")
    welcome.subscribe(GUARDED)
    await eventually(lambda: presenced.presence.counts(GUARDED) == (1, 1))
    answer = await welcome.call("gos/presence", GUARDED)
    assert list(answer["users"]) == ["67"] and answer["num_clients"] == 1
    assert answer["connections"] == [{"user": "67", "info": {}}]
    welcome.subscribe(WATCH)
    state = await welcome.next_event(WATCH)
    assert list(state["state"]["users"]) == ["67"]
    assert all("session" not in c for c in state["state"]["connections"])
