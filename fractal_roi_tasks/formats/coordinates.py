"""From the core's pixel coordinates to a consumer's, in one place.

The core puts pixel centres on integers (pixel i covers i - 0.5 .. i + 0.5) in
pixels of the pyramid level it worked on, axis order (z,) y, x. Fiji/ImageJ,
QuPath and OME-XML put pixel i at [i, i + 1) (pixel corners on integers,
centres on half-integers), x before y, in pixels of the full-resolution image.
One affine map covers every shape: u = (c + 0.5) * scale, per axis, where
`scale` is the level's pixel size over the full-resolution pixel size (1 at
level 0). An outline on the core's corners (c = k - 0.5) lands on integer
corners; a pixel centre (c = k) lands on the centre k + 0.5 of that pixel.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from fractal_roi_tasks.rois.shapes import Ellipse, Point, Polyline

# Vertices of an ellipse written as a polygon: a multiple of 4 keeps the ends of
# both axes exact (ImageJ's EllipseRoi uses 72 too).
ELLIPSE_VERTICES = 72


def to_corner_based(points: np.ndarray, scale: Sequence[float] | None = None) -> np.ndarray:
    """Map (N, ndim) core coordinates to corner-based full-resolution pixels.

    Args:
        points: (N, ndim) array, axis order as the core ((z,) y, x).
        scale: per-axis factor from the core's level to full resolution, same
            order; None means level 0.

    Returns:
        (N, ndim) float64, same axis order (callers reorder to x, y).

    >>> to_corner_based(np.array([[-0.5, -0.5], [0.0, 2.0]]), (2.0, 2.0)).tolist()
    [[0.0, 0.0], [1.0, 5.0]]
    """
    points = np.asarray(points, dtype=np.float64)
    factor = np.ones(points.shape[-1]) if scale is None else np.asarray(scale, float)
    return (points + 0.5) * factor


def from_corner_based(points: np.ndarray, scale: Sequence[float] | None = None) -> np.ndarray:
    """Inverse of `to_corner_based`."""
    points = np.asarray(points, dtype=np.float64)
    factor = np.ones(points.shape[-1]) if scale is None else np.asarray(scale, float)
    return points / factor - 0.5

def full_resolution_plane(z, scale: np.ndarray) -> int | None:
    """The full-resolution plane holding level plane (or point) `z`; None in 2D.

    The plane whose [k, k + 1) interval holds the corner-based z; on a
    boundary (a downsampled z) the lower one.
    """
    if z is None:
        return None
    corner = float(to_corner_based(np.array([[float(z)]]), scale[:1])[0, 0])
    return max(0, math.ceil(corner) - 1)


def point_plane_xy(point: Point, scale: np.ndarray) -> tuple[int | None, np.ndarray]:
    """A point's full-resolution plane (None in 2D) and its corner-based (x, y)."""
    position = np.asarray(point.position, float)
    xy = to_corner_based(position[None, -2:], scale[-2:])[0, ::-1]
    return (full_resolution_plane(position[0], scale) if len(position) == 3 else None), xy


def scaled_ellipse(ellipse: Ellipse, scale: np.ndarray):
    """(center (x, y), a, b, angle) of an ellipse in corner-based full-resolution pixels."""
    sy, sx = float(scale[-2]), float(scale[-1])
    cy, cx = to_corner_based(np.asarray([ellipse.center], float), scale[-2:])[0]
    a, b = (float(v) for v in ellipse.semi_axes)
    angle = float(ellipse.angle)
    if sy == sx:
        return (cx, cy), a * sx, b * sx, angle
    # Anisotropic scale: map the ellipse's covariance (x, y order) and re-fit.
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    cov = rot @ np.diag([a * a, b * b]) @ rot.T
    stretch = np.diag([sx, sy])
    values, vectors = np.linalg.eigh(stretch @ cov @ stretch)
    major = vectors[:, 1]
    return (
        (cx, cy),
        math.sqrt(values[1]),
        math.sqrt(max(values[0], 0.0)),
        math.atan2(major[1], major[0]),
    )


def is_axis_aligned(a: float, b: float, angle: float) -> bool:
    """True when the ellipse's axes are along x and y (or it is a circle)."""
    return abs((a * a - b * b) * math.sin(angle) * math.cos(angle)) <= 1e-12 * max(a * a, 1e-300)


def ellipse_vertices(center, a: float, b: float, angle: float, n: int = ELLIPSE_VERTICES):
    """(n, 2) x, y points of an ellipse, the first at the end of the major axis.

    `center` is (x, y), `a` and `b` the semi-axes, `angle` the major axis'
    direction from +x towards +y, all in the same (consumer) frame.
    """
    t = 2.0 * np.pi * np.arange(n) / n
    cos_t, sin_t = np.cos(t), np.sin(t)
    ca, sa = math.cos(angle), math.sin(angle)
    x = center[0] + a * cos_t * ca - b * sin_t * sa
    y = center[1] + a * cos_t * sa + b * sin_t * ca
    return np.stack([x, y], axis=1)


def polyline_runs(line: Polyline, scale: np.ndarray) -> Iterator[tuple[int | None, np.ndarray]]:
    """A path as single-plane runs: (full-resolution plane or None, (N, 2) x, y).

    Single-plane consumers get one run per stretch of constant z; a closed
    path repeats its first vertex. Coordinates are corner-based, full
    resolution (see `to_corner_based`).
    """
    points = np.asarray(line.points, float)
    if len(points) == 0:
        return
    if line.closed:
        points = np.concatenate([points, points[:1]])
    if points.shape[1] == 3:
        runs = np.split(points, np.flatnonzero(np.diff(points[:, 0]) != 0) + 1)
    else:
        runs = [points]
    for run in runs:
        xy = to_corner_based(run[:, -2:], scale[-2:])[:, ::-1]
        plane = full_resolution_plane(run[0, 0], scale) if run.shape[1] == 3 else None
        yield plane, xy
