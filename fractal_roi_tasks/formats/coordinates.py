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

from collections.abc import Sequence

import numpy as np


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
