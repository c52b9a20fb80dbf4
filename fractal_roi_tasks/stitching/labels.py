"""Fuse label images segmented tile by tile, giving every object one id.

Each tile's label image numbers its objects on its own (ids may repeat in
every tile, or be unique and large across the whole input); an object cut by
a tile border appears in two or more tiles under unrelated ids. Labels are
placed at whole-pixel positions (the rounded positions of the image, see
`fractal_roi_tasks.stitching.fusion`) and never blended: every mosaic pixel
takes the label of the one tile that owns it (`owner_block`, the rule of
blending ``"none"``).

De-duplication, for a caller that reads tiles in pieces:

1. `owned_ids`: per tile, the ids visible in the fused image.
2. `tile_overlaps` + `pair_matches`: per pair of overlapping tiles, the
   pairs of ids that are the same object: they cover the same pixels of the
   shared region (`overlap_matches`) and both reach the seam between the two
   tiles.
3. `merge_labels`: joins matched ids across any number of tiles (connected
   components, so transitively) and numbers the objects 1..n.
4. `fuse_label_block`: writes each output block with the final ids;
   `BoxAccumulator` collects each object's bounding box on the way.

With registration errors of a pixel or two, an object (or the visible part
of one) thinner than the error can still be joined to its neighbour, or a
few of its pixels left with an id of their own, at a seam: the two tiles
disagree about where its pixels are.

Ids are handled as sorted arrays (`numpy.searchsorted`) or, when they are
dense enough, small lookup tables: memory grows with the number of objects,
never with the size of the largest id.

>>> from fractal_roi_tasks.stitching.fusion import block_parts, mosaic_geometry
>>> left = np.array([[0, 1, 1, 1]] * 2, np.uint32)    # object 1 cut by the border
>>> right = np.array([[7, 7, 0, 0]] * 2, np.uint32)   # the same object, id 7
>>> tiles = [left, right]
>>> mosaic = mosaic_geometry([[0, 0], [0, 2]], (2, 4))
>>> overlap = tile_overlaps(mosaic)[0]
>>> pairs = pair_matches(mosaic, overlap, left[overlap.first_box], right[overlap.second_box])
>>> pairs.tolist()
[[1, 7]]
>>> matches = {(overlap.first, overlap.second): pairs}
>>> merge = merge_labels([owned_ids(mosaic, t, tiles[t]) for t in (0, 1)], matches)
>>> block = (slice(0, 2), slice(0, 6))
>>> parts = block_parts(mosaic, block, whole_pixels=True)
>>> fuse_label_block(mosaic, block, parts, [tiles[p.tile][p.read_box] for p in parts], merge)[0]
array([0, 1, 1, 1, 0, 0], dtype=uint32)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.stitching.fusion import (
    Mosaic,
    TilePart,
    _block_bounds,
    _cell_owner,
    _cells,
    _checked_pixels,
    _owner_factors,
    _sorted_parts,
    block_parts,
)

logger = logging.getLogger(__name__)

UNKNOWN_ID = np.uint32(np.iinfo(np.uint32).max)
"""What `LabelMerge` maps an id to internally when the tile has no such id."""

_DENSE_SLACK = 4096
"""A lookup table is used when an id range is at most 4 x the id count + this."""


def _integer_labels(array, what: str) -> np.ndarray:
    array = np.asarray(array)
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise InvalidInputError(f"{what} must be an integer label array, got dtype {array.dtype}.")
    return array


def _unsigned(array: np.ndarray, what: str) -> np.ndarray:
    """Unsigned view of an integer label array; negative ids are an error."""
    if array.dtype == np.bool_:
        return array.view(np.uint8)
    if np.issubdtype(array.dtype, np.signedinteger):
        if array.size and array.min() < 0:
            raise InvalidInputError(
                f"{what} has negative ids (smallest {array.min()}); label ids must be >= 0."
            )
        return array.view(array.dtype.str.replace("i", "u"))
    return array


def owner_block(
    mosaic: Mosaic, block: tuple[slice, slice], *, parts: Sequence[TilePart] | None = None
) -> np.ndarray:
    """Which tile owns each pixel of a block, with positions rounded to whole pixels.

    The owner is the tile with the largest owner score (the rule of blending
    ``"none"``, see `fractal_roi_tasks.stitching.fusion`), the lowest index on
    ties.

    Args:
        mosaic: the tiles' placement (positions are rounded here).
        block: (y, x) slices of the block in mosaic pixels.
        parts: ``block_parts(mosaic, block, whole_pixels=True)`` if already
            computed.

    Returns:
        (h, w) int32 tile index per pixel, -1 where no tile lies.

    Raises:
        InvalidInputError: (a ValueError) for a block outside the mosaic or
            parts made without ``whole_pixels=True``.

    >>> from fractal_roi_tasks.stitching.fusion import mosaic_geometry
    >>> mosaic = mosaic_geometry([[0, 0], [0, 3], [0, 10]], (1, 6))
    >>> owner_block(mosaic, (slice(0, 1), slice(0, 16))).tolist()   # a tie at pixel 4
    [[0, 0, 0, 0, 0, 1, 1, 1, 1, -1, 2, 2, 2, 2, 2, 2]]
    """
    (y0, y1), (x0, x1) = _block_bounds(mosaic, block)
    if parts is None:
        parts = block_parts(mosaic, block, whole_pixels=True)
    _check_whole(parts)
    parts = sorted(parts, key=lambda p: p.tile)
    owner = np.full((y1 - y0, x1 - x0), -1, np.int32)
    factors = [_owner_factors(part, mosaic) for part in parts]
    for cell in _cells(parts, owner.shape):
        target = owner[cell.box]
        if len(cell.members) == 1:
            target[cell.inside[0]] = parts[cell.members[0]].tile
        else:
            tiles = np.array([-1] + [parts[k].tile for k in cell.members], np.int32)
            target[...] = tiles[_cell_owner(cell, factors) + 1]
    return owner


def _check_whole(parts: Sequence[TilePart]) -> None:
    for part in parts:
        if part.fraction_px != (0.0, 0.0):
            raise InvalidInputError(
                f"Labels are placed at whole pixels, but the part of tile {part.tile} has a sub-pixel "
                f"fraction {part.fraction_px}: make the parts with block_parts(..., whole_pixels=True)."
            )


def _present_ids(values: np.ndarray) -> np.ndarray:
    """Sorted distinct nonzero values of an unsigned array."""
    if values.size == 0:
        return np.zeros(0, values.dtype)
    top = int(values.max())
    if top <= 4 * values.size + _DENSE_SLACK:
        seen = np.zeros(top + 1, bool)
        seen[values] = True
        seen[0] = False
        return np.flatnonzero(seen).astype(values.dtype)
    unique = np.unique(values)
    return unique[unique != 0]


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True, return_counts=True)`` of a 1D unsigned
    (or non-negative int64) array, without sorting when the values are small."""
    top = int(values.max()) if values.size else 0
    if top > 4 * values.size + _DENSE_SLACK:
        ids, index, counts = np.unique(values, return_inverse=True, return_counts=True)
        return ids, index.astype(np.int64), counts
    counts = np.bincount(values.astype(np.intp, copy=False), minlength=top + 1)
    ids = np.flatnonzero(counts)
    rank = np.zeros(top + 1, np.int64)
    rank[ids] = np.arange(len(ids))
    return ids.astype(values.dtype), rank[values], counts[ids]


