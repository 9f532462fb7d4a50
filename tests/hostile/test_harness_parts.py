"""The harness's own arithmetic: how attackers are dealt out and how answers are judged."""

from __future__ import annotations

from tests.hostile.attacks import ATTACKS, EXPECTED, Outcome
from tests.hostile.harness import MIXED, PLAN, Phase, _split, percentile


def test_every_attack_kind_has_a_documented_answer_and_a_place_in_the_run() -> None:
    """Each kind is run alone, is part of the mixed phase, and has an expected answer."""
    assert set(ATTACKS) == set(EXPECTED) == {kind for kind, _ in PLAN} == set(MIXED)


def test_attackers_are_dealt_evenly_over_the_crowd_processes() -> None:
    """Every attacker goes to exactly one process, and the processes differ by at most one."""
    shares = _split({"ping_flood": 5, "silent": 2}, 3)
    assert [sum(share.values()) for share in shares] == [3, 2, 2]
    assert sum(share.get("ping_flood", 0) for share in shares) == 5


def test_an_answer_other_than_the_documented_one_is_reported() -> None:
    """A bare EOF to deep JSON is unexpected; the documented 1007 is not."""
    phase = Phase("deep_json", {"deep_json": 2})
    phase.outcomes = [Outcome("deep_json", "close", 1007), Outcome("deep_json", "eof")]
    assert phase.answers() == {"close 1007": 1, "eof": 1}
    assert phase.unexpected("deep_json") == {"eof": 1}


def test_percentile_takes_the_value_at_the_rank() -> None:
    """p99 of 1..100 is 100 and p50 is 51 (the value at rank q * n)."""
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.99), percentile(values, 0.50)) == (100.0, 51.0)
