"""Issue 24's size figures, asserted on a real server process (``tests.hostile.oversize``)."""

from __future__ import annotations

import pytest

from tests.hostile.oversize import FOREIGN, measure

pytestmark = pytest.mark.slow  # a hostile-client load run: a server process fed 5 MB frames


async def test_no_zmq_push_is_lost_to_its_size_in_silence() -> None:
    """Default limits: 5 MB from our pusher is PushFailed naming the setting; 5 foreign 5 MB
    frames are counted 5 and logged once; a normal push after them still arrives."""
    figures = await measure()
    assert "server.limits.zmq_max_message_size (1048576 bytes)" in figures.pusher_error
    assert figures.pusher_seconds < 1.0
    assert figures.counted == FOREIGN
    assert figures.log_lines == 1
    assert figures.delivered_after
