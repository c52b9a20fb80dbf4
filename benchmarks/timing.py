"""What every benchmark here shares: the best of several timed runs.

The machines these run on are noisy, so each figure is the fastest of
``repeats`` runs; each script imports this module from its own folder.
"""

from __future__ import annotations

import time


def best_of(repeats: int, func) -> tuple[float, object]:
    """(seconds of the fastest of ``repeats`` calls of ``func``, the last call's result)."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return min(times), result
