"""Which frame pairs of a time-lapse to measure.

Every frame is measured against the reference frame (so that no error
accumulates between distant frames) and against the frames 1, 2, 4, 8, ...
time points later, up to ``max_step`` (so that a frame whose content changed
since the reference, or whose reference pair failed, is still tied to its
neighbours at several time scales). With ``max_step`` None the steps go up
to ``T - 1``: about ``T log2 T`` pairs; with a limit, at most
``T (1 + log2 max_step)``.
"""

from __future__ import annotations

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError


def time_steps(n_frames: int, max_step: int | None) -> list[int]:
    """The steps 1, 2, 4, ... below ``n_frames`` and at most ``max_step``."""
    limit = n_frames - 1 if max_step is None else min(int(max_step), n_frames - 1)
    steps = []
    step = 1
    while step <= limit:
        steps.append(step)
        step *= 2
    return steps


def frame_pairs(n_frames: int, *, reference: int = 0, max_step: int | None = 8) -> np.ndarray:
    """The pairs of frames to measure, each once, sorted.

    Args:
        n_frames: number of time points T (at least 2).
        reference: index of the reference frame (0 to T - 1).
        max_step: largest time step between neighbour pairs (steps are the
            powers of two up to it); None: up to ``T - 1``.

    Returns:
        (P, 2) int64 array of ``(earlier, later)`` frame indices, ``earlier
        < later``, without duplicates, in lexicographic order.

    Raises:
        InvalidInputError: (a ValueError) for fewer than 2 frames, a
            reference outside the frames, or a ``max_step`` below 1.

    >>> frame_pairs(5, max_step=2).tolist()
    [[0, 1], [0, 2], [0, 3], [0, 4], [1, 2], [1, 3], [2, 3], [2, 4], [3, 4]]
    """
    if isinstance(n_frames, bool) or not isinstance(n_frames, int | np.integer) or n_frames < 2:
        raise InvalidInputError(f"drift needs at least 2 time points, got {n_frames!r}.")
    if (
        isinstance(reference, bool)
        or not isinstance(reference, int | np.integer)
        or not 0 <= reference < n_frames
    ):
        raise InvalidInputError(
            f"reference must be a time index from 0 to {n_frames - 1}, got {reference!r}."
        )
    if max_step is not None and (
        isinstance(max_step, bool) or not isinstance(max_step, int | np.integer) or max_step < 1
    ):
        raise InvalidInputError(f"max_step must be None or an integer >= 1, got {max_step!r}.")
    pairs = {(min(reference, t), max(reference, t)) for t in range(n_frames) if t != reference}
    for step in time_steps(n_frames, max_step):
        pairs.update((t, t + step) for t in range(n_frames - step))
    return np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
