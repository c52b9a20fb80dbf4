"""Which tiles overlap, and the window of each tile to read for measuring a pair.

The first step of tile placement: `link_windows` lists the pairs of tiles
whose prior (stage) positions overlap and the window of each tile to read
for the pair (`fractal_roi_tasks.stitching.pairwise` measures the pair on
them, `fractal_roi_tasks.stitching.solve` places all tiles).

Frames and units: pixels of the tiles, axis order (y, x). A tile's
*position* is where its pixel (0, 0) lies in a common mosaic frame (the
frame of the prior positions); the *offset* of a pair is the position of the
second tile minus that of the first.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkWindow:
    """Two overlapping tiles and the window of each to read for measuring their offset.

    Attributes:
        first: index of the first tile (``first < second``).
        second: index of the second tile.
        first_box: (y, x) slices of the first tile to read, in its own pixels:
            the prior overlap plus a search margin, clipped to the tile.
        second_box: the same for the second tile.
        prior_offset_px: prior position of the second tile minus prior
            position of the first, (y, x) in pixels.
    """

    first: int
    second: int
    first_box: tuple[slice, slice]
    second_box: tuple[slice, slice]
    prior_offset_px: tuple[float, float]

    @property
    def first_shape(self) -> tuple[int, int]:
        """(height, width) of the first window in pixels."""
        return tuple(s.stop - s.start for s in self.first_box)

    @property
    def second_shape(self) -> tuple[int, int]:
        """(height, width) of the second window in pixels."""
        return tuple(s.stop - s.start for s in self.second_box)


def check_tile_shapes(tile_shapes: object, count: int) -> np.ndarray:
    """(N, 2) int64 tile shapes from one (2,) shape for all or one per tile, else an error."""
    shapes = np.asarray(tile_shapes)
    if shapes.shape == (2,):
        shapes = np.broadcast_to(shapes, (count, 2))
    if (
        shapes.shape != (count, 2)
        or shapes.dtype.kind not in "iu"
        and not (shapes.dtype.kind == "f" and np.all(shapes == np.round(shapes)))
    ):
        raise InvalidInputError(
            f"tile_shapes must be (height, width) integers, one pair for all tiles (2,) "
            f"or one per tile ({count}, 2); got shape {shapes.shape}, dtype {shapes.dtype}."
        )
    shapes = shapes.astype(np.int64)
    if count and shapes.min() < 1:
        raise InvalidInputError(f"tile_shapes must be >= 1, got a minimum of {shapes.min()}.")
    return shapes


def check_prior(prior_px: object) -> np.ndarray:
    """(N, 2) float64 finite prior positions, else an error."""
    prior = np.asarray(prior_px, dtype=np.float64)
    if prior.ndim != 2 or prior.shape[1] != 2:
        raise InvalidInputError(
            f"prior_px must be an (N, 2) array of (y, x) tile positions in pixels, "
            f"got shape {prior.shape}."
        )
    if not np.isfinite(prior).all():
        raise InvalidInputError("prior_px contains NaN or infinite positions.")
    return prior


def check_positive(value: float, name: str, *, allow_zero: bool = True) -> float:
    """``value`` as a finite float >= 0 (> 0 unless ``allow_zero``), else an error naming ``name``."""
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(f"{name} must be a number, got {value!r}.") from err
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        expected = ">= 0" if allow_zero else "> 0"
        raise InvalidInputError(f"{name} must be a finite number {expected}, got {value!r}.")
    return number


def search_radius(max_shift_px: float) -> int:
    """Whole pixels searched on each side of the prior offset: one more than ``max_shift_px``.

    The extra pixel lets a match just beyond ``max_shift_px`` be seen (and
    rejected as such) rather than mistaken for one on the edge of the search.

    >>> search_radius(10.0), search_radius(2.5)
    (11, 4)
    """
    return int(math.ceil(max_shift_px)) + 1


def link_windows(
    prior_px: np.ndarray,
    tile_shapes: np.ndarray,
    *,
    max_shift_px: float,
    min_overlap_px: float = 4.0,
    include_corners: bool = False,
) -> list[LinkWindow]:
    """The pairs of tiles whose prior boxes overlap, and the window of each to read.

    Pairs are found with a k-d tree on the tile centres (Chebyshev distance),
    so thousands of tiles take milliseconds. A pair is linked when its prior
    boxes overlap by at least ``min_overlap_px`` in both y and x and, unless
    ``include_corners``, along at least half the smaller tile in y or in x:
    diagonal neighbours of a grid, which share only a corner, are left out
    (their small corner overlaps, measured, made placement less accurate:
    0.16 instead of 0.09 px on dense texture, 15% overlap). Each
    window is the prior overlap grown by ``search_radius(max_shift_px) + 1``
    pixels on every side (the search and the sub-pixel step need that much
    to see the whole true overlap), clipped to the tile, with fractional
    bounds rounded outwards.

    Args:
        prior_px: (N, 2) float (y, x) of each tile's top-left pixel in a
            common mosaic frame (e.g. from the stage), in pixels.
        tile_shapes: (N, 2) integer (height, width) of each tile, or (2,) for
            all tiles.
        max_shift_px: largest expected error of the prior offset of two
            tiles, per axis, in pixels.
        min_overlap_px: smallest prior overlap (in each of y and x) that
            makes a pair, in pixels.
        include_corners: also link tiles that overlap only at a corner.

    Returns:
        One `LinkWindow` per pair, ``first < second``, sorted by ``(first, second)``.

    Raises:
        InvalidInputError: (a ValueError) for positions or shapes of the wrong
            shape, non-finite positions, or a negative option.

    >>> windows = link_windows(np.array([[0.0, 0.0], [0.0, 90.0]]), np.array([100, 100]), max_shift_px=3)
    >>> w = windows[0]
    >>> (w.first, w.second), w.first_box, w.second_box, w.prior_offset_px
    ((0, 1), (slice(0, 100, None), slice(85, 100, None)), (slice(0, 100, None), slice(0, 15, None)), (0.0, 90.0))
    """
    from scipy.spatial import cKDTree

    prior = check_prior(prior_px)
    count = prior.shape[0]
    shapes = check_tile_shapes(tile_shapes, count)
    max_shift_px = check_positive(max_shift_px, "max_shift_px")
    min_overlap_px = check_positive(min_overlap_px, "min_overlap_px", allow_zero=False)
    if count < 2:
        return []
    centres = prior + shapes / 2.0
    tree = cKDTree(centres)
    pairs = tree.query_pairs(float(shapes.max()), p=np.inf, output_type="ndarray")
    if pairs.size == 0:
        logger.debug("link_windows: %d tiles, no pairs", count)
        return []
    pairs = np.sort(pairs, axis=1)
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    first, second = pairs[:, 0], pairs[:, 1]
    low = np.maximum(prior[first], prior[second])
    high = np.minimum(prior[first] + shapes[first], prior[second] + shapes[second])
    keep = np.all(high - low >= min_overlap_px, axis=1)
    if not include_corners:
        keep &= np.any(high - low >= 0.5 * np.minimum(shapes[first], shapes[second]), axis=1)
    first, second, low, high = first[keep], second[keep], low[keep], high[keep]
    margin = search_radius(max_shift_px) + 1

    def box(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        start = np.floor(low - margin - prior[index] + 1e-9).astype(np.int64)
        stop = np.ceil(high + margin - prior[index] - 1e-9).astype(np.int64)
        return np.clip(start, 0, shapes[index]), np.clip(stop, 0, shapes[index])

    first_start, first_stop = box(first)
    second_start, second_stop = box(second)
    offsets = prior[second] - prior[first]
    windows = [
        LinkWindow(
            first=int(first[k]),
            second=int(second[k]),
            first_box=tuple(slice(int(a), int(b)) for a, b in zip(first_start[k], first_stop[k])),
            second_box=tuple(
                slice(int(a), int(b)) for a, b in zip(second_start[k], second_stop[k])
            ),
            prior_offset_px=(float(offsets[k, 0]), float(offsets[k, 1])),
        )
        for k in range(first.size)
    ]
    logger.debug("link_windows: %d tiles, %d overlapping pairs", count, len(windows))
    return windows
