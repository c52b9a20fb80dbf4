"""Resampling a tile onto the mosaic grid at its sub-pixel place, and back to its dtype.

Mosaic pixel ``j`` shows the tile at the sub-pixel coordinate
``u = j - position``, resampled with the Keys cubic convolution kernel
(a = -1/2, 4 taps, separable, in float32; the tile continued by its edge
pixels where the taps leave it). Along an axis whose fraction is within
`fractal_roi_tasks.stitching.mosaic.FRACTION_TOLERANCE_PX` of a whole pixel,
it is a plain copy.
"""

from __future__ import annotations

import logging

import numpy as np

from fractal_roi_tasks.stitching.mosaic import FRACTION_TOLERANCE_PX, TilePart

logger = logging.getLogger(__name__)

_KEYS_A = -0.5


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


def resample_part(part: TilePart, array: np.ndarray) -> tuple[np.ndarray, bool]:
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


def to_dtype(values: np.ndarray, dtype: np.dtype, *, fresh: bool) -> np.ndarray:
    """``values`` in ``dtype``: rounded and clipped for integer types (in place when ``fresh``).

    >>> to_dtype(np.array([-3.6, 2.5, 70000.0], np.float32), np.dtype(np.uint16), fresh=False).tolist()
    [0, 2, 65535]
    """
    if values.dtype == dtype:
        return values
    if np.issubdtype(dtype, np.integer):
        if not (fresh and values.dtype == np.float32):
            values = values.astype(np.float32)
        np.rint(values, out=values)
        low, high = _float_bounds(dtype)
        np.clip(values, low, high, out=values)
    return values.astype(dtype)
