"""Mosaic geometry: where every tile lies in the fused image, its blocks, and what each block reads.

Frames and units: pixels of the tiles, axis order (y, x) for positions and
shapes. Tile ``i``'s pixel (0, 0) sits at ``positions_px[i]`` (sub-pixel) in
the mosaic frame, whose pixel (0, 0) is the first pixel of the fused image.
Tile ``i`` covers (its *footprint*) the mosaic pixels ``[s_i, s_i + shape_i)``
with ``s_i = round(positions_px[i])`` (halves to even, as `numpy.round`).

`mosaic_geometry` places the tiles, `block_grid` cuts the output into blocks,
`block_parts` says which tiles meet a block and which box of each to read;
`block_reads` checks what was read against the parts and gives the `BlockReads`
that `fuse_block` and `fuse_label_block` fuse.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError

logger = logging.getLogger(__name__)

INTERPOLATION_PAD_PX = 2
"""Pixels the cubic kernel reaches beyond a resampled pixel, per side."""

FRACTION_TOLERANCE_PX = 1e-3
"""Sub-pixel fractions at most this large are treated as whole pixels (no resampling)."""


@dataclass(frozen=True, eq=False)
class Mosaic:
    """Where every tile lies in the fused image.

    Attributes:
        shape: (Y, X) size of the fused image in pixels.
        origin_px: (y, x) whole-pixel position of mosaic pixel (0, 0) in the
            frame of the positions given to `mosaic_geometry`.
        positions_px: (N, 2) float64, (y, x) of each tile's pixel (0, 0) in
            the mosaic frame (the given positions minus ``origin_px``).
        tile_shapes: (N, 2) int64, (height, width) of each tile.
    """

    shape: tuple[int, int]
    origin_px: tuple[int, int]
    positions_px: np.ndarray
    tile_shapes: np.ndarray

    def __post_init__(self) -> None:
        positions, shapes = _positions_and_shapes(self.positions_px, self.tile_shapes)
        shape = tuple(int(v) for v in self.shape)
        if len(shape) != 2 or min(shape) < 1:
            raise InvalidInputError(
                f"Mosaic shape must be two positive sizes (Y, X), got {self.shape!r}."
            )
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "origin_px", tuple(int(v) for v in self.origin_px))
        object.__setattr__(self, "positions_px", positions)
        object.__setattr__(self, "tile_shapes", shapes)

    @property
    def n_tiles(self) -> int:
        """Number of tiles."""
        return len(self.positions_px)

    @functools.cached_property
    def starts_px(self) -> np.ndarray:
        """(N, 2) int64, first mosaic pixel (y, x) of each tile's footprint: the rounded positions."""
        starts = np.rint(self.positions_px).astype(np.int64)
        starts.flags.writeable = False
        return starts

    def footprint(self, tile: int) -> tuple[slice, slice]:
        """The mosaic pixels (y, x) tile ``tile`` covers."""
        if not 0 <= tile < self.n_tiles:
            raise InvalidInputError(
                f"tile {tile!r} does not exist: the mosaic has {self.n_tiles} tiles."
            )
        start, size = self.starts_px[tile], self.tile_shapes[tile]
        return (
            slice(int(start[0]), int(start[0] + size[0])),
            slice(int(start[1]), int(start[1] + size[1])),
        )

    def with_whole_positions(self) -> Mosaic:
        """The same mosaic with every position rounded to whole pixels (what labels use)."""
        return Mosaic(
            shape=self.shape,
            origin_px=self.origin_px,
            positions_px=self.starts_px.astype(np.float64),
            tile_shapes=self.tile_shapes,
        )


