"""How ImageJ and QuPath turn an outline back into pixels, for the format tests.

The rule both consumers use (ImageJ: ``ij.process.PolygonFiller``, used by
PolygonRoi and, with all subpaths at once, ShapeRoi; QuPath: Java2D filling
of its JTS shapes) in consumer coordinates, where pixel (x, y) covers
[x, x + 1) x [y, y + 1): pixel (x, y) is filled when its centre
(x + 0.5, y + 0.5) is inside the outline, by the even-odd rule over all the
rings of the ROI (a composite ROI's subpaths; a polygon's exterior and
holes). Centres exactly on an edge do not occur for our outlines, which run
along pixel edges.
"""

import numpy as np


def fill_even_odd(rings, shape) -> np.ndarray:
    """Boolean (rows, cols) image of the pixels whose centres the rings enclose.

    Args:
        rings: iterable of (N, 2) (x, y) vertex arrays in consumer coordinates;
            each closes from its last vertex to its first (a repeated first
            vertex is fine).
        shape: (rows, cols) of the image.

    A ray from each pixel centre towards +x crosses the rings an odd number
    of times exactly when the pixel is inside; crossings are counted per row
    with one cumulative sum.
    """
    rows, cols = shape
    count = np.zeros((rows, cols + 1), np.int64)
    for ring in rings:
        ring = np.asarray(ring, np.float64)
        xa, ya = ring[:, 0], ring[:, 1]
        xb, yb = np.roll(xa, -1), np.roll(ya, -1)
        for x0, y0, x1, y1 in zip(xa, ya, xb, yb):
            if y0 == y1:
                continue
            lo, hi = min(y0, y1), max(y0, y1)
            # rows r whose centre r + 0.5 lies in [lo, hi) of the edge
            first = max(0, int(np.ceil(lo - 0.5)))
            last = min(rows, int(np.ceil(hi - 0.5)))
            if first >= last:
                continue
            centre_y = np.arange(first, last) + 0.5
            cross_x = x0 + (centre_y - y0) * (x1 - x0) / (y1 - y0)
            # pixels with centre c + 0.5 < cross_x see this crossing on their ray
            k = np.clip(np.ceil(cross_x - 0.5).astype(np.int64), 0, cols)
            r = np.arange(first, last)
            np.add.at(count, (r, np.zeros_like(r)), 1)
            np.add.at(count, (r, k), -1)
    return (np.cumsum(count, axis=1)[:, :cols] % 2) == 1


def paint(image: np.ndarray, mask: np.ndarray, label: int) -> None:
    """Write `label` where `mask`, refusing to overwrite another object."""
    clash = np.unique(image[mask & (image != 0)])
    if clash.size:
        raise AssertionError(f"object {label} covers pixels of {clash.tolist()}")
    image[mask] = label