def owned_ids(mosaic: Mosaic, tile: int, tile_labels: np.ndarray) -> np.ndarray:
    """The ids of one tile that the fused label image shows (on pixels the tile owns).

    Args:
        mosaic: the tiles' placement (positions are rounded here).
        tile: the tile's index.
        tile_labels: the whole tile's labels, (..., height, width) of the
            tile's shape, any leading axes (z planes), integer dtype.

    Returns:
        Sorted distinct nonzero ids, in ``tile_labels``' dtype.

    Raises:
        InvalidInputError: (a ValueError) for an unknown tile, labels of
            another shape, or a non-integer dtype.

    >>> from fractal_roi_tasks.stitching.fusion import mosaic_geometry
    >>> mosaic = mosaic_geometry([[0, 0], [0, 2]], (1, 4))
    >>> owned_ids(mosaic, 1, np.array([[5, 6, 7, 8]])).tolist()   # pixel 5 belongs to tile 0
    [6, 7, 8]
    """
    labels = _integer_labels(tile_labels, f"the labels of tile {tile}")
    footprint = mosaic.footprint(tile)
    expected = tuple(int(v) for v in mosaic.tile_shapes[tile])
    if labels.ndim < 2 or labels.shape[-2:] != expected:
        raise InvalidInputError(
            f"The labels of tile {tile} have shape {labels.shape}; the tile is {expected} (y, x)."
        )
    values = _unsigned(labels, f"the labels of tile {tile}")
    parts = block_parts(mosaic, footprint, whole_pixels=True)
    mine = next(k for k, part in enumerate(parts) if part.tile == tile)
    factors = [_owner_factors(part, mosaic) for part in parts]
    owned = []  # pieces of the tile's labels it owns: views where it is alone
    for cell in _cells(parts, labels.shape[-2:]):
        if mine not in cell.members:
            continue
        region = values[(..., *cell.box)]
        if len(cell.members) == 1:
            owned.append(region)
        else:
            owned.append(region[..., _cell_owner(cell, factors) == cell.members.index(mine)])
    top = int(values.max()) if values.size else 0
    if top <= 4 * values.size + _DENSE_SLACK:
        seen = np.zeros(top + 1, bool)
        for piece in owned:
            seen[piece] = True
        seen[0] = False
        return np.flatnonzero(seen).astype(labels.dtype)
    return _present_ids(np.concatenate([piece.ravel() for piece in owned])).astype(labels.dtype)


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
    first = _integer_labels(first_labels, "first_labels")
    second = _integer_labels(second_labels, "second_labels")
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
    first = _unsigned(first, "first_labels")
    second = _unsigned(second, "second_labels")
    first_ids, first_index, first_area = _distinct(first.ravel())
    second_ids, second_index, second_area = _distinct(second.ravel())
    both = (first.ravel() != 0) & (second.ravel() != 0)
    if not both.any():
        return np.zeros((0, 2), np.uint64)
    pair_codes = first_index[both] * len(second_ids) + second_index[both]
    codes, _, shared = _distinct(pair_codes)
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


