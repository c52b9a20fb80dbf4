"""The coarse step of registration: the shift measured on a coarse pyramid level.

`coarse_shift` registers two coarse images (a pyramid level, or block means
of the full resolution) by phase correlation, whole coarse pixels robust for
shifts of tens of pixels, refined to about a tenth of a coarse pixel on the
band-passed cross-correlation; `default_coarse_factor` is the binning
`estimate_shift` uses when none is given.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from fractal_roi_tasks.registration.inputs import (
    as_image,
    check_factor,
    check_options,
    clipped,
    per_axis,
    same_shape,
    yx_image,
)
from fractal_roi_tasks.registration.shift_estimate import ShiftEstimate
from fractal_roi_tasks.translation.whole_pixel import coarse_displacement

logger = logging.getLogger(__name__)

COARSE_TARGET_PX = 128
"""`coarse_factor=None` bins the images to about this many pixels on their shorter side."""


def default_coarse_factor(shape: Sequence[int]) -> int:
    """The power of two (at most 8) that bins the shorter side of a (Y, X) ``shape`` to >= 128 px.

    >>> default_coarse_factor((512, 512)), default_coarse_factor((200, 1000))
    (4, 1)
    """
    factor = 1
    while factor < 8 and min(shape) // (factor * 2) >= COARSE_TARGET_PX:
        factor *= 2
    return factor


def coarse_band(band_px: tuple[float, float], factor: int) -> tuple[float, float]:
    """``band_px`` (full-resolution pixels) in pixels of a level ``factor`` times coarser.

    Periods below 2 coarse pixels become 2; a high-pass that would meet the
    low-pass is dropped.

    >>> coarse_band((6.0, 30.0), 4), coarse_band((6.0, 8.0), 8)
    ((2.0, 7.5), (2.0, 0.0))
    """
    values = tuple(0.0 if v == 0 else max(v / factor, 2.0) for v in band_px)
    if values[1] and values[1] <= values[0]:
        values = (values[0], 0.0)
    return values


def coarse_shift(
    reference_coarse: np.ndarray,
    moving_coarse: np.ndarray,
    *,
    factor: int,
    max_shift_px: float | Sequence[float] | None = None,
    intensity_quantiles: tuple[float, float] | None = (0.01, 0.999),
    min_quality: float = 0.3,
    band_px: tuple[float, float] = (6.0, 30.0),
) -> ShiftEstimate:
    """The coarse step alone: the shift measured on a coarse pyramid level.

    Both images are clipped to their intensity quantiles (a stack is averaged
    over z) and registered by phase correlation (whole coarse pixels, robust
    for shifts of tens of pixels), then refined to about a tenth of a coarse
    pixel on the band-passed cross-correlation; see `estimate_shift`. The
    result places the windows of `refine_shift` (see `refinement_windows`).

    Args:
        reference_coarse: (Y, X) or (Z, Y, X) array, any real dtype: the ROI
            of the reference at a level ``factor`` times coarser in y and x
            than the full-resolution pixels the result is given in (a
            pyramid level, or `block_mean` of the full resolution).
        moving_coarse: same shape, the moving acquisition's ROI at that level.
        factor: pixel size of the coarse level over the full-resolution one
            (4 for pyramid level 2 of a pyramid halving each level).
        max_shift_px: largest y/x shift searched, in full-resolution pixels:
            one number, or one per axis ((z,) y, x; z is ignored). None:
            half the image.
        intensity_quantiles: as in `estimate_shift`.
        min_quality: below this quality the estimate is flagged unreliable.
        band_px: as in `estimate_shift`, in full-resolution pixels.

    Returns:
        A `ShiftEstimate` in full-resolution pixels, one entry per input
        axis (z is 0): ``shift`` is the sub-pixel estimate at the coarse
        level times ``factor`` (not rounded), ``coarse_shift`` the whole
        coarse pixels times ``factor``, ``quality`` the normalised
        band-passed correlation of the whole coarse images at ``shift``
        (lower than the fine quality when the overlap is small).

    Raises:
        InvalidInputError: (a ValueError) as `estimate_shift`, for images
            smaller than 32 x 32 or an invalid ``factor``.

    >>> from fractal_roi_tasks.translation.intensity import block_mean
    >>> from fractal_roi_tasks.sample_data import sample_fov
    >>> reference = block_mean(sample_fov(0), 4)
    >>> moving = block_mean(sample_fov(0, (21.0, -42.5)), 4)
    >>> estimate = coarse_shift(reference, moving, factor=4)
    >>> [round(v) for v in estimate.shift], estimate.coarse_shift, estimate.reliable
    ([-21, 42], (-20.0, 44.0), True)
    """
    reference = as_image(reference_coarse, "reference_coarse")
    moving = as_image(moving_coarse, "moving_coarse")
    same_shape(reference, moving, "coarse")
    check_factor(factor, "factor", optional=False)
    band_px = check_options(1, intensity_quantiles, min_quality, band_px)
    yx_shape = reference.shape[-2:]
    zeros = (0.0,) * reference.ndim
    default = [0.0] * (reference.ndim - 2) + [n * factor / 2 for n in yx_shape]
    max_shift_yx = per_axis(max_shift_px, reference.ndim, default)[-2:]
    reference_f, moving_f, reason = clipped(reference, moving, intensity_quantiles)
    if reason:
        logger.debug("coarse_shift: %s", reason)
        return ShiftEstimate(zeros, 0.0, False, reason, zeros)
    whole, subpixel, quality = coarse_displacement(
        yx_image(reference_f),
        yx_image(moving_f),
        [m / factor for m in max_shift_yx],
        coarse_band(band_px, factor),
    )
    lead = (0.0,) * (reference.ndim - 2)
    shift = lead + tuple(0.0 - p * factor for p in subpixel)
    whole_shift = lead + tuple(0.0 - float(w * factor) for w in whole)
    reliable = quality >= min_quality
    reason = "" if reliable else f"quality {quality:.2f} below {min_quality}"
    logger.debug("coarse_shift: factor %d, shift %s, quality %.3f", factor, shift, quality)
    return ShiftEstimate(shift, quality, reliable, reason, whole_shift)
