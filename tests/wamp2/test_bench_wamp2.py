"""The WAMP v2 bench (bench/wamp2.py) at a tiny size, ours only (Crossbar has its own venv)."""

from __future__ import annotations

from bench.wamp2 import crossbar_config, run


async def test_bench_wamp2_runs_on_ours() -> None:
    """Calls and fan-out complete against a real server and report positive rates."""
    results = await run(count=40, subscribers=5, events=2, systems=("ours",))
    assert results["ours"]["calls_per_s"] > 0
    assert results["ours"]["deliveries_per_s"] > 0


def test_crossbar_config_is_one_open_router() -> None:
    """Crossbar gets one router worker, realm1, anonymous allowed everything, on the port."""
    (worker,) = crossbar_config(4321)["workers"]
    (realm,) = worker["realms"]
    assert realm["name"] == "realm1"
    assert realm["roles"][0]["permissions"][0]["allow"]["register"] is True
    assert worker["transports"][0]["endpoint"]["port"] == 4321