def _positions_and_shapes(positions_px, tile_shapes) -> tuple[np.ndarray, np.ndarray]:
    """Validated read-only copies: (N, 2) float64 positions and (N, 2) int64 shapes."""
    try:
        positions = np.array(positions_px, dtype=np.float64)
        shapes_in = np.asarray(tile_shapes)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(
            f"positions_px and tile_shapes must be numeric arrays, got {positions_px!r}, {tile_shapes!r}."
        ) from err
    if positions.ndim != 2 or positions.shape[1] != 2 or len(positions) == 0:
        raise InvalidInputError(
            f"positions_px must be an (N, 2) array of (y, x) positions with N >= 1, got shape {positions.shape}."
        )
    if not np.all(np.isfinite(positions)):
        raise InvalidInputError("positions_px must be finite; it has NaN or infinite values.")
    if shapes_in.shape == (2,):
        shapes_in = np.broadcast_to(shapes_in, positions.shape)
    if shapes_in.shape != positions.shape:
        raise InvalidInputError(
            f"tile_shapes must be (N, 2) like positions_px {positions.shape} (or (2,) for all tiles), "
            f"got shape {shapes_in.shape}."
        )
    if not (np.issubdtype(shapes_in.dtype, np.integer) or np.all(np.mod(shapes_in, 1) == 0)):
        raise InvalidInputError(f"tile_shapes must be whole pixel counts, got {shapes_in!r}.")
    shapes = np.array(shapes_in, dtype=np.int64)
    if np.any(shapes < 1):
        raise InvalidInputError(
            f"tile_shapes must be positive, got {shapes[np.any(shapes < 1, axis=1)][0]!r}."
        )
    positions.flags.writeable = False
    shapes.flags.writeable = False
    return positions, shapes


def block_grid(shape: Sequence[int], block_shape: Sequence[int]) -> list[tuple[slice, slice]]:
    """The (y, x) blocks that tile an image of ``shape``, row-major; edge blocks are smaller.

    >>> block_grid((5, 4), (3, 4))
    [(slice(0, 3, None), slice(0, 4, None)), (slice(3, 5, None), slice(0, 4, None))]
    """
    height, width = shape
    step_y, step_x = block_shape
    return [
        (slice(y, min(y + step_y, height)), slice(x, min(x + step_x, width)))
        for y in range(0, height, step_y)
        for x in range(0, width, step_x)
    ]


def mosaic_geometry(
    positions_px: np.ndarray | Sequence, tile_shapes: np.ndarray | Sequence
) -> Mosaic:
    """The smallest whole-pixel mosaic holding the footprint of every tile.

    Args:
        positions_px: (N, 2) (y, x) of each tile's pixel (0, 0) in any common
            frame, in pixels, fractional values allowed.
        tile_shapes: (N, 2) (height, width) of each tile in pixels, or (2,)
            for all tiles.

    Returns:
        A `Mosaic` whose ``origin_px`` is the smallest rounded position (per
        axis) and whose positions are the given ones minus that origin.

    Raises:
        InvalidInputError: (a ValueError) for arrays of the wrong shape,
            non-finite positions or non-positive tile shapes.

    >>> m = mosaic_geometry([[10.4, 20.0], [10.0, 109.6]], (100, 100))
    >>> m.shape, m.origin_px, m.positions_px.tolist()
    ((100, 190), (10, 20), [[0.40000000000000036, 0.0], [0.0, 89.6]])
    """
    positions, shapes = _positions_and_shapes(positions_px, tile_shapes)
    starts = np.rint(positions).astype(np.int64)
    origin = starts.min(axis=0)
    stop = (starts + shapes).max(axis=0)
    mosaic = Mosaic(
        shape=(int(stop[0] - origin[0]), int(stop[1] - origin[1])),
        origin_px=(int(origin[0]), int(origin[1])),
        positions_px=positions - origin,
        tile_shapes=shapes,
    )
    logger.debug(
        "mosaic of %d tiles: shape %s, origin %s", len(positions), mosaic.shape, mosaic.origin_px
    )
    return mosaic


@dataclass(frozen=True)
class TilePart:
    """What one tile contributes to one output block, and what to read for it.

    Attributes:
        tile: index of the tile.
        read_box: (y, x) slices in the tile's own pixels to read: ``tile_box``
            grown by the reach of the interpolation (only along axes with a
            sub-pixel fraction), clipped to the tile.
        tile_box: (y, x) slices in the tile's own pixels of the tile pixels
            whose footprint falls in the block.
        block_box: (y, x) slices in the block (0 = the block's first pixel)
            of that footprint part; same size as ``tile_box``.
        start_px: (y, x) first mosaic pixel of the tile's footprint.
        fraction_px: (y, x) sub-pixel part of the tile's position, in
            [-0.5, 0.5]: the position is ``start_px + fraction_px``; zeros
            when the parts were made with ``whole_pixels=True``.
    """

    tile: int
    read_box: tuple[slice, slice]
    tile_box: tuple[slice, slice]
    block_box: tuple[slice, slice]
    start_px: tuple[int, int]
    fraction_px: tuple[float, float]

    @property
    def read_shape(self) -> tuple[int, int]:
        """(height, width) of the read."""
        return (
            self.read_box[0].stop - self.read_box[0].start,
            self.read_box[1].stop - self.read_box[1].start,
        )


