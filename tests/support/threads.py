"""Plain threads released together, as synchronous backend code would call a pusher."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_threads(worker: Callable[[int], None], count: int = 8) -> None:
    """Run ``worker(0..count-1)`` in ``count`` threads that start at once; blocks until all
    are done and re-raises the first error a thread hit (a bare Thread would swallow it)."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        barrier.wait()
        try:
            worker(n)
        except BaseException as exc:  # handed to the caller below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
