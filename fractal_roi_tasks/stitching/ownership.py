"""Which tile owns each pixel of a block, and the weights of linear blending.

Along each axis, ``d(u) = min(u + 1/2, n - 1/2 - u)`` is the distance of a
tile pixel ``u`` (sub-pixel, ``u = j - position``) to the tile's border (half
a pixel at the first and last pixel). The *owner score* of a tile is the
product over y and x of ``d / (n / 2)``: a pixel belongs to the tile whose
score is largest there, the lowest tile index on ties (blending ``"none"``
and every label image). The ``"linear"`` weight is the product over y and x
of ``min(d / ramp, 1)``.

A block is cut into rectangular cells along the parts' box edges
(`block_cells`): most cells lie in one tile and are plain copies; only cells
where tiles overlap need scores or weights (`cell_owner`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.stitching.mosaic import FRACTION_TOLERANCE_PX, Mosaic, TilePart

logger = logging.getLogger(__name__)

_MIN_BORDER_DISTANCE_PX = 1e-3
"""Smallest border distance used for weights, so every footprint pixel weighs > 0."""


def _border_distance(part: TilePart, mosaic: Mosaic, axis: int) -> np.ndarray:
    """float64 distance to the tile border of each pixel of ``part.tile_box`` along ``axis``."""
    size = int(mosaic.tile_shapes[part.tile, axis])
    fraction = (
        part.fraction_px[axis] if abs(part.fraction_px[axis]) > FRACTION_TOLERANCE_PX else 0.0
    )
    u = np.arange(part.tile_box[axis].start, part.tile_box[axis].stop, dtype=np.float64) - fraction
    distance = np.minimum(u + 0.5, size - 0.5 - u)
    return np.maximum(distance, _MIN_BORDER_DISTANCE_PX)


def owner_factors(part: TilePart, mosaic: Mosaic) -> tuple[np.ndarray, np.ndarray]:
    """float32 y and x factors of the owner score over ``part.block_box`` (the score is their product)."""
    return tuple(
        (_border_distance(part, mosaic, axis) / (mosaic.tile_shapes[part.tile, axis] / 2.0)).astype(
            np.float32
        )
        for axis in (0, 1)
    )


def blend_factors(
    part: TilePart, mosaic: Mosaic, ramp_px: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """float32 y and x factors of the "linear" weight over ``part.block_box``."""
    factors = []
    for axis in (0, 1):
        ramp = mosaic.tile_shapes[part.tile, axis] / 2.0 if ramp_px is None else ramp_px
        factor = np.minimum(_border_distance(part, mosaic, axis) / ramp, 1.0)
        factors.append(factor.astype(np.float32))
    return factors[0], factors[1]


_MIN_CELL_PX = 64
"""Runs of cuts closer than this are merged into one band of a block's cells."""


@dataclass(frozen=True)
class Cell:
    """A rectangle of a block and the parts that meet it.

    Attributes:
        box: (y, x) slices in block pixels.
        members: indices of the parts whose box meets the cell, in tile order.
        inside: per member, (y, x) slices of its part of the cell, in cell pixels.
        source: per member, the same pixels relative to the part's ``block_box``.
    """

    box: tuple[slice, slice]
    members: tuple[int, ...]
    inside: tuple[tuple[slice, slice], ...]
    source: tuple[tuple[slice, slice], ...]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.box[0].stop - self.box[0].start, self.box[1].stop - self.box[1].start)


def _bands(cuts: np.ndarray) -> np.ndarray:
    """Sorted cut positions with runs of intervals shorter than `_MIN_CELL_PX` merged."""
    kept = [int(cuts[0])]
    for k in range(1, len(cuts)):
        short_before = cuts[k] - cuts[k - 1] < _MIN_CELL_PX
        short_after = k + 1 < len(cuts) and cuts[k + 1] - cuts[k] < _MIN_CELL_PX
        if k == len(cuts) - 1 or not (short_before and short_after):
            kept.append(int(cuts[k]))
    return np.array(kept)


def block_cells(parts: Sequence[TilePart], block_shape: tuple[int, int]) -> list[Cell]:
    """Cut a block into rectangles along the parts' box edges.

    Most of a block is covered by one tile: those cells are plain copies.
    Edges closer than `_MIN_CELL_PX` share one band, so overlaps of tiles
    placed a few pixels apart make a few cells, not many slivers.

    >>> from fractal_roi_tasks.stitching.mosaic import block_parts, mosaic_geometry
    >>> m = mosaic_geometry([[0, 0], [0, 100]], (100, 120))
    >>> block = (slice(0, 100), slice(0, 220))
    >>> [(c.box[1], c.members) for c in block_cells(block_parts(m, block), (100, 220))]
    [(slice(0, 100, None), (0,)), (slice(100, 120, None), (0, 1)), (slice(120, 220, None), (1,))]
    """
    if not parts:
        return []
    bounds, edges = [], []
    for axis in (0, 1):
        starts = np.array([p.block_box[axis].start for p in parts])
        stops = np.array([p.block_box[axis].stop for p in parts])
        edges.append(_bands(np.unique(np.concatenate([[0, block_shape[axis]], starts, stops]))))
        bounds.append((starts, stops))
    cells = []
    for i in range(len(edges[0]) - 1):
        rows = (int(edges[0][i]), int(edges[0][i + 1]))
        for j in range(len(edges[1]) - 1):
            cols = (int(edges[1][j]), int(edges[1][j + 1]))
            members, inside, source = [], [], []
            for k, part in enumerate(parts):
                pieces = []
                for (low, high), own in zip((rows, cols), part.block_box, strict=True):
                    start, stop = max(low, own.start), min(high, own.stop)
                    pieces.append((start, stop, low, own.start))
                if all(start < stop for start, stop, _, _ in pieces):
                    members.append(k)
                    inside.append(tuple(slice(a - c, b - c) for a, b, c, _ in pieces))
                    source.append(tuple(slice(a - o, b - o) for a, b, _, o in pieces))
            if members:
                cells.append(
                    Cell(
                        box=(slice(*rows), slice(*cols)),
                        members=tuple(members),
                        inside=tuple(inside),
                        source=tuple(source),
                    )
                )
    return cells


def cell_owner(cell: Cell, factors: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """(h, w) index into ``cell.members`` of the member with the largest owner score.

    The first (lowest tile) on ties; -1 where no member lies.
    """
    best = np.full(cell.shape, -1.0, np.float32)
    owner = np.full(cell.shape, -1, np.intp)
    for i, k in enumerate(cell.members):
        rows, cols = cell.source[i]
        score = np.multiply.outer(factors[k][0][rows], factors[k][1][cols])
        best_view, owner_view = best[cell.inside[i]], owner[cell.inside[i]]
        better = score > best_view
        np.copyto(best_view, score, where=better)
        owner_view[better] = i
    return owner
