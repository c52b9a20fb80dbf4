"""The sub-pixel step of `fractal_roi_tasks.stitching.pairwise.measure_link`.

Measured on tiles cut from the bundled images with stage error, vignetting
and camera noise (see ``tests/test_stitching_placement.py`` and
``benchmarks/bench_stitch.py``):

The two windows are cropped to their common part at the whole-pixel
offset. The first window's part is multiplied by the smooth gain (a plane in
y and x, fitted on smoothed copies) that best maps it onto the second's:
vignetting multiplies the two tiles by different profiles over their
overlap, with opposite slopes, which otherwise pulls the peak (median error
0.06 px without the gain, 0.03 px with it, on a noise-free 2x-magnified
low-texture image with 30% vignetting). Each part then loses its quadratic
trend, and both are compared by the plain cross-correlation of
`fractal_roi_tasks.translation.peak` (Tukey windows, the taper of one
following the sub-pixel estimate, the maximum found by Newton's method on
the exact Fourier sum), weighted per spatial frequency for a
maximum-likelihood estimate (`fractal_roi_tasks.translation.likelihood`):
from the two windows themselves, the shared signal and the noise in rings
of equal frequency set the weights, so the band adapts to each pair (fine
texture in focus, the coarse texture of a magnified low-contrast image:
there, with noise at 1% of the range, median error 0.51 px instead of
0.87 px with the fixed band). Rounds repeat until the taper's place and
the estimate agree (`fractal_roi_tasks.translation.refine`: on a thin
overlap the taper pulls the estimate strongly), the taper staying within
0.5 px of the first estimate. A common part narrower than 8 px is not
refined.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.translation import spectra
from fractal_roi_tasks.translation.boxes import common_box, moved
from fractal_roi_tasks.translation.intensity import detrended, gain_matched
from fractal_roi_tasks.translation.likelihood import expected_error, ml_weight
from fractal_roi_tasks.translation.peak import (
    correlation_grid,
    grid_peak,
    newton_maximum,
    normalised_correlation,
)
from fractal_roi_tasks.translation.refine import RefinementRule, follow_window

_TAPER_FRACTION = 0.1
"""Cosine flank of the sub-pixel windows, as a fraction of each side (at least 4 px)."""

_SUBPIXEL_RULE = RefinementRule(
    max_rounds=8,
    tolerance_px=0.01,
    restart_step_px=2.0,
    max_drift_px=0.5,
    stop_on_predicted_change=False,
    stop_when_still=True,
)
"""At most 8 sub-pixel rounds (crop, taper, correlate, Newton), stopping once the
estimate is within 0.01 px of the window's placement; the window stays within
0.5 px of the first sub-pixel estimate (with noise, the estimate is a rough
function of the taper's place and the secant steps can run away)."""

MIN_SUBPIXEL_PX = 8
"""The sub-pixel step needs a common part at least this wide (in y and x), in pixels."""

_DETREND_ORDER = 2
"""Each common part loses its least-squares polynomial in y and x of this order."""

_GAIN_ORDER = 1
"""Order of the polynomial gain that maps the first window's common part onto the second's."""

_GAIN_SIGMA_PX = 6.0
"""The gain is fitted on copies smoothed by this sigma (px), so that texture does not drive it."""


@dataclass(frozen=True)
class SubpixelOffset:
    """Result of `subpixel_offset`.

    Attributes:
        displacement: (dy, dx) ``d`` with ``second[v] ~ first[v + d]``, window pixels.
        quality: normalised cross-correlation of the aligned, tapered,
            band-passed common parts, in [-1, 1].
        uncertainty_px: expected error of the displacement (the standard
            error the ML-weighted peak's curvature predicts), px.
    """

    displacement: np.ndarray
    quality: float
    uncertainty_px: float


def subpixel_offset(
    first: np.ndarray,
    second: np.ndarray,
    start: Sequence[int],
    band_px: tuple[float, float],
) -> SubpixelOffset | None:
    """Sub-pixel displacement (second[v] ~ first[v + d]) near ``start``, quality and expected error.

    Args:
        first: (Y, X) float32 window of the first tile.
        second: (Y', X') float32 window of the second tile.
        start: (dy, dx) whole-pixel displacement from the whole-pixel match.
        band_px: (finest, coarsest) periods in pixels the correlation weighs.

    Returns:
        A `SubpixelOffset`, or None when the common part at a placement is
        narrower than 8 px.

    The second window's common part is the reference (its taper fixed); the
    first window's part, cropped at the whole-pixel estimate, follows the
    sub-pixel rest with its taper, so both hold the same content. Rounds
    repeat until estimate and window agree (`follow_window`).
    """
    placed: dict = {}  # what is computed once per whole-pixel placement

    def measure(integer: tuple[int, int], residual: np.ndarray) -> tuple[np.ndarray, tuple] | None:
        first_round = not placed
        if placed.get("integer") != integer:
            box = common_box(second.shape, first.shape, integer, min_size=MIN_SUBPIXEL_PX)
            if box is None:
                return None
            spectral_band = spectra.band(spectra.fast_shape([s.stop - s.start for s in box]), band_px)
            reference_crop = second[box]
            reference = spectra.windowed_spectrum(
                detrended(reference_crop, (0.0, 0.0), taper_fraction=_TAPER_FRACTION, order=_DETREND_ORDER),
                (0.0, 0.0),
                _TAPER_FRACTION,
                spectral_band,
            )
            # Gain and trend once per placement: the sub-pixel rest barely changes them.
            moving_crop = gain_matched(
                first[moved(box, integer)],
                reference_crop,
                taper_fraction=_TAPER_FRACTION,
                order=_GAIN_ORDER,
                sigma_px=_GAIN_SIGMA_PX,
            )
            placed.update(
                integer=integer,
                band=spectral_band,
                reference=reference,
                reference_energy=float(spectral_band.energy(reference)),
                reference_conj=np.conj(reference) * spectral_band.weight,
                moving_crop=detrended(
                    moving_crop, (0.0, 0.0), taper_fraction=_TAPER_FRACTION, order=_DETREND_ORDER
                ),
                ml_weight=None,
                ml_rounds=0,
            )
        spectral_band = placed["band"]
        moving = spectra.windowed_spectrum(placed["moving_crop"], residual, _TAPER_FRACTION, spectral_band)
        cross = moving * placed["reference_conj"]
        local_start = residual
        if first_round:
            local_start = np.array(grid_peak(cross, spectral_band, residual, (1, 1)))
        # Weights from the first two estimates at this whole-pixel placement,
        # then fixed (re-estimated every round, they make the estimate wander
        # by their own noise).
        if placed["ml_rounds"] < 2:
            placed["ml_weight"] = ml_weight(placed["reference"], moving, spectral_band, local_start)
            placed["ml_rounds"] += 1
        weighted = cross * placed["ml_weight"]
        local = np.array(newton_maximum(weighted, spectral_band, local_start)[:2])
        # first[u] = second[u - d] and moving = first[box + integer]: the
        # moving content sits d - integer further than the reference's.
        measured = np.array(integer) + local
        energies = (placed["reference_energy"], float(spectral_band.energy(moving)))
        return measured, (local, cross, weighted, spectral_band, energies)

    fit = follow_window(measure, start, _SUBPIXEL_RULE)
    if fit is None:
        return None
    local, cross, weighted, spectral_band, (energy_ref, energy_mov) = fit.payload
    uncertainty = expected_error(weighted, spectral_band, local)
    if energy_ref <= 0 or energy_mov <= 0:
        return SubpixelOffset(fit.displacement, 0.0, uncertainty)
    value = correlation_grid(cross, spectral_band, local[:1], local[1:])[0, 0]
    return SubpixelOffset(fit.displacement, normalised_correlation(value, energy_ref, energy_mov), uncertainty)