@dataclass(frozen=True, eq=False)
class LabelMerge:
    """Lookup from (tile, id in the tile) to the final id of the fused label image.

    Attributes:
        tile_ids: per tile, its sorted distinct nonzero ids (uint64).
        final_ids: per tile, the final id (uint32, 1..n) of each of them.
        n_objects: n, the number of distinct objects.
    """

    tile_ids: tuple[np.ndarray, ...]
    final_ids: tuple[np.ndarray, ...]
    n_objects: int

    def lookup(self, tile: int, ids: np.ndarray) -> np.ndarray:
        """Final ids of ids of tile ``tile``: uint32, same shape, 0 stays 0.

        Raises:
            InvalidInputError: (a ValueError) for an unknown tile or an id
                the tile did not have in `merge_labels`.

        >>> merge = merge_labels([[3, 4_000_000_000], [9]], {(0, 1): [[4_000_000_000, 9]]})
        >>> merge.lookup(1, np.array([0, 9])).tolist(), merge.n_objects
        ([0, 2], 2)
        """
        mapped = self._map(tile, ids)
        if mapped.size and mapped.max() == UNKNOWN_ID:
            values = np.asarray(ids)[mapped == UNKNOWN_ID]
            raise InvalidInputError(
                f"Tile {tile} has ids {np.unique(values)[:5].tolist()} that were not among its ids "
                "given to merge_labels (compute them with owned_ids on the same mosaic)."
            )
        return mapped

    def _map(self, tile: int, ids: np.ndarray) -> np.ndarray:
        """Like `lookup`, with `UNKNOWN_ID` for unknown ids instead of an error."""
        if not 0 <= tile < len(self.tile_ids):
            raise InvalidInputError(
                f"tile {tile!r} does not exist: the merge has {len(self.tile_ids)} tiles."
            )
        values = _unsigned(
            _integer_labels(ids, f"the ids of tile {tile}"), f"the ids of tile {tile}"
        )
        keys, finals = self.tile_ids[tile], self.final_ids[tile]
        if len(keys) == 0:
            return np.where(values == 0, np.uint32(0), UNKNOWN_ID)
        low, high = int(keys[0]), int(keys[-1])
        if high > np.iinfo(values.dtype).max:
            values = values.astype(np.uint64)
        dense = 4 * len(keys) + _DENSE_SLACK
        if high < dense:
            # Table over [0, high]; index high + 1 says "unknown".
            table = np.full(high + 2, UNKNOWN_ID, np.uint32)
            table[0] = 0
            table[keys] = finals
            if high + 1 <= np.iinfo(values.dtype).max:
                values = np.minimum(values, values.dtype.type(high + 1))
            return table[values]
        if high - low < dense:
            # Table over [low, high]; everything else (0 included) wraps past it.
            table = np.full(high - low + 2, UNKNOWN_ID, np.uint32)
            table[keys - low] = finals
            index = values - values.dtype.type(low)
            np.minimum(index, index.dtype.type(high - low + 1), out=index)
            mapped = table[index]
            mapped[values == 0] = 0
            return mapped
        wide = values.astype(np.uint64, copy=False)
        where = np.minimum(np.searchsorted(keys, wide), len(keys) - 1)
        mapped = np.where(keys[where] == wide, finals[where], UNKNOWN_ID)
        mapped[wide == 0] = 0
        return mapped


