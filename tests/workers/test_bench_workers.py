"""The benchmark's workers variants run the real CLI server with its worker processes."""

from __future__ import annotations

import psutil
import pytest

from bench.runner import Setup


@pytest.mark.slow  # a benchmark run: the CLI server, two workers, a crowd of subscribers
def test_bench_w2_runs_the_cli_parent_and_two_workers_and_counts_them() -> None:
    """`ours-w2` serves subscribers from CLI workers, sums CPU over them (not over the bench
    agent that started the CLI), and stops them all."""
    setup = Setup("ours-w2", "zmq", broker="")
    try:
        processes = setup.server_processes()
        # the `gos-websocket server` parent and its two workers; the agent above is not counted
        assert len(processes) == 3
        assert setup.server.pid not in {p.pid for p in processes}
        assert psutil.Process(setup.server.pid) in processes[0].parents()
        assert setup.connect(20, 1) == 20
        assert setup.server_rss() > sum(p.memory_info().rss for p in processes[:1])
    finally:
        setup.stop()
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes)