def block_bounds(mosaic: Mosaic, block) -> tuple[tuple[int, int], tuple[int, int]]:
    """((y0, y1), (x0, x1)) of a (y, x) block of slices inside the mosaic."""
    if (
        not isinstance(block, tuple | list)
        or len(block) != 2
        or not all(isinstance(s, slice) for s in block)
    ):
        raise InvalidInputError(f"block must be a (y, x) pair of slices, got {block!r}.")
    bounds = []
    for axis, (piece, size) in enumerate(zip(block, mosaic.shape, strict=True)):
        start = 0 if piece.start is None else piece.start
        stop = size if piece.stop is None else piece.stop
        if (
            piece.step not in (None, 1)
            or not isinstance(start, int | np.integer)
            or not isinstance(stop, int | np.integer)
        ):
            raise InvalidInputError(
                f"block must be slices of whole pixels with step 1, got {block!r}."
            )
        if not 0 <= start < stop <= size:
            raise InvalidInputError(
                f"block {block!r} along {'yx'[axis]} must lie inside the mosaic [0, {size}) and not be empty."
            )
        bounds.append((int(start), int(stop)))
    return bounds[0], bounds[1]


def block_parts(
    mosaic: Mosaic, block: tuple[slice, slice], *, whole_pixels: bool = False
) -> list[TilePart]:
    """The tiles whose footprint meets an output block, and what to read of each.

    One vectorised test over all tiles, so thousands of tiles cost
    microseconds per block.

    Args:
        mosaic: the tiles' placement, from `mosaic_geometry`.
        block: (y, x) slices of the output block in mosaic pixels, inside
            the mosaic.
        whole_pixels: place tiles at their rounded positions (no resampling,
            no padding of the reads), as label images are.

    Returns:
        One `TilePart` per contributing tile, in increasing tile order.

    Raises:
        InvalidInputError: (a ValueError) for a block outside the mosaic or
            not made of step-1 slices.

    >>> m = mosaic_geometry([[0.0, 0.0], [0.0, 89.6]], (100, 100))
    >>> parts = block_parts(m, (slice(0, 50), slice(80, 120)))
    >>> for p in parts:
    ...     print(p.tile, p.block_box[1], p.tile_box[1], p.read_box[1])
    0 slice(0, 20, None) slice(80, 100, None) slice(80, 100, None)
    1 slice(10, 40, None) slice(0, 30, None) slice(0, 32, None)
    """
    (y0, y1), (x0, x1) = block_bounds(mosaic, block)
    starts = mosaic.starts_px
    stops = starts + mosaic.tile_shapes
    low = np.maximum(starts, (y0, x0))
    high = np.minimum(stops, (y1, x1))
    hits = np.flatnonzero(np.all(high > low, axis=1))
    if whole_pixels:
        fractions = np.zeros((len(hits), 2))
    else:
        fractions = mosaic.positions_px[hits] - starts[hits]
    resampled = np.abs(fractions) > FRACTION_TOLERANCE_PX
    pad = np.where(resampled, INTERPOLATION_PAD_PX, 0)
    first = low[hits] - starts[hits]
    last = high[hits] - starts[hits]
    read_first = np.maximum(first - pad, 0)
    read_last = np.minimum(last + pad, mosaic.tile_shapes[hits])
    parts = []
    for k, tile in enumerate(hits.tolist()):
        parts.append(
            TilePart(
                tile=tile,
                read_box=(
                    slice(int(read_first[k, 0]), int(read_last[k, 0])),
                    slice(int(read_first[k, 1]), int(read_last[k, 1])),
                ),
                tile_box=(
                    slice(int(first[k, 0]), int(last[k, 0])),
                    slice(int(first[k, 1]), int(last[k, 1])),
                ),
                block_box=(
                    slice(int(low[tile, 0] - y0), int(high[tile, 0] - y0)),
                    slice(int(low[tile, 1] - x0), int(high[tile, 1] - x0)),
                ),
                start_px=(int(starts[tile, 0]), int(starts[tile, 1])),
                fraction_px=(float(fractions[k, 0]), float(fractions[k, 1]))
                if resampled[k].any()
                else (0.0, 0.0),
            )
        )
    return parts


