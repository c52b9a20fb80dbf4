"""Every frame's drift from the shifts measured between pairs of frames.

The unknowns are the per-frame shifts ``c_t`` (the shift that registers
frame ``t`` onto the reference frame, ``c_reference = 0``); each used pair
``(i, j)`` with measured shift ``m`` (registering frame ``j`` onto frame
``i``) and weight ``w`` asks ``c_j - c_i = m`` with weight ``w``. The
weighted least-squares solution solves the graph Laplacian system (sparse,
the same matrix for every axis) over the frames that used pairs connect to
the reference. Because every frame is tied to the reference directly and to
neighbours at several time scales, the error of a frame is that of a few
averaged measurements, not the sum of all measurements since the reference
(the random walk of a chain).

Outliers: after each solve, the used pair whose measured shift differs most
from the solved one (its residual) is dropped while that residual exceeds
``max_residual_px``, and the frames are solved again (as
`fractal_roi_tasks.stitching.solve.solve_positions` does for tiles, here in
2 or 3 axes and with the reference frame held at 0).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PathSolution:
    """Solved per-frame shifts and the pairs they rest on.

    Attributes:
        shift_px: (T, D) float64 shift registering each frame onto the
            reference, in pixels; NaN for frames no used pair connects to
            the reference.
        connected: (T,) bool: used pairs connect the frame to the reference.
        used: (P,) bool: the pair took part in the final solve.
        rejected: (P,) bool: the pair was dropped as an outlier.
        residual_px: (P,) float64 ``|measured - solved|`` (Euclidean,
            pixels) of every pair; NaN where a frame of the pair is not
            connected or the measurement is not finite.
    """

    shift_px: np.ndarray
    connected: np.ndarray
    used: np.ndarray
    rejected: np.ndarray
    residual_px: np.ndarray


def _solve_once(
    n_frames: int, pairs: np.ndarray, measured: np.ndarray, weight: np.ndarray, reference: int
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least-squares shifts (T, D) (NaN where unconnected) and connected (T,)."""
    from scipy import sparse
    from scipy.sparse import csgraph
    from scipy.sparse.linalg import splu

    first, second = pairs[:, 0], pairs[:, 1]
    dims = measured.shape[1]
    adjacency = sparse.coo_matrix(
        (np.ones(first.size), (first, second)), shape=(n_frames, n_frames)
    ).tocsr()
    _, component = csgraph.connected_components(adjacency, directed=False)
    connected = component == component[reference]
    shift = np.full((n_frames, dims), np.nan)
    shift[reference] = 0.0
    free = np.flatnonzero(connected & (np.arange(n_frames) != reference))
    if free.size == 0:
        return shift, connected
    rows = np.concatenate([first, second, first, second])
    cols = np.concatenate([first, second, second, first])
    values = np.concatenate([weight, weight, -weight, -weight])
    laplacian = sparse.coo_matrix((values, (rows, cols)), shape=(n_frames, n_frames)).tocsc()
    rhs = np.zeros((n_frames, dims))
    np.add.at(rhs, second, weight[:, None] * measured)
    np.add.at(rhs, first, -weight[:, None] * measured)
    # c_reference = 0 drops its row and column (its term on the right is 0).
    reduced = laplacian[free][:, free].tocsc()
    shift[free] = splu(reduced).solve(rhs[free])
    return shift, connected


def solve_path(
    n_frames: int,
    pairs: np.ndarray,
    measured_px: np.ndarray,
    weight: np.ndarray,
    *,
    reference: int = 0,
    max_residual_px: float = 0.5,
) -> PathSolution:
    """Per-frame shifts from pairwise shifts, by weighted least squares with outlier rejection.

    See the module docstring for the method. Pairs with a weight of 0 (or
    a non-finite measurement) are not used.

    Args:
        n_frames: number of frames T.
        pairs: (P, 2) int frame indices ``(i, j)``.
        measured_px: (P, D) float shift registering frame ``j`` onto frame
            ``i`` (``estimate_shift(frames[i], frames[j]).shift``), pixels.
        weight: (P,) float >= 0, e.g. the inverse variance of each pair.
        reference: the frame held at shift 0.
        max_residual_px: a used pair whose measurement differs from the
            solution by more than this (pixels) is dropped.

    Returns:
        A `PathSolution`.

    >>> pairs = np.array([[0, 1], [1, 2], [0, 2]])
    >>> measured = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 2.3]])
    >>> solution = solve_path(3, pairs, measured, np.ones(3))
    >>> solution.shift_px[:, 1].round(2).tolist(), solution.residual_px.round(2).tolist()
    ([0.0, 1.1, 2.2], [0.1, 0.1, 0.1])
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    measured = np.asarray(measured_px, dtype=np.float64).reshape(pairs.shape[0], -1)
    weight = np.asarray(weight, dtype=np.float64).reshape(-1)
    finite = np.isfinite(measured).all(axis=1) & np.isfinite(weight)
    active = finite & (weight > 0)
    rejected = np.zeros(pairs.shape[0], dtype=bool)
    while True:
        use = np.flatnonzero(active)
        shift, connected = _solve_once(
            n_frames, pairs[use], measured[use], weight[use], reference
        )
        solved = shift[pairs[:, 1]] - shift[pairs[:, 0]]
        with np.errstate(invalid="ignore"):
            residual = np.linalg.norm(measured - solved, axis=1)
        # Pairs in a part not connected to the reference have no residual.
        checked = use[np.isfinite(residual[use])]
        if checked.size == 0:
            break
        worst = int(checked[np.argmax(residual[checked])])
        if not residual[worst] > max_residual_px:
            break
        active[worst] = False
        rejected[worst] = True
        logger.debug(
            "drift solve: dropped pair %d-%d, %.2f px from the solution",
            pairs[worst, 0],
            pairs[worst, 1],
            residual[worst],
        )
    return PathSolution(
        shift_px=shift,
        connected=connected,
        used=active,
        rejected=rejected,
        residual_px=residual,
    )
