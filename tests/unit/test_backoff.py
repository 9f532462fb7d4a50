"""The one backoff helper: each caller's numbers give the delays it always had."""

from __future__ import annotations

import pytest

from gos_web_socket.app.backoff import Backoff


def delays(backoff: Backoff, count: int) -> list[float]:
    return [backoff.next() for _ in range(count)]


def test_doubles_up_to_the_cap() -> None:
    """The supervisor's defaults: 0.5 s doubling to 8 s."""
    assert delays(Backoff(0.5, 8.0), 7) == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_the_amqp_pushers_retry_delays() -> None:
    """The AMQP pusher: 0.05 s doubling to 1 s."""
    assert delays(Backoff(0.05, 1.0), 7) == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_reset_starts_again_and_current_is_the_next_delay() -> None:
    """The workers' slots show ``current`` as the next restart's wait."""
    backoff = Backoff(0.5, 30.0)
    assert delays(backoff, 3) == [0.5, 1.0, 2.0]
    assert backoff.current == 4.0
    backoff.reset()
    assert backoff.current == 0.5
    assert delays(backoff, 2) == [0.5, 1.0]


def test_a_cap_below_the_first_delay_caps_the_later_ones() -> None:
    """WAMP's max_backoff may be below its 0.05 s first delay: the first is kept, as before."""
    assert delays(Backoff(0.05, 0.01), 3) == [0.05, 0.01, 0.01]


def test_factor_and_jitter() -> None:
    """Jitter takes up to its fraction off a delay; the sequence itself does not change."""
    backoff = Backoff(1.0, 100.0, factor=3.0, jitter=0.5, rng=lambda: 1.0)
    assert delays(backoff, 3) == [0.5, 1.5, 4.5]
    assert backoff.current == 27.0
    assert delays(Backoff(1.0, 100.0, jitter=0.5, rng=lambda: 0.0), 2) == [1.0, 2.0]


@pytest.mark.parametrize(
    "first, cap, factor, jitter", [(0, 1, 2, 0), (1, 0, 2, 0), (1, 2, 0.5, 0), (1, 2, 2, 1.5)]
)
def test_refuses_numbers_that_make_no_sequence(
    first: float, cap: float, factor: float, jitter: float
) -> None:
    with pytest.raises(ValueError):
        Backoff(first, cap, factor, jitter)