def _match_items(matches) -> Iterable[tuple[tuple[int, int], np.ndarray]]:
    if isinstance(matches, Mapping):
        return matches.items()
    return matches


def merge_labels(
    tile_ids: Sequence[np.ndarray],
    matches: Mapping[tuple[int, int], np.ndarray] | Iterable[tuple[tuple[int, int], np.ndarray]],
) -> LabelMerge:
    """Join the ids that are one object across tiles and number the objects 1..n.

    Matches are joined transitively (connected components of the graph of
    matches), whatever the number of tiles an object spans. Final ids follow
    the first appearance of each object in the order (tile index, id). Matches
    involving an id that is not among its tile's ``tile_ids`` (not visible in
    the fused image) are ignored.

    Args:
        tile_ids: per tile, the ids the fused image shows
            (`owned_ids`); any integer values >= 0, repeated or not across
            tiles, as large as uint64 allows; 0 is ignored.
        matches: per pair of tiles ``(t1, t2)``, a (K, 2) array of
            ``(id in t1, id in t2)`` pairs (`overlap_matches`); a mapping or
            an iterable of ``((t1, t2), pairs)`` items.

    Returns:
        A `LabelMerge`.

    Raises:
        InvalidInputError: (a ValueError) for an unknown tile, negative or
            non-integer ids, pairs not of shape (K, 2), or more objects than
            uint32 can number.

    >>> merge = merge_labels([[1, 2], [1], [1]], {(0, 1): [[2, 1]], (1, 2): [[1, 1]]})
    >>> merge.n_objects, [m.tolist() for m in merge.final_ids]
    (2, [[1, 2], [2], [2]])
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    keys = []
    for tile, ids in enumerate(tile_ids):
        values = _unsigned(_integer_labels(ids, f"tile_ids[{tile}]"), f"tile_ids[{tile}]")
        keys.append(_present_ids(values.ravel()).astype(np.uint64))
    offsets = np.concatenate([[0], np.cumsum([len(k) for k in keys])]).astype(np.int64)
    n_nodes = int(offsets[-1])

    sources, targets, ignored = [], [], 0
    for pair, found in _match_items(matches):
        try:
            t1, t2 = (int(t) for t in pair)
        except (TypeError, ValueError) as err:
            raise InvalidInputError(
                f"matches keys must be (tile, tile) pairs, got {pair!r}."
            ) from err
        for t in (t1, t2):
            if not 0 <= t < len(keys):
                raise InvalidInputError(
                    f"matches name tile {t}, but tile_ids has {len(keys)} tiles."
                )
        found = np.asarray(found)
        if found.size == 0:
            continue
        if found.ndim != 2 or found.shape[1] != 2:
            raise InvalidInputError(
                f"matches[{pair!r}] must be (K, 2) id pairs, got shape {found.shape}."
            )
        what = f"matches[{pair!r}]"
        found = _unsigned(_integer_labels(found, what), what).astype(np.uint64)
        nodes = []
        for t, column in ((t1, found[:, 0]), (t2, found[:, 1])):
            where = np.minimum(np.searchsorted(keys[t], column), max(len(keys[t]) - 1, 0))
            known = keys[t][where] == column if len(keys[t]) else np.zeros(len(column), bool)
            nodes.append((offsets[t] + where, known))
        known = nodes[0][1] & nodes[1][1]
        ignored += int(np.count_nonzero(~known))
        sources.append(nodes[0][0][known])
        targets.append(nodes[1][0][known])

    if n_nodes == 0:
        final = np.zeros(0, np.uint32)
        n_objects = 0
    else:
        if sources:
            rows, cols = np.concatenate(sources), np.concatenate(targets)
        else:
            rows = cols = np.zeros(0, np.int64)
        graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n_nodes, n_nodes))
        n_objects, component = connected_components(graph, directed=False)
        # Number components by their first node (nodes are in (tile, id) order).
        first_node = np.full(n_objects, n_nodes, np.int64)
        np.minimum.at(first_node, component, np.arange(n_nodes))
        rank = np.empty(n_objects, np.int64)
        rank[np.argsort(first_node, kind="stable")] = np.arange(n_objects)
        if n_objects >= int(UNKNOWN_ID):
            raise InvalidInputError(f"{n_objects} objects do not fit in uint32 label ids.")
        final = (rank[component] + 1).astype(np.uint32)
    logger.debug(
        "merged %d ids of %d tiles into %d objects (%d matched pairs ignored: ids not shown)",
        n_nodes,
        len(keys),
        n_objects,
        ignored,
    )
    for k in keys:
        k.flags.writeable = False
    finals = tuple(final[offsets[t] : offsets[t + 1]] for t in range(len(keys)))
    final.flags.writeable = False
    return LabelMerge(tile_ids=tuple(keys), final_ids=finals, n_objects=int(n_objects))


def fuse_label_block(
    mosaic: Mosaic,
    block: tuple[slice, slice],
    parts: Sequence[TilePart],
    pixels: Sequence[np.ndarray],
    merge: LabelMerge,
    *,
    leading_shape: tuple[int, ...] = (),
) -> np.ndarray:
    """Fuse the label tiles that meet one output block, with final ids.

    Every pixel takes the label of the tile that owns it (`owner_block`),
    mapped through ``merge``; labels are never blended or resampled.

    Args:
        mosaic: the tiles' placement.
        block: (y, x) slices of the output block in mosaic pixels.
        parts: ``block_parts(mosaic, block, whole_pixels=True)``.
        pixels: ``pixels[k]`` is the labels of tile ``parts[k].tile`` read at
            ``parts[k].read_box``: (..., h, w), any leading axes (z planes),
            the same for every part, integer dtype.
        merge: from `merge_labels`.
        leading_shape: leading axes of the output when there are no parts.

    Returns:
        (..., Y, X) uint32 final ids of the block, 0 where no tile lies.

    Raises:
        InvalidInputError: (a ValueError) for parts with sub-pixel fractions,
            reads that do not match the parts, or an owned id the merge does
            not know.
    """
    (y0, y1), (x0, x1) = _block_bounds(mosaic, block)
    _check_whole(parts)
    arrays = _checked_pixels(parts, pixels)
    if arrays:
        leading_shape = arrays[0].shape[:-2]
    out = np.zeros(tuple(leading_shape) + (y1 - y0, x1 - x0), np.uint32)
    parts, arrays = _sorted_parts(parts, arrays)
    mapped = []
    for part, array in zip(parts, arrays, strict=True):
        crop = tuple(
            slice(t.start - r.start, t.stop - r.start)
            for t, r in zip(part.tile_box, part.read_box, strict=True)
        )
        values = _integer_labels(array, f"the labels of tile {part.tile}")[(..., *crop)]
        mapped.append(merge._map(part.tile, values))
    factors = [_owner_factors(part, mosaic) for part in parts]
    for cell in _cells(parts, out.shape[-2:]):
        target = out[(..., *cell.box)]
        if len(cell.members) == 1:
            target[(..., *cell.inside[0])] = mapped[cell.members[0]][(..., *cell.source[0])]
            continue
        owner = _cell_owner(cell, factors)
        for i, k in enumerate(cell.members):
            np.copyto(
                target[(..., *cell.inside[i])],
                mapped[k][(..., *cell.source[i])],
                where=owner[cell.inside[i]] == i,
            )
    if out.size and out.max() == UNKNOWN_ID:
        owners = np.broadcast_to(owner_block(mosaic, block, parts=parts), out.shape)
        tiles = np.unique(owners[out == UNKNOWN_ID]).tolist()
        raise InvalidInputError(
            f"Block {block!r} shows ids of tile(s) {tiles} that merge_labels was not given "
            "(compute each tile's ids with owned_ids on the same mosaic)."
        )
    return out


def _reduce_boxes(
    ids: np.ndarray, starts: np.ndarray, stops: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One box per distinct id (sorted): the smallest start and largest stop of its boxes."""
    order = np.argsort(ids, kind="stable")
    ids, starts, stops = ids[order], starts[order], stops[order]
    first = np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]]))
    return (
        ids[first],
        np.minimum.reduceat(starts, first, axis=0),
        np.maximum.reduceat(stops, first, axis=0),
    )


