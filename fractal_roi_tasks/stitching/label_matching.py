"""Which ids of two overlapping tiles are the same object.

`tile_overlaps` lists the regions tiles share at whole-pixel positions;
`overlap_matches` pairs the ids of two patches of one region that cover the
same pixels; `pair_matches` keeps the pairs whose objects both reach the
seam between the two tiles.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.stitching.label_ids import distinct_ids, integer_labels, unsigned_ids
from fractal_roi_tasks.stitching.label_ownership import owner_block
from fractal_roi_tasks.stitching.mosaic import Mosaic

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TileOverlap:
    """The region two tiles share at whole-pixel positions.

    Attributes:
        first: the lower tile index.
        second: the higher tile index.
        first_box: (y, x) slices of the region in ``first``'s own pixels.
        second_box: (y, x) slices of the region in ``second``'s own pixels
            (same size).
        region: (y, x) slices of the region in mosaic pixels.
    """

    first: int
    second: int
    first_box: tuple[slice, slice]
    second_box: tuple[slice, slice]
    region: tuple[slice, slice]


def tile_overlaps(mosaic: Mosaic) -> list[TileOverlap]:
    """Every pair of tiles whose footprints (at rounded positions) overlap.

    Diagonal neighbours that share only a corner are included: an object at
    the corner of four tiles is then matched between every two of them.

    Args:
        mosaic: the tiles' placement.

    Returns:
        One `TileOverlap` per pair, sorted by ``(first, second)``.

    >>> from fractal_roi_tasks.stitching.fusion import mosaic_geometry
    >>> mosaic = mosaic_geometry([[0, 0], [0, 8], [0, 20]], (10, 10))
    >>> [(o.first, o.second, o.first_box[1], o.second_box[1]) for o in tile_overlaps(mosaic)]
    [(0, 1, slice(8, 10, None), slice(0, 2, None))]
    """
    starts = mosaic.starts_px
    stops = starts + mosaic.tile_shapes
    overlaps = []
    for first in range(mosaic.n_tiles - 1):
        low = np.maximum(starts[first], starts[first + 1 :])
        high = np.minimum(stops[first], stops[first + 1 :])
        for k in np.flatnonzero(np.all(high > low, axis=1)).tolist():
            second = first + 1 + k
            region = (
                slice(int(low[k, 0]), int(high[k, 0])),
                slice(int(low[k, 1]), int(high[k, 1])),
            )
            overlaps.append(
                TileOverlap(
                    first=first,
                    second=second,
                    first_box=_shifted(region, starts[first]),
                    second_box=_shifted(region, starts[second]),
                    region=region,
                )
            )
    return overlaps


def _shifted(box: tuple[slice, slice], start: np.ndarray) -> tuple[slice, slice]:
    return tuple(slice(s.start - int(o), s.stop - int(o)) for s, o in zip(box, start, strict=True))


def overlap_matches(
    first_labels: np.ndarray,
    second_labels: np.ndarray,
    *,
    min_overlap: float = 0.5,
    first_at_seam: np.ndarray | None = None,
    second_at_seam: np.ndarray | None = None,
) -> np.ndarray:
    """Pairs of ids of two label patches of the same region that are one object.

    Two objects are the same when their intersection covers at least
    ``min_overlap`` of the smaller of their two parts in the region:
    ``|A & B| / min(|A|, |B|) >= min_overlap``. Unlike the intersection over
    union, this holds for an object that one tile sees whole and the other
    cut by its border, or split into pieces.

    Optionally (`pair_matches` does it), only objects at the seam between
    the two tiles are matched: an object of the first patch must have a
    pixel in ``first_at_seam``, one of the second a pixel in
    ``second_at_seam``. Only objects that both tiles show in the fused image
    need a match; the rule keeps a thin sliver of an object at the edge of
    the region, moved by a small registration error onto its neighbour, from
    merging the two.

    Args:
        first_labels: labels of the region from one tile, (..., Y, X) (e.g.
            (Y, X) or (Z, Y, X)), integer dtype, 0 is background.
        second_labels: labels of the same region from another tile, same
            shape, aligned pixel for pixel.
        min_overlap: the threshold, in (0, 1].
        first_at_seam: optional (Y, X) bool: where the first patch's objects
            must reach to be matched.
        second_at_seam: optional (Y, X) bool, the same for the second patch.

    Returns:
        (K, 2) uint64 pairs ``(id in first, id in second)``, sorted. An id may
        appear in several pairs.

    Raises:
        InvalidInputError: (a ValueError) for patches of different shapes,
            non-integer or negative labels, seam masks of another (Y, X)
            shape, or a threshold outside (0, 1].

    >>> first = np.array([[1, 1, 0, 2, 2, 2]])
    >>> second = np.array([[5, 5, 5, 5, 0, 0]])   # 5 is cut by second's border
    >>> overlap_matches(first, second).tolist()
    [[1, 5]]
    """
    first = integer_labels(first_labels, "first_labels")
    second = integer_labels(second_labels, "second_labels")
    if first.shape != second.shape or first.ndim < 1:
        raise InvalidInputError(
            f"first_labels {first.shape} and second_labels {second.shape} must cover the same "
            "region with the same shape."
        )
    if not 0 < min_overlap <= 1:
        raise InvalidInputError(f"min_overlap must be in (0, 1], got {min_overlap!r}.")
    seams = []
    for name, mask in (("first_at_seam", first_at_seam), ("second_at_seam", second_at_seam)):
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if first.ndim < 2 or mask.shape != first.shape[-2:]:
                raise InvalidInputError(
                    f"{name} has shape {mask.shape}; it must be the (Y, X) shape of the labels, "
                    f"{first.shape[-2:]}."
                )
        seams.append(mask)
    first = unsigned_ids(first, "first_labels")
    second = unsigned_ids(second, "second_labels")
    first_ids, first_index, first_area = distinct_ids(first.ravel())
    second_ids, second_index, second_area = distinct_ids(second.ravel())
    both = (first.ravel() != 0) & (second.ravel() != 0)
    if not both.any():
        return np.zeros((0, 2), np.uint64)
    pair_codes = first_index[both] * len(second_ids) + second_index[both]
    codes, _, shared = distinct_ids(pair_codes)
    a, b = np.divmod(codes, len(second_ids))
    # Each kept pair is the largest intersection of at least one of its two objects.
    best_a = np.zeros(len(first_ids), shared.dtype)
    best_b = np.zeros(len(second_ids), shared.dtype)
    np.maximum.at(best_a, a, shared)
    np.maximum.at(best_b, b, shared)
    keep = shared >= min_overlap * np.minimum(first_area[a], second_area[b])
    keep &= (shared == best_a[a]) | (shared == best_b[b])
    pairs = np.stack([first_ids[a[keep]], second_ids[b[keep]]], axis=1).astype(np.uint64)
    for column, (labels, mask) in enumerate(zip((first, second), seams, strict=True)):
        if mask is not None:
            pairs = pairs[np.isin(pairs[:, column], labels[..., mask])]
    return pairs


def _near(mask: np.ndarray, distance_px: int) -> np.ndarray:
    """``mask`` grown by ``distance_px`` pixels along y, x and the diagonals."""
    from scipy import ndimage

    if distance_px == 0 or not mask.any():
        return mask
    return ndimage.maximum_filter(mask.view(np.uint8), size=2 * distance_px + 1) > 0


def pair_matches(
    mosaic: Mosaic,
    overlap: TileOverlap,
    first_labels: np.ndarray,
    second_labels: np.ndarray,
    *,
    min_overlap: float = 0.5,
    seam_tolerance_px: int = 4,
) -> np.ndarray:
    """`overlap_matches` of two tiles' labels over their shared region, at their seam.

    An object of one tile is at the seam when it comes within
    ``seam_tolerance_px`` of a pixel the other tile shows in the fused image
    (inside the region or just outside it).

    Args:
        mosaic: the tiles' placement (positions are rounded here).
        overlap: the region, from `tile_overlaps`.
        first_labels: labels of tile ``overlap.first`` read at
            ``overlap.first_box``: (..., Y, X), integer dtype.
        second_labels: labels of tile ``overlap.second`` read at
            ``overlap.second_box``, same shape.
        min_overlap: see `overlap_matches`.
        seam_tolerance_px: how far (pixels, along y, x or a diagonal) an
            object may stay from the other tile's pixels and still be at the
            seam: about the largest registration error expected, >= 0.

    Returns:
        (K, 2) uint64 pairs ``(id in first, id in second)``, for
        ``matches[(overlap.first, overlap.second)]`` of `merge_labels`.

    Raises:
        InvalidInputError: (a ValueError) as `overlap_matches`, or for a
            negative tolerance.

    >>> from fractal_roi_tasks.stitching.fusion import mosaic_geometry
    >>> mosaic = mosaic_geometry([[0, 0], [0, 10]], (1, 20))
    >>> overlap = tile_overlaps(mosaic)[0]
    >>> (owner_block(mosaic, overlap.region) - overlap.first).tolist()   # the seam
    [[0, 0, 0, 0, 0, 1, 1, 1, 1, 1]]
    >>> first = np.array([[4, 0, 3, 3, 3, 3, 3, 3, 0, 0]])   # 4: the edge of an object
    >>> second = np.array([[8, 8, 0, 7, 7, 7, 7, 7, 7, 0]])  # seen 1 px off: on 8
    >>> overlap_matches(first, second).tolist()
    [[3, 7], [4, 8]]
    >>> pair_matches(mosaic, overlap, first, second).tolist()
    [[3, 7]]
    """
    if not (isinstance(seam_tolerance_px, int | np.integer) and seam_tolerance_px >= 0):
        raise InvalidInputError(
            f"seam_tolerance_px must be a whole number of pixels >= 0, got {seam_tolerance_px!r}."
        )
    tolerance = int(seam_tolerance_px)
    grown = tuple(
        slice(max(0, piece.start - tolerance), min(size, piece.stop + tolerance))
        for piece, size in zip(overlap.region, mosaic.shape, strict=True)
    )
    crop = tuple(
        slice(piece.start - big.start, piece.stop - big.start)
        for piece, big in zip(overlap.region, grown, strict=True)
    )
    pairs = overlap_matches(first_labels, second_labels, min_overlap=min_overlap)
    if len(pairs) == 0:
        return pairs
    tiles = owner_block(mosaic, grown)
    first_at_seam = _near(tiles == overlap.second, tolerance)[crop]
    second_at_seam = _near(tiles == overlap.first, tolerance)[crop]
    at_seam = np.isin(pairs[:, 0], np.asarray(first_labels)[..., first_at_seam])
    at_seam &= np.isin(pairs[:, 1], np.asarray(second_labels)[..., second_at_seam])
    return pairs[at_seam]
