"""Fuse placed tiles into one mosaic image, one output block at a time.

Frames and units: pixels of the tiles, axis order (y, x) for positions and
shapes; pixel arrays carry any leading axes (channels, z planes) before
(y, x). Tile ``i``'s pixel (0, 0) sits at ``positions_px[i]`` (sub-pixel) in
the mosaic frame, whose pixel (0, 0) is the first pixel of the fused image.

Footprint: tile ``i`` covers the mosaic pixels ``[s_i, s_i + shape_i)`` with
``s_i = round(positions_px[i])`` (halves to even, as `numpy.round`), i.e.
every mosaic pixel whose nearest tile pixel exists. Mosaic pixel ``j`` shows
the tile at the sub-pixel coordinate ``u = j - positions_px[i]``, resampled
with the Keys cubic convolution kernel (a = -1/2, 4 taps, separable; the tile
continued by its edge pixels where the taps leave it). With whole-pixel
positions this is a plain copy.

Weights: along each axis, ``d(u) = min(u + 1/2, n - 1/2 - u)`` is the distance
of a pixel to the tile's border (half a pixel at the first and last pixel).
``"linear"`` blending weighs each tile by the product over y and x of
``min(d / ramp, 1)`` (``ramp`` = ``ramp_px``, or half the tile: weights grow
linearly up to the tile centre) and divides by the sum of the weights, so
neighbours cross-fade linearly over their overlap. ``"none"`` takes every
pixel from exactly one tile: the one whose *owner score*, the product over y
and x of ``d / (n / 2)``, is largest there, the lowest tile index on ties;
labels use the same rule at rounded positions (`fractal_roi_tasks.stitching.labels`).
Every per-pixel value depends only on the pixel and the tiles, never on the
block, so fusing block by block gives exactly the same image as one block.

The I/O layer loops over output blocks: `block_parts` says which tiles
contribute to a block and which box of each to read, `block_reads` checks what
was read, `fuse_block` fuses it. Memory is a few blocks' worth whatever the
size of the mosaic.

Where each part lives: `fractal_roi_tasks.stitching.mosaic` (placement,
footprints, blocks and what each reads), `~.ownership` (owner scores,
blending weights, a block's cells), `~.resampling` (the cubic kernel and
the conversion back to the dtype); this module blends, pastes each pixel
from its owner (`paste_by_owner`, for labels too), and gives the geometry's
names too, so a caller imports one place.

>>> tiles = [np.full((4, 6), 10, np.uint16), np.full((4, 6), 20, np.uint16)]
>>> mosaic = mosaic_geometry([[0.0, 0.0], [0.0, 3.0]], [[4, 6], [4, 6]])
>>> block = (slice(0, 4), slice(0, 9))
>>> parts = block_parts(mosaic, block)
>>> reads = block_reads(mosaic, block, parts, [tiles[p.tile][p.read_box] for p in parts])
>>> fused = fuse_block(reads)
>>> fused[0].tolist()
[10, 10, 10, 12, 15, 18, 20, 20, 20]
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.stitching.mosaic import (  # noqa: F401  (the fusion API in one place)
    FRACTION_TOLERANCE_PX,
    INTERPOLATION_PAD_PX,
    BlockReads,
    Mosaic,
    TilePart,
    block_bounds,
    block_grid,
    block_parts,
    block_reads,
    checked_reads,
    mosaic_geometry,
    sorted_by_tile,
)
from fractal_roi_tasks.stitching.ownership import (
    Cell,
    blend_factors,
    block_cells,
    cell_owner,
    owner_factors,
)
from fractal_roi_tasks.stitching.resampling import resample_part, to_dtype

logger = logging.getLogger(__name__)


def fuse_block(
    reads: BlockReads,
    *,
    blending: Literal["linear", "none"] = "linear",
    ramp_px: float | None = None,
    dtype: npt.DTypeLike | None = None,
) -> np.ndarray:
    """Fuse the tiles that meet one output block.

    Each tile is resampled onto the mosaic grid at its sub-pixel position
    (Keys cubic convolution, separable, in float32; a plain copy along axes
    whose fraction is within `FRACTION_TOLERANCE_PX` of a whole pixel), then
    the tiles are blended (see the module doc). Where one tile alone covers
    a pixel, the pixel is that tile's (resampled) value.

    Args:
        reads: the block and what was read of each tile that meets it, from
            ``block_reads(mosaic, block, parts, pixels)`` with
            ``parts = block_parts(mosaic, block)`` (or with ``whole_pixels=True``);
            the pixels may have any numeric dtype.
        blending: ``"linear"`` (weights falling linearly to the tile borders,
            normalised sum) or ``"none"`` (every pixel from the one tile with
            the largest owner score, lowest index on ties).
        ramp_px: for ``"linear"``: the width in pixels over which a tile's
            weight rises from its border to 1; default half the tile (the
            weight grows up to the tile centre).
        dtype: output dtype; default that of the pixels (float32 when there
            are no parts).

    Returns:
        Array of shape ``reads.shape``, (..., Y, X), in ``dtype``: integers
        are rounded and clipped to the type's range. Pixels no tile covers
        are 0.

    Raises:
        InvalidInputError: (a ValueError) for an unknown blending or a bad
            ``ramp_px``.

    A tile placed half a pixel to the right shows its own pixel ``j - 0.5``
    at mosaic pixel ``j`` (edge pixels are extrapolated):

    >>> m = mosaic_geometry([[0.0, 0.5]], (1, 8))
    >>> block = (slice(0, 1), slice(0, 8))
    >>> parts = block_parts(m, block)
    >>> parts[0].fraction_px
    (0.0, 0.5)
    >>> tile = np.arange(8, dtype=np.float32)[None] * 10
    >>> np.round(fuse_block(block_reads(m, block, parts, [tile])), 3).tolist()
    [[-0.625, 4.375, 15.0, 25.0, 35.0, 45.0, 55.0, 65.625]]
    """
    if blending not in ("linear", "none"):
        raise InvalidInputError(f"blending must be 'linear' or 'none', got {blending!r}.")
    if ramp_px is not None and not (np.isfinite(ramp_px) and ramp_px > 0):
        raise InvalidInputError(
            f"ramp_px must be a positive number of pixels or None, got {ramp_px!r}."
        )
    mosaic, parts, arrays = reads.mosaic, reads.parts, reads.arrays
    if dtype is None:
        dtype = arrays[0].dtype if arrays else np.float32
    out_dtype = np.dtype(dtype)
    out = np.zeros(reads.shape, out_dtype)
    logger.debug(
        "fusing block %s from tiles %s (%s)", reads.block, [p.tile for p in parts], blending
    )
    resampled = [resample_part(part, array) for part, array in zip(parts, arrays, strict=True)]

    if blending == "none":
        factors = [owner_factors(part, mosaic) for part in parts]
    else:
        factors = [blend_factors(part, mosaic, ramp_px) for part in parts]
    for cell in block_cells(parts, out.shape[-2:]):
        target = out[(..., *cell.box)]
        pieces = [
            (resampled[k][0][(..., *cell.source[i])], resampled[k][1])
            for i, k in enumerate(cell.members)
        ]
        if len(cell.members) == 1 or blending == "none":
            converted = (to_dtype(values, out_dtype, fresh=fresh) for values, fresh in pieces)
            paste_by_owner(target, cell, factors, converted)
            continue
        total = np.zeros(target.shape, np.float32)
        weight_sum = np.zeros(cell.shape, np.float32)
        covers = np.zeros(cell.shape, np.uint8)
        for i, k in enumerate(cell.members):
            rows, cols = cell.source[i]
            weight = np.multiply.outer(factors[k][0][rows], factors[k][1][cols])
            total[(..., *cell.inside[i])] += np.multiply(pieces[i][0], weight, dtype=np.float32)
            weight_sum[cell.inside[i]] += weight
            covers[cell.inside[i]] += 1
        # Pixels no member covers have total 0: dividing by the tiny value keeps them 0.
        total /= np.maximum(weight_sum, np.float32(1e-30))
        # Where one tile alone lies, its value as is (as in single-tile cells).
        for i, (values, _) in enumerate(pieces):
            np.copyto(total[(..., *cell.inside[i])], values, where=covers[cell.inside[i]] == 1)
        target[...] = to_dtype(total, out_dtype, fresh=True)
    return out


def paste_by_owner(
    target: np.ndarray,
    cell: Cell,
    factors: Sequence[tuple[np.ndarray, np.ndarray]],
    pieces: Iterable[np.ndarray],
) -> None:
    """Write every pixel of one cell from the member tile that owns it.

    The rule of blending ``"none"`` and of labels (`fractal_roi_tasks.stitching.labels`):
    a cell with one member is a copy; otherwise `cell_owner` picks each pixel's tile.

    Args:
        target: the output over ``cell.box``, (..., h, w), written in place.
        cell: one of `block_cells` of the block.
        factors: `owner_factors` of every part of the block.
        pieces: member ``i``'s values over ``cell.inside[i]``, in member order,
            in ``target``'s dtype; taken one at a time, so a generator keeps
            one converted piece in memory.
    """
    pieces = iter(pieces)
    if len(cell.members) == 1:
        target[(..., *cell.inside[0])] = next(pieces)
        return
    owner = cell_owner(cell, factors)
    for i, piece in enumerate(pieces):
        np.copyto(target[(..., *cell.inside[i])], piece, where=owner[cell.inside[i]] == i)
