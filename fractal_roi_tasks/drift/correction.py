"""Where each frame of a drifting time-lapse goes once corrected, on numpy arrays.

Apply Drift Correction moves frame ``t`` by its shift (the sign of
`fractal_roi_tasks.registration.shift.estimate_shift` and of
``scipy.ndimage.shift``: ``out[p] = frame[p - shift]``). Only the region every
frame sees after moving (the intersection over t) holds data; outside it the
corrected stack is zero in every frame, so it has no moving borders.
Nothing here reads files.
"""

from __future__ import annotations

import logging

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError

logger = logging.getLogger(__name__)

LINEAR = 1
"""Spline order of the sub-pixel resampling: linear (no overshoot, so values stay in range)."""


def common_region(shifts: np.ndarray, shape: tuple[int, ...], *, subpixel: bool = False) -> tuple[slice, ...]:
    """The region (one slice per axis) every frame covers after moving by its shift.

    Args:
        shifts: (T, D) shifts in pixels, axis order (z,) y, x.
        shape: the D spatial sizes of a frame.
        subpixel: the frames are resampled by their exact shifts (linear
            interpolation needs both neighbours inside the frame), not moved by
            the shifts rounded to whole pixels. The region is then also inside
            the whole-pixel one, so labels (moved by whole pixels) share it.

    Raises:
        InvalidInputError: the frames share no pixel (drift larger than the frame).

    >>> common_region(np.array([[0.0, 0.0], [2.0, -3.0]]), (10, 10))
    (slice(2, 10, None), slice(0, 7, None))
    """
    shifts = np.asarray(shifts, dtype=np.float64)
    whole = np.rint(shifts)
    size = np.asarray(shape, dtype=np.float64)
    low = np.maximum(0.0, whole.max(axis=0))
    high = np.minimum(size, size + whole.min(axis=0))
    if subpixel:  # out[p] = in[p - s] needs p - s in [0, N - 1]
        low = np.maximum(low, np.ceil(shifts.max(axis=0)))
        high = np.minimum(high, np.floor(size - 1 + shifts.min(axis=0)) + 1)
    if np.any(high <= low):
        raise InvalidInputError(
            f"The frames share no pixel once corrected: shifts reach {shifts.min(axis=0).tolist()} to "
            f"{shifts.max(axis=0).tolist()} px on frames of {list(shape)} px."
        )
    return tuple(slice(int(lo), int(hi)) for lo, hi in zip(low, high))


def frame_boxes(shifts: np.ndarray, region: tuple[slice, ...]) -> list[tuple[tuple[slice, ...], tuple[slice, ...]]]:
    """Per frame, (where in the frame, where in the corrected frame) of `region`, whole pixels.

    >>> frame_boxes(np.array([[0.0], [1.6]]), (slice(2, 10),))
    [((slice(2, 10, None),), (slice(2, 10, None),)), ((slice(0, 8, None),), (slice(2, 10, None),))]
    """
    whole = np.rint(np.asarray(shifts, dtype=np.float64)).astype(np.int64)
    return [
        (tuple(slice(r.start - int(s), r.stop - int(s)) for r, s in zip(region, row)), region)
        for row in whole
    ]


def resample_frame(frame: np.ndarray, shift: np.ndarray, region: tuple[slice, ...]) -> np.ndarray:
    """`frame` moved by the exact `shift` (linear interpolation), zero outside `region`.

    Args:
        frame: one frame of one channel, (Z, Y, X) or (Y, X), any real dtype.
        shift: its D shifts in pixels.
        region: the common region (`common_region` with ``subpixel=True``).

    Returns:
        An array of `frame`'s shape and dtype (integers rounded and clipped to the dtype).

    >>> resample_frame(np.array([0.0, 10.0, 20.0, 30.0]), np.array([0.5]), (slice(1, 4),))
    array([ 0.,  5., 15., 25.])
    """
    from scipy import ndimage

    moved = ndimage.shift(frame.astype(np.float32), shift, order=LINEAR, mode="constant", cval=0.0)
    out = np.zeros_like(frame)
    inside = moved[region]
    if np.issubdtype(frame.dtype, np.integer):
        info = np.iinfo(frame.dtype)
        inside = np.clip(np.rint(inside), info.min, info.max)
    out[region] = inside.astype(frame.dtype)
    return out
