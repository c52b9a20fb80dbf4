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
contribute to a block and which box of each to read, `fuse_block` fuses what
was read. Memory is a few blocks' worth whatever the size of the mosaic.

>>> tiles = [np.full((4, 6), 10, np.uint16), np.full((4, 6), 20, np.uint16)]
>>> mosaic = mosaic_geometry([[0.0, 0.0], [0.0, 3.0]], [[4, 6], [4, 6]])
>>> block = (slice(0, 4), slice(0, 9))
>>> parts = block_parts(mosaic, block)
>>> fused = fuse_block(mosaic, block, parts, [tiles[p.tile][p.read_box] for p in parts])
>>> fused[0].tolist()
[10, 10, 10, 12, 15, 18, 20, 20, 20]
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from fractal_roi_tasks.errors import InvalidInputError

logger = logging.getLogger(__name__)

INTERPOLATION_PAD_PX = 2
"""Pixels the cubic kernel reaches beyond a resampled pixel, per side."""

FRACTION_TOLERANCE_PX = 1e-3
"""Sub-pixel fractions at most this large are treated as whole pixels (no resampling)."""

_MIN_BORDER_DISTANCE_PX = 1e-3
"""Smallest border distance used for weights, so every footprint pixel weighs > 0."""

_KEYS_A = -0.5


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


def _block_bounds(mosaic: Mosaic, block) -> tuple[tuple[int, int], tuple[int, int]]:
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
    (y0, y1), (x0, x1) = _block_bounds(mosaic, block)
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


def _border_distance(part: TilePart, mosaic: Mosaic, axis: int) -> np.ndarray:
    """float64 distance to the tile border of each pixel of ``part.tile_box`` along ``axis``."""
    size = int(mosaic.tile_shapes[part.tile, axis])
    fraction = (
        part.fraction_px[axis] if abs(part.fraction_px[axis]) > FRACTION_TOLERANCE_PX else 0.0
    )
    u = np.arange(part.tile_box[axis].start, part.tile_box[axis].stop, dtype=np.float64) - fraction
    distance = np.minimum(u + 0.5, size - 0.5 - u)
    return np.maximum(distance, _MIN_BORDER_DISTANCE_PX)


def _owner_factors(part: TilePart, mosaic: Mosaic) -> tuple[np.ndarray, np.ndarray]:
    """float32 y and x factors of the owner score over ``part.block_box`` (the score is their product)."""
    return tuple(
        (_border_distance(part, mosaic, axis) / (mosaic.tile_shapes[part.tile, axis] / 2.0)).astype(
            np.float32
        )
        for axis in (0, 1)
    )


