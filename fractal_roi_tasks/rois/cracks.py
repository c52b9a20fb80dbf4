"""The crack edges of a 2D label plane and which way each outline turns after them.

A crack edge lies between two pixels of different labels (the plane is padded
with background); each non-zero side of it is one directed edge of that
label's outline, with the object on its right (see `boundaries`). Where an
edge goes next depends only on the two pixels ahead of its end corner: left
if the ahead-left pixel is the object, straight on if only the ahead-right
one is, else right. So turns, and with them the perimeter, need no tracing.

Both `boundaries.trace_rings` (which goes on to link the turning edges into
rings) and `crack_moments` (which does not) start here, so the two give the
same perimeter bit for bit: the same weights summed in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Length of the mid-point contour (marching squares at 0.5) along an edge
# followed by a turn: half a diagonal; along one followed by a straight edge: 1.
HALF_SQRT2 = float(np.sqrt(0.5))


@dataclass(frozen=True)
class PlaneCracks:
    """Directed boundary edges of one plane, per side of the pixel they bound.

    Sides are 0 east (top edge of a pixel), 1 west (bottom edge), 2 north
    (left edge), 3 south (right edge); within a side the edges are in raster
    order of their pixel, the order `boundaries._directed_edges` lists them.

    Attributes:
        flat: the plane padded with one background pixel all round, raveled.
        row_length: padded row length (width + 2); pixel (r, c) of the plane
            is ``flat[(r + 1) * row_length + c + 1]``.
        pixels: per side, (E_s,) int64 flat padded index of each edge's pixel.
        values: per side, (E_s,) label of each edge.
        goes_left: per side, (E_s,) True where the outline turns left after the edge.
        straight: per side, (E_s,) True where it goes straight on.
    """

    flat: np.ndarray
    row_length: int
    pixels: tuple[np.ndarray, ...]
    values: tuple[np.ndarray, ...]
    goes_left: tuple[np.ndarray, ...]
    straight: tuple[np.ndarray, ...]

    def perimeter(self, object_labels: np.ndarray) -> np.ndarray:
        """(n,) contour length per label of `object_labels` (sorted, all present).

        Each edge adds 1 if the outline goes straight on after it, else half a
        diagonal, summed in edge order (sides end to end), so any caller gets
        the same float64 sums.
        """
        all_values = np.concatenate(self.values)
        n_pixels = (len(self.flat) // self.row_length - 2) * (self.row_length - 2)
        if int(object_labels[-1]) < max(4 * n_pixels, 2**16):
            lookup = np.zeros(int(object_labels[-1]) + 1, np.int64)
            lookup[object_labels] = np.arange(len(object_labels))
            rank = lookup[all_values]
        else:  # sparse huge ids
            rank = np.searchsorted(object_labels, all_values)
        weights = np.concatenate([np.where(s, 1.0, HALF_SQRT2) for s in self.straight])
        return np.bincount(rank, weights=weights, minlength=len(object_labels))


def plane_cracks(label_plane: np.ndarray) -> PlaneCracks:
    """Every directed boundary edge of a 2D label plane and its turn.

    Example:
        >>> plane = np.zeros((3, 4), np.uint8)
        >>> plane[1, 1:3] = 4
        >>> cracks = plane_cracks(plane)
        >>> [len(p) for p in cracks.pixels], cracks.perimeter(np.array([4])).round(3).tolist()
        ([2, 2, 1, 1], [4.828])
    """
    height, width = label_plane.shape
    pw = width + 2
    padded = np.zeros((height + 2, pw), dtype=label_plane.dtype)
    padded[1:-1, 1:-1] = label_plane  # np.pad is several times slower here
    flat = padded.ravel()
    # Cracks between flat pixels q and q + pw (horizontal) or q and q + 1
    # (vertical; never across a row end, where both pixels are padding).
    upper = np.flatnonzero(flat[pw:] != flat[:-pw])
    left = np.flatnonzero(flat[1:] != flat[:-1])
    # Per side: (ahead-left, ahead-right) pixel offsets from the edge's pixel.
    ahead = ((1 - pw, 1), (pw - 1, -1), (-pw - 1, -pw), (pw + 1, pw))
    pixels, values, goes_left, straight = [], [], [], []
    for side, candidates in enumerate((upper + pw, upper, left + 1, left)):
        value = flat[candidates]
        keep = value != 0
        p, value = candidates[keep], value[keep]
        left_turn = flat[p + ahead[side][0]] == value
        pixels.append(p)
        values.append(value)
        goes_left.append(left_turn)
        straight.append(~left_turn & (flat[p + ahead[side][1]] == value))
    return PlaneCracks(flat, pw, tuple(pixels), tuple(values), tuple(goes_left), tuple(straight))
