"""Which tile's labels the fused label image shows, at whole-pixel positions.

Labels are placed at the image's positions rounded to whole pixels and never
blended: every mosaic pixel takes the label of the one tile that owns it
(`owner_block`, the rule of blending ``"none"``,
`fractal_roi_tasks.stitching.ownership`); `owned_ids` lists the ids of a tile
that the fused image shows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.stitching.label_ids import DENSE_SLACK, integer_labels, present_ids, unsigned_ids
from fractal_roi_tasks.stitching.mosaic import Mosaic, TilePart, block_bounds, block_parts
from fractal_roi_tasks.stitching.ownership import block_cells, cell_owner, owner_factors

logger = logging.getLogger(__name__)


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
    (y0, y1), (x0, x1) = block_bounds(mosaic, block)
    if parts is None:
        parts = block_parts(mosaic, block, whole_pixels=True)
    check_whole_pixels(parts)
    parts = sorted(parts, key=lambda p: p.tile)
    owner = np.full((y1 - y0, x1 - x0), -1, np.int32)
    factors = [owner_factors(part, mosaic) for part in parts]
    for cell in block_cells(parts, owner.shape):
        target = owner[cell.box]
        if len(cell.members) == 1:
            target[cell.inside[0]] = parts[cell.members[0]].tile
        else:
            tiles = np.array([-1] + [parts[k].tile for k in cell.members], np.int32)
            target[...] = tiles[cell_owner(cell, factors) + 1]
    return owner


def check_whole_pixels(parts: Sequence[TilePart]) -> None:
    for part in parts:
        if part.fraction_px != (0.0, 0.0):
            raise InvalidInputError(
                f"Labels are placed at whole pixels, but the part of tile {part.tile} has a sub-pixel "
                f"fraction {part.fraction_px}: make the parts with block_parts(..., whole_pixels=True)."
            )


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
    labels = integer_labels(tile_labels, f"the labels of tile {tile}")
    footprint = mosaic.footprint(tile)
    expected = tuple(int(v) for v in mosaic.tile_shapes[tile])
    if labels.ndim < 2 or labels.shape[-2:] != expected:
        raise InvalidInputError(
            f"The labels of tile {tile} have shape {labels.shape}; the tile is {expected} (y, x)."
        )
    values = unsigned_ids(labels, f"the labels of tile {tile}")
    parts = block_parts(mosaic, footprint, whole_pixels=True)
    mine = next(k for k, part in enumerate(parts) if part.tile == tile)
    factors = [owner_factors(part, mosaic) for part in parts]
    owned = []  # pieces of the tile's labels it owns: views where it is alone
    for cell in block_cells(parts, labels.shape[-2:]):
        if mine not in cell.members:
            continue
        region = values[(..., *cell.box)]
        if len(cell.members) == 1:
            owned.append(region)
        else:
            owned.append(region[..., cell_owner(cell, factors) == cell.members.index(mine)])
    top = int(values.max()) if values.size else 0
    if top <= 4 * values.size + DENSE_SLACK:
        seen = np.zeros(top + 1, bool)
        for piece in owned:
            seen[piece] = True
        seen[0] = False
        return np.flatnonzero(seen).astype(labels.dtype)
    return present_ids(np.concatenate([piece.ravel() for piece in owned])).astype(labels.dtype)
