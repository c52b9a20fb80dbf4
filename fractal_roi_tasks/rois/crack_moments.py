"""Area, centroid, bounding box and perimeter of every object, without tracing outlines.

`measure.plane_moments` gets these from the traced rings (Green's theorem over
each ring's vertices); a ROI that is only a point needs no rings, and tracing
them is most of the time. Here they come straight from the crack edges
(`cracks.plane_cracks`), with the very same float64 results:

- area and pixel sums per column run: a top edge (east side) opens a run of
  an object's pixels in its column at row r, a bottom edge (west side)
  closes one. So count = sum(r_bottom + 1) - sum(r_top) and the sum of rows
  is sum(T(r_bottom)) - sum(T(r_top - 1)), T(n) = n (n + 1) / 2: exact int64.
  The rings' Green sums equal 6 x these sums whenever no float64 rounding
  happens in them, and then `plane_moments`' centroid (sum / 6.0 / area) is
  exactly sum / count. Every term there is a multiple of 1/4 below
  4 V Y X max(Y, X) (V vertices, corners within Y rows and X columns of the
  origin), so rounding cannot happen while V times that bound stays below
  2**51. The few objects beyond it are traced as before (`_traced`).
- bounding box: extremes of the edges' pixels per side.
- perimeter: `PlaneCracks.perimeter`, what `trace_rings` uses.

Covariances need the rings' second moments and are NaN here: the point
path never uses them.
"""

from __future__ import annotations

import logging

import numpy as np

from fractal_roi_tasks.rois.cracks import PlaneCracks, plane_cracks
from fractal_roi_tasks.rois.measure import PlaneMoments, plane_moments

logger = logging.getLogger(__name__)

EXACT_BOUND = 2.0**51
"""Green sums below this (in absolute terms, multiples of 1/4) are exact in float64."""


def crack_moments(label_plane: np.ndarray) -> PlaneMoments:
    """`plane_moments(trace_rings(plane))` for a point ROI: same floats, covariance NaN.

    Args:
        label_plane: (Y, X) integer array, 0 is background.

    Returns:
        `PlaneMoments` whose labels, area, centroid, bbox and perimeter equal
        those `plane_moments(trace_rings(label_plane))` gives, bit for bit;
        covariance is all NaN.

    Example:
        >>> plane = np.zeros((5, 5), np.uint16)
        >>> plane[1:4, 2] = 3
        >>> m = crack_moments(plane)
        >>> m.area.tolist(), m.centroid.tolist(), m.bbox_start.tolist(), m.perimeter.tolist()
        ([3.0], [[2.0, 2.0]], [[1, 2]], [6.828427124746191])
    """
    if label_plane.ndim != 2:
        raise ValueError(f"label_plane must be 2D, got shape {label_plane.shape}.")
    cracks = plane_cracks(label_plane)
    if not any(len(v) for v in cracks.values):
        return _empty(label_plane.dtype)
    labels, rank = _labels_and_rank(cracks, label_plane.dtype)
    n = len(labels)
    pw = cracks.row_length
    # Padded (row, col) of each edge's pixel, per side; unpadded = padded - 1.
    rows, cols = zip(*(np.divmod(p, pw) for p in cracks.pixels))
    top_r, bottom_r = rows[0] - 1, rows[1] - 1

    count = _int_sum(n, (rank[0], -top_r), (rank[1], bottom_r + 1))
    row_sum = _int_sum(n, (rank[0], -(top_r * (top_r - 1) // 2)),
                       (rank[1], bottom_r * (bottom_r + 1) // 2))
    col_sum = _int_sum(n, (rank[0], -top_r * (cols[0] - 1)),
                       (rank[1], (bottom_r + 1) * (cols[1] - 1)))

    start = np.full((n, 2), np.iinfo(np.int64).max)
    stop = np.full((n, 2), np.iinfo(np.int64).min)
    np.minimum.at(start[:, 0], rank[0], top_r)  # topmost pixels have a top edge
    np.maximum.at(stop[:, 0], rank[1], bottom_r + 1)
    np.minimum.at(start[:, 1], rank[2], cols[2] - 1)  # leftmost: a left edge
    np.maximum.at(stop[:, 1], rank[3], cols[3])

    n_vertices = np.zeros(n, np.int64)
    for side in range(4):
        n_vertices += np.bincount(rank[side][~cracks.straight[side]], minlength=n)
    y_max, x_max = stop[:, 0].astype(float), stop[:, 1].astype(float)
    bound = 4.0 * n_vertices * y_max * x_max * np.maximum(y_max, x_max)
    inexact = bound >= EXACT_BOUND / 2  # a factor 2 to spare for this bound's own rounding

    area = count.astype(np.float64)
    centroid = np.stack([row_sum.astype(np.float64), col_sum.astype(np.float64)], axis=1)
    centroid /= area[:, None]
    perimeter = cracks.perimeter(labels)
    if inexact.any():
        _traced(label_plane, labels, inexact, area, centroid)
    return PlaneMoments(
        labels=labels,
        area=area,
        centroid=centroid,
        covariance=np.full((n, 2, 2), np.nan),
        bbox_start=start,
        bbox_stop=stop,
        perimeter=perimeter,
    )


def _labels_and_rank(cracks: PlaneCracks, dtype):
    """Sorted labels present, and per side each edge's index into them."""
    vertex_values = np.concatenate([v[~s] for v, s in zip(cracks.values, cracks.straight)])
    top = int(vertex_values.max())
    n_pixels = (len(cracks.flat) // cracks.row_length - 2) * (cracks.row_length - 2)
    if top < max(4 * n_pixels, 2**16):
        present = np.bincount(vertex_values.astype(np.int64), minlength=top + 1) > 0
        labels = np.flatnonzero(present).astype(dtype)
        lookup = np.zeros(top + 1, np.int64)
        lookup[labels] = np.arange(len(labels))
        return labels, [lookup[v] for v in cracks.values]
    labels = np.unique(vertex_values)  # sparse huge ids
    return labels, [np.searchsorted(labels, v) for v in cracks.values]


def _int_sum(n, *parts) -> np.ndarray:
    """(n,) int64 sums of the weights per index (wrapping adds: exact whenever the sum fits)."""
    total = np.zeros(n, np.int64)
    for index, weights in parts:
        np.add.at(total, index, weights.astype(np.int64, copy=False))
    return total


def _traced(label_plane, labels, which, area, centroid) -> None:
    """Area and centroid of the objects `which` from the traced rings, in place."""
    logger.debug("%d objects too large for exact edge sums: traced", int(which.sum()))
    from fractal_roi_tasks.rois.boundaries import trace_rings

    traced = plane_moments(trace_rings(label_plane))
    idx = np.searchsorted(traced.labels, labels[which])
    area[which] = traced.area[idx]
    centroid[which] = traced.centroid[idx]


def _empty(dtype) -> PlaneMoments:
    zeros = np.zeros((0, 2))
    return PlaneMoments(
        np.zeros(0, dtype), np.zeros(0), zeros, np.zeros((0, 2, 2)),
        zeros.astype(np.int64), zeros.astype(np.int64), np.zeros(0),
    )
