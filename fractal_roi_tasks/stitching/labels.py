"""Fuse label images segmented tile by tile, giving every object one id.

Each tile's label image numbers its objects on its own (ids may repeat in
every tile, or be unique and large across the whole input); an object cut by
a tile border appears in two or more tiles under unrelated ids. Labels are
placed at whole-pixel positions (the rounded positions of the image, see
`fractal_roi_tasks.stitching.fusion`) and never blended: every mosaic pixel
takes the label of the one tile that owns it (`owner_block`, the rule of
blending ``"none"``).

De-duplication, for a caller that reads tiles in pieces:

1. `owned_ids` (`label_ownership`): per tile, the ids visible in the fused image.
2. `tile_overlaps` + `pair_matches` (`label_matching`): per pair of overlapping tiles, the
   pairs of ids that are the same object: they cover the same pixels of the
   shared region (`overlap_matches`) and both reach the seam between the two
   tiles.
3. `merge_labels` (`label_merge`): joins matched ids across any number of tiles (connected
   components, so transitively) and numbers the objects 1..n.
4. `fuse_label_block` (here): writes each output block with the final ids;
   `BoxAccumulator` (here) collects each object's bounding box on the way.

This module also gives the names of steps 1-3, so a caller imports one place.

With registration errors of a pixel or two, an object (or the visible part
of one) thinner than the error can still be joined to its neighbour, or a
few of its pixels left with an id of their own, at a seam: the two tiles
disagree about where its pixels are.

Ids are handled as sorted arrays (`numpy.searchsorted`) or, when they are
dense enough, small lookup tables (`label_ids`): memory grows with the number of objects,
never with the size of the largest id.

>>> from fractal_roi_tasks.stitching.fusion import block_parts, block_reads, mosaic_geometry
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
>>> reads = block_reads(mosaic, block, parts, [tiles[p.tile][p.read_box] for p in parts])
>>> fuse_label_block(reads, merge)[0]
array([0, 1, 1, 1, 0, 0], dtype=uint32)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.stitching.fusion import paste_by_owner
from fractal_roi_tasks.stitching.label_ids import integer_labels, unsigned_ids
from fractal_roi_tasks.stitching.label_matching import (  # noqa: F401  (the de-duplication API in one place)
    TileOverlap,
    overlap_matches,
    pair_matches,
    tile_overlaps,
)
from fractal_roi_tasks.stitching.label_merge import UNKNOWN_ID, LabelMerge, merge_labels  # noqa: F401
from fractal_roi_tasks.stitching.label_ownership import check_whole_pixels, owned_ids, owner_block
from fractal_roi_tasks.stitching.mosaic import BlockReads
from fractal_roi_tasks.stitching.ownership import block_cells, owner_factors

logger = logging.getLogger(__name__)


def fuse_label_block(reads: BlockReads, merge: LabelMerge) -> np.ndarray:
    """Fuse the label tiles that meet one output block, with final ids.

    Every pixel takes the label of the tile that owns it (`owner_block`),
    mapped through ``merge``; labels are never blended or resampled.

    Args:
        reads: the block and the labels read of each tile that meets it, from
            ``block_reads(mosaic, block, parts, pixels)`` with
            ``parts = block_parts(mosaic, block, whole_pixels=True)``; the
            labels have an integer dtype and any leading axes (z planes).
        merge: from `merge_labels`.

    Returns:
        uint32 final ids of the block, of shape ``reads.shape``, (..., Y, X);
        0 where no tile lies.

    Raises:
        InvalidInputError: (a ValueError) for parts with sub-pixel fractions,
            labels that are not integers, or an owned id the merge does not
            know.
    """
    mosaic, block, parts = reads.mosaic, reads.block, reads.parts
    check_whole_pixels(parts)
    out = np.zeros(reads.shape, np.uint32)
    mapped = []
    for part, array in zip(parts, reads.arrays, strict=True):
        crop = tuple(
            slice(t.start - r.start, t.stop - r.start)
            for t, r in zip(part.tile_box, part.read_box, strict=True)
        )
        values = integer_labels(array, f"the labels of tile {part.tile}")[(..., *crop)]
        mapped.append(merge.map_ids(part.tile, values))
    factors = [owner_factors(part, mosaic) for part in parts]
    for cell in block_cells(parts, out.shape[-2:]):
        pieces = [mapped[k][(..., *cell.source[i])] for i, k in enumerate(cell.members)]
        paste_by_owner(out[(..., *cell.box)], cell, factors, pieces)
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
        labels = unsigned_ids(integer_labels(block_labels, "block_labels"), "block_labels")
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