def checked_reads(parts: Sequence[TilePart], pixels: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``pixels`` as arrays, after checking there is one read per part, of its read box's shape.

    Raises:
        InvalidInputError: (a ValueError) for a missing or extra read, a tile named twice,
            a read of another (y, x) shape, or reads with different leading axes.
    """
    if len(parts) != len(pixels):
        raise InvalidInputError(
            f"Got {len(parts)} parts but {len(pixels)} pixel arrays: give one read per part."
        )
    arrays = [np.asarray(p) for p in pixels]
    tiles = [part.tile for part in parts]
    if len(set(tiles)) != len(tiles):
        raise InvalidInputError(f"parts name a tile more than once: {tiles}.")
    for part, array in zip(parts, arrays, strict=True):
        if array.ndim < 2 or array.shape[-2:] != part.read_shape:
            raise InvalidInputError(
                f"The read of tile {part.tile} has shape {array.shape}; expected (..., "
                f"{part.read_shape[0]}, {part.read_shape[1]}), the shape of its read_box {part.read_box}."
            )
        if array.shape[:-2] != arrays[0].shape[:-2]:
            raise InvalidInputError(
                f"All reads must have the same leading axes; tile {parts[0].tile} has "
                f"{arrays[0].shape[:-2]}, tile {part.tile} {array.shape[:-2]}."
            )
    return arrays


def sorted_by_tile(
    parts: Sequence[TilePart], arrays: Sequence[np.ndarray]
) -> tuple[list[TilePart], list[np.ndarray]]:
    """Parts and their reads in increasing tile order (ties in the owner rule go to the lowest tile)."""
    order = sorted(range(len(parts)), key=lambda k: parts[k].tile)
    return [parts[k] for k in order], [arrays[k] for k in order]


@dataclass(frozen=True, eq=False)
class BlockReads:
    """One output block and what was read of every tile that meets it, checked.

    Made by `block_reads`; the input of `fuse_block` and `fuse_label_block`.

    Attributes:
        mosaic: the tiles' placement.
        block: (y, x) slices of the block in mosaic pixels, as given.
        parts: the parts that meet the block, in increasing tile order.
        arrays: ``arrays[k]`` is the read of tile ``parts[k].tile`` at
            ``parts[k].read_box``, (..., h, w), the same leading axes for all.
        shape: (..., Y, X) of the fused block: the reads' leading axes (or
            the ``leading_shape`` given when no tile meets the block), then
            the block's size.
    """

    mosaic: Mosaic
    block: tuple[slice, slice]
    parts: tuple[TilePart, ...]
    arrays: tuple[np.ndarray, ...]
    shape: tuple[int, ...]


def block_reads(
    mosaic: Mosaic,
    block: tuple[slice, slice],
    parts: Sequence[TilePart],
    pixels: Sequence[np.ndarray],
    *,
    leading_shape: tuple[int, ...] = (),
) -> BlockReads:
    """Check what was read for one block and put it in tile order.

    Args:
        mosaic: the tiles' placement, from `mosaic_geometry`.
        block: (y, x) slices of the output block in mosaic pixels.
        parts: ``block_parts(mosaic, block)`` (with ``whole_pixels=True`` for labels).
        pixels: ``pixels[k]`` is tile ``parts[k].tile`` read at
            ``parts[k].read_box``: shape (..., h, w), any leading axes
            (channels, z planes), the same for every part.
        leading_shape: leading axes of the output when there are no parts;
            ignored otherwise.

    Raises:
        InvalidInputError: (a ValueError) for a block outside the mosaic or
            reads that do not match the parts (see `checked_reads`).

    >>> m = mosaic_geometry([[0, 0], [0, 3]], (2, 4))
    >>> block = (slice(0, 2), slice(0, 7))
    >>> parts = block_parts(m, block)
    >>> reads = block_reads(m, block, parts, [np.zeros((3, *p.read_shape)) for p in parts])
    >>> [p.tile for p in reads.parts], reads.shape
    ([0, 1], (3, 2, 7))
    """
    (y0, y1), (x0, x1) = block_bounds(mosaic, block)
    arrays = checked_reads(parts, pixels)
    if arrays:
        leading_shape = arrays[0].shape[:-2]
    ordered, arrays = sorted_by_tile(parts, arrays)
    return BlockReads(
        mosaic, block, tuple(ordered), tuple(arrays), (*leading_shape, y1 - y0, x1 - x0)
    )