def _blend_factors(
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
class _Cell:
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


def _cells(parts: Sequence[TilePart], block_shape: tuple[int, int]) -> list[_Cell]:
    """Cut a block into rectangles along the parts' box edges.

    Most of a block is covered by one tile: those cells are plain copies.
    Edges closer than `_MIN_CELL_PX` share one band, so overlaps of tiles
    placed a few pixels apart make a few cells, not many slivers.
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
                    _Cell(
                        box=(slice(*rows), slice(*cols)),
                        members=tuple(members),
                        inside=tuple(inside),
                        source=tuple(source),
                    )
                )
    return cells


def _cell_owner(cell: _Cell, factors: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
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


def _keys_taps(fraction: float) -> tuple[np.ndarray, int]:
    """Keys cubic weights and the offset of the first tap, to sample at ``k - fraction``.

    The value at ``k - fraction`` is ``sum_i weights[i] * pixel[k + first + i]``.
    """
    first = -2 if fraction > 0 else -1
    s = np.abs(np.arange(first, first + 4) + fraction)
    a = _KEYS_A
    near = ((a + 2) * s - (a + 3)) * s * s + 1
    far = ((a * s - 5 * a) * s + 8 * a) * s - 4 * a
    weights = np.where(s <= 1, near, np.where(s < 2, far, 0.0))
    return weights / weights.sum(), first


def _interpolate(values: np.ndarray, fraction: float, crop: slice, axis: int) -> np.ndarray:
    """float32 ``values`` sampled at ``k - fraction`` for ``k`` in ``crop`` along ``axis``.

    Taps that leave ``values`` see its edge pixel repeated.
    """
    weights, first = _keys_taps(fraction)
    size = values.shape[axis]
    low = crop.start + first
    high = crop.stop + first + 3
    before, after = max(0, -low), max(0, high - size)
    if before or after:
        widths = [(0, 0)] * values.ndim
        widths[axis] = (before, after)
        values = np.pad(values, widths, mode="edge")
        low += before
    count = crop.stop - crop.start

    def tap(i: int) -> np.ndarray:
        index = [slice(None)] * values.ndim
        index[axis] = slice(low + i, low + i + count)
        return values[tuple(index)]

    out = np.multiply(tap(0), np.float32(weights[0]), dtype=np.float32)
    scratch = np.empty_like(out)
    for i in range(1, 4):
        np.multiply(tap(i), np.float32(weights[i]), out=scratch, dtype=np.float32)
        out += scratch
    return out


def _resampled(part: TilePart, array: np.ndarray) -> tuple[np.ndarray, bool]:
    """The tile on the mosaic grid over ``part.block_box``: (..., h, w), and whether it is a new float32 array."""
    values, fresh = array, False
    for axis in (0, 1):
        offset = part.read_box[axis].start
        crop = slice(part.tile_box[axis].start - offset, part.tile_box[axis].stop - offset)
        if abs(part.fraction_px[axis]) > FRACTION_TOLERANCE_PX:
            values = _interpolate(values, part.fraction_px[axis], crop, axis - 2)
            fresh = True
        else:
            values = values[(..., crop, slice(None)) if axis == 0 else (..., crop)]
    return values, fresh


def _float_bounds(dtype: np.dtype) -> tuple[np.float32, np.float32]:
    """float32 bounds that convert into integer ``dtype`` without overflow."""
    info = np.iinfo(dtype)
    low, high = np.float32(info.min), np.float32(info.max)
    if int(high) > info.max:
        high = np.nextafter(high, np.float32(0))
    return low, high


def _to_dtype(values: np.ndarray, dtype: np.dtype, *, fresh: bool) -> np.ndarray:
    """``values`` in ``dtype``: rounded and clipped for integer types (in place when ``fresh``)."""
    if values.dtype == dtype:
        return values
    if np.issubdtype(dtype, np.integer):
        if not (fresh and values.dtype == np.float32):
            values = values.astype(np.float32)
        np.rint(values, out=values)
        low, high = _float_bounds(dtype)
        np.clip(values, low, high, out=values)
    return values.astype(dtype)


def _checked_pixels(parts: Sequence[TilePart], pixels: Sequence[np.ndarray]) -> list[np.ndarray]:
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


def _sorted_parts(
    parts: Sequence[TilePart], arrays: Sequence[np.ndarray]
) -> tuple[list[TilePart], list[np.ndarray]]:
    order = sorted(range(len(parts)), key=lambda k: parts[k].tile)
    return [parts[k] for k in order], [arrays[k] for k in order]


def fuse_block(
    mosaic: Mosaic,
    block: tuple[slice, slice],
    parts: Sequence[TilePart],
    pixels: Sequence[np.ndarray],
    *,
    blending: Literal["linear", "none"] = "linear",
    ramp_px: float | None = None,
    dtype: npt.DTypeLike | None = None,
    leading_shape: tuple[int, ...] = (),
) -> np.ndarray:
    """Fuse the tiles that meet one output block.

    Each tile is resampled onto the mosaic grid at its sub-pixel position
    (Keys cubic convolution, separable, in float32; a plain copy along axes
    whose fraction is within `FRACTION_TOLERANCE_PX` of a whole pixel), then
    the tiles are blended (see the module doc). Where one tile alone covers
    a pixel, the pixel is that tile's (resampled) value.

    Args:
        mosaic: the tiles' placement, from `mosaic_geometry`.
        block: (y, x) slices of the output block in mosaic pixels.
        parts: ``block_parts(mosaic, block)`` (or with ``whole_pixels=True``).
        pixels: ``pixels[k]`` is tile ``parts[k].tile`` read at
            ``parts[k].read_box``: shape (..., h, w), any leading axes
            (channels, z planes), the same for every part, any numeric dtype.
        blending: ``"linear"`` (weights falling linearly to the tile borders,
            normalised sum) or ``"none"`` (every pixel from the one tile with
            the largest owner score, lowest index on ties).
        ramp_px: for ``"linear"``: the width in pixels over which a tile's
            weight rises from its border to 1; default half the tile (the
            weight grows up to the tile centre).
        dtype: output dtype; default that of the pixels (float32 when there
            are no parts).
        leading_shape: leading axes of the output when there are no parts;
            ignored otherwise.

    Returns:
        (..., Y, X) array of the block's size, in ``dtype``: integers are
        rounded and clipped to the type's range. Pixels no tile covers are 0.

    Raises:
        InvalidInputError: (a ValueError) for an unknown blending, a bad
            ``ramp_px``, or reads that do not match the parts.

    A tile placed half a pixel to the right shows its own pixel ``j - 0.5``
    at mosaic pixel ``j`` (edge pixels are extrapolated):

    >>> m = mosaic_geometry([[0.0, 0.5]], (1, 8))
    >>> block = (slice(0, 1), slice(0, 8))
    >>> parts = block_parts(m, block)
    >>> parts[0].fraction_px
    (0.0, 0.5)
    >>> tile = np.arange(8, dtype=np.float32)[None] * 10
    >>> np.round(fuse_block(m, block, parts, [tile]), 3).tolist()
    [[-0.625, 4.375, 15.0, 25.0, 35.0, 45.0, 55.0, 65.625]]
    """
    (y0, y1), (x0, x1) = _block_bounds(mosaic, block)
    if blending not in ("linear", "none"):
        raise InvalidInputError(f"blending must be 'linear' or 'none', got {blending!r}.")
    if ramp_px is not None and not (np.isfinite(ramp_px) and ramp_px > 0):
        raise InvalidInputError(
            f"ramp_px must be a positive number of pixels or None, got {ramp_px!r}."
        )
    arrays = _checked_pixels(parts, pixels)
    if arrays:
        leading_shape = arrays[0].shape[:-2]
        out_dtype = np.dtype(arrays[0].dtype if dtype is None else dtype)
    else:
        out_dtype = np.dtype(np.float32 if dtype is None else dtype)
    out = np.zeros(tuple(leading_shape) + (y1 - y0, x1 - x0), out_dtype)
    parts, arrays = _sorted_parts(parts, arrays)
    logger.debug("fusing block %s from tiles %s (%s)", block, [p.tile for p in parts], blending)
    resampled = [_resampled(part, array) for part, array in zip(parts, arrays, strict=True)]

    if blending == "none":
        factors = [_owner_factors(part, mosaic) for part in parts]
    else:
        factors = [_blend_factors(part, mosaic, ramp_px) for part in parts]
    for cell in _cells(parts, out.shape[-2:]):
        target = out[(..., *cell.box)]
        pieces = [
            (resampled[k][0][(..., *cell.source[i])], resampled[k][1])
            for i, k in enumerate(cell.members)
        ]
        if len(cell.members) == 1:
            values, fresh = pieces[0]
            target[(..., *cell.inside[0])] = _to_dtype(values, out_dtype, fresh=fresh)
        elif blending == "none":
            owner = _cell_owner(cell, factors)
            for i, (values, fresh) in enumerate(pieces):
                np.copyto(
                    target[(..., *cell.inside[i])],
                    _to_dtype(values, out_dtype, fresh=fresh),
                    where=owner[cell.inside[i]] == i,
                )
        else:
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
            target[...] = _to_dtype(total, out_dtype, fresh=True)
    return out