class BoxAccumulator:
    """Bounding boxes of the objects of a label image written block by block.

    >>> boxes = BoxAccumulator()
    >>> boxes.add(np.array([[0, 3], [3, 0]], np.uint32), (0, 0))
    >>> boxes.add(np.array([[3, 0]], np.uint32), (2, 5))
    >>> ids, starts, stops = boxes.result()
    >>> ids.tolist(), starts.tolist(), stops.tolist()
    ([3], [[0, 0]], [[3, 6]])
    """

    _COMPACT_EVERY = 64

    def __init__(self) -> None:
        self._ids: list[np.ndarray] = []
        self._starts: list[np.ndarray] = []
        self._stops: list[np.ndarray] = []
        self._ndim: int | None = None

    def add(self, block_labels: np.ndarray, origin: Sequence[int]) -> None:
        """Add one block of final labels whose first pixel is at ``origin`` (mosaic pixels, every axis).

        Raises:
            InvalidInputError: (a ValueError) for a non-integer block, an
                origin of another length, or blocks of different dimensions.
        """
        labels = _unsigned(_integer_labels(block_labels, "block_labels"), "block_labels")
        origin_arr = np.asarray(origin, dtype=np.int64)
        if labels.ndim < 1 or origin_arr.shape != (labels.ndim,):
            raise InvalidInputError(
                f"origin {tuple(origin)!r} must give one start per axis of the block {labels.shape}."
            )
        if labels.size == 0:
            return
        # Runs of equal labels along the last axis (each row starts a run).
        width = labels.shape[-1]
        flat = np.ascontiguousarray(labels).reshape(-1)
        run_start = np.empty(flat.size, bool)
        run_start[0] = True
        np.not_equal(flat[1:], flat[:-1], out=run_start[1:])
        run_start[::width] = True
        first = np.flatnonzero(run_start)
        last = np.append(first[1:], flat.size) - 1
        values = flat[first]
        objects = values != 0
        if not objects.any():
            return
        if self._ndim is None:
            self._ndim = labels.ndim
        elif labels.ndim != self._ndim:
            raise InvalidInputError(
                f"Blocks must all have {self._ndim} axes; this one has shape {labels.shape}."
            )
        first, last, values = first[objects], last[objects], values[objects]
        row = first // width
        leading = np.unravel_index(row, labels.shape[:-1]) if labels.ndim > 1 else ()
        starts = np.stack([*leading, first % width], axis=1).astype(np.int64) + origin_arr
        stops = np.stack([*(c + 1 for c in leading), last % width + 1], axis=1).astype(np.int64)
        stops += origin_arr
        ids, starts, stops = _reduce_boxes(values.astype(np.uint64), starts, stops)
        self._ids.append(ids)
        self._starts.append(starts)
        self._stops.append(stops)
        if len(self._ids) >= self._COMPACT_EVERY:
            self._compact()

    def _compact(self) -> None:
        if len(self._ids) <= 1:
            return
        self._ids, self._starts, self._stops = (
            [array]
            for array in _reduce_boxes(
                np.concatenate(self._ids), np.concatenate(self._starts), np.concatenate(self._stops)
            )
        )

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ids, starts, stops)``: (n,) uint64 ids in increasing order and (n, ndim) int64
        first and one-past-last pixel of each object along every axis, in mosaic pixels."""
        self._compact()
        if not self._ids:
            ndim = self._ndim or 2
            return (
                np.zeros(0, np.uint64),
                np.zeros((0, ndim), np.int64),
                np.zeros((0, ndim), np.int64),
            )
        return self._ids[0].copy(), self._starts[0].copy(), self._stops[0].copy()
