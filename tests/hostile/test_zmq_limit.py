"""The ZeroMQ PULL socket refuses, unread, a frame beyond ``OVERSIZE_READ`` (8) times
``server.limits.zmq_max_message_size`` (frames between the two are read to be counted).

Without ``ZMQ_MAXMSGSIZE`` libzmq receives a frame of any size whole before the handler sees
it: one 100 MB frame to the handler's port costs the server 100 MB or more, however the
handler then rejects it.
"""

from __future__ import annotations

import pytest

from tests.hostile.harness import zmq_frame_growth


@pytest.mark.slow  # 100 MB through a socket, the server's RSS sampled
async def test_a_100_mb_zmq_frame_is_refused_without_an_rss_jump() -> None:
    """A 100 MB frame raises the server's peak RSS by under 10 MiB; later pushes still arrive."""
    growth_mib, delivered_after = await zmq_frame_growth(100)
    assert delivered_after, "a push after the 100 MB frame did not reach its subscriber"
    assert growth_mib < 10, f"peak RSS grew by {growth_mib:.0f} MiB for one 100 MB ZeroMQ frame"
