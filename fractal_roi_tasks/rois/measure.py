"""Per-object geometry from the exact outlines, all objects at once.

An object is the union of its pixels' unit squares, and its crack outline
(see `boundaries`) bounds exactly that union. Green's theorem turns the area
integrals of x, y, x², xy, y² over it into sums over the outline's vertices,
so area, centroid and second moments of every object come from a few
`np.bincount` calls over the vertices: no second sweep over the pixels. The
results equal pixel sums exactly (the centroid of a pixel's square is its
centre) plus 1/12 on the variances, the spread of a square around its centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.rois.boundaries import Rings


@dataclass(frozen=True)
class PlaneMoments:
    """Geometry of every object of one 2D plane, pixel units, (y, x) order.

    Attributes:
        labels: (n,) label values, sorted.
        area: (n,) pixel count.
        centroid: (n, 2) mean pixel centre.
        covariance: (n, 2, 2) second central moments of the pixel squares.
        bbox_start: (n, 2) int64 first pixel index of the bounding box.
        bbox_stop: (n, 2) int64 one past the last pixel index.
        perimeter: (n,) contour length (see `Rings.perimeter`).
    """

    labels: np.ndarray
    area: np.ndarray
    centroid: np.ndarray
    covariance: np.ndarray
    bbox_start: np.ndarray
    bbox_stop: np.ndarray
    perimeter: np.ndarray


def plane_moments(rings: Rings) -> PlaneMoments:
    """Measure every object of a plane from its rings.

    Example:
        >>> from fractal_roi_tasks.rois.boundaries import trace_rings
        >>> plane = np.zeros((5, 5), np.uint16)
        >>> plane[1:4, 2] = 3
        >>> m = plane_moments(trace_rings(plane))
        >>> m.area.tolist(), m.centroid.tolist(), m.bbox_start.tolist()
        ([3.0], [[2.0, 2.0]], [[1, 2]])
    """
    labels = rings.object_labels
    n = len(labels)
    pts = rings.points
    if n == 0:
        zeros = np.zeros((0, 2))
        return PlaneMoments(
            labels, np.zeros(0), zeros, np.zeros((0, 2, 2)), zeros.astype(np.int64),
            zeros.astype(np.int64), np.zeros(0),
        )
    sizes = np.diff(rings.bounds)
    ring_of_vertex = np.repeat(np.arange(len(sizes)), sizes)
    nxt = np.arange(len(pts)) + 1
    nxt[rings.bounds[1:] - 1] = rings.bounds[:-1]
    y0, x0 = pts[:, 0], pts[:, 1]
    y1, x1 = pts[nxt, 0], pts[nxt, 1]
    cross = x0 * y1 - x1 * y0
    ring_obj = np.searchsorted(labels, rings.labels)
    obj = ring_obj[ring_of_vertex]

    def total(weights):
        return np.bincount(obj, weights=weights, minlength=n)

    area = total(cross) / 2.0
    mean_y = total((y0 + y1) * cross) / 6.0 / area
    mean_x = total((x0 + x1) * cross) / 6.0 / area
    yy = total((y0 * y0 + y0 * y1 + y1 * y1) * cross) / 12.0 / area
    xx = total((x0 * x0 + x0 * x1 + x1 * x1) * cross) / 12.0 / area
    xy = total((x0 * y1 + 2 * x0 * y0 + 2 * x1 * y1 + x1 * y0) * cross) / 24.0 / area
    cov = np.empty((n, 2, 2))
    cov[:, 0, 0] = yy - mean_y**2
    cov[:, 1, 1] = xx - mean_x**2
    cov[:, 0, 1] = cov[:, 1, 0] = xy - mean_x * mean_y

    # Extremes per ring first (rings are contiguous runs of vertices), then
    # per object over its few rings: min and max are exact in any order.
    lo = np.full((n, 2), np.inf)
    hi = np.full((n, 2), -np.inf)
    np.minimum.at(lo, ring_obj, np.minimum.reduceat(pts, rings.bounds[:-1], axis=0))
    np.maximum.at(hi, ring_obj, np.maximum.reduceat(pts, rings.bounds[:-1], axis=0))
    return PlaneMoments(
        labels=labels,
        area=np.rint(area),
        centroid=np.stack([mean_y, mean_x], axis=1),
        covariance=cov,
        bbox_start=np.rint(lo + 0.5).astype(np.int64),
        bbox_stop=np.rint(hi + 0.5).astype(np.int64),
        perimeter=rings.perimeter,
    )


def ellipse_axes(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Semi-axes and orientation of the ellipses with 2D covariances `cov`.

    Args:
        cov: (n, 2, 2) covariance in (y, x) order, pixels squared.

    Returns:
        (major, minor, angle): semi-axes in pixels (2 * sqrt(eigenvalue), the
        exact semi-axes of a filled ellipse), and the direction of the major
        axis in radians from +x towards +y.
    """
    vyy, vxx, vxy = cov[:, 0, 0], cov[:, 1, 1], cov[:, 0, 1]
    mean = (vyy + vxx) / 2.0
    radius = np.sqrt(((vxx - vyy) / 2.0) ** 2 + vxy**2)
    major = 2.0 * np.sqrt(mean + radius)
    minor = 2.0 * np.sqrt(np.maximum(mean - radius, 0.0))
    angle = 0.5 * np.arctan2(2.0 * vxy, vxx - vyy)
    return major, minor, angle
