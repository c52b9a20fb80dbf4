"""The fine step of registration: the sub-pixel shift from two full-resolution windows.

`fine_displacement` is the y/x measurement on the mean over z (the windows
of `fractal_roi_tasks.translation`, their taper following the estimate until
both agree), `finish` adds z, the quality and the reliability flags, and
`refine_shift` runs both on two windows a caller cut (see
`fractal_roi_tasks.registration.windows`). See
`fractal_roi_tasks.registration.shift` for the method and its figures.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.registration.inputs import (
    MIN_OVERLAP_PX,
    as_image,
    check_options,
    clipped,
    per_axis,
    same_shape,
    yx_image,
)
from fractal_roi_tasks.registration.shift_estimate import ShiftEstimate
from fractal_roi_tasks.registration.z_shift import z_and_quality
from fractal_roi_tasks.translation.boxes import common_box, fits, moved
from fractal_roi_tasks.translation.peak import grid_peak, newton_maximum, normalised_correlation
from fractal_roi_tasks.translation.refine import RefinementRule, follow_window
from fractal_roi_tasks.translation.spectra import Band, band, fast_shape, windowed_spectrum

logger = logging.getLogger(__name__)

TAPER_FRACTION = 0.1
"""Cosine flank of the fine window, as a fraction of each side (at least 4 px)."""

FINE_RULE = RefinementRule(max_rounds=6, tolerance_px=0.003, restart_step_px=1.0)
"""At most 6 rounds (crop, taper, correlate, Newton; 2 are typical); stop once the
estimate is within 0.003 px of its window's placement, or once another round is
predicted to move it by less than that."""


@dataclass
class FineState:
    """Result of the fine step, and what the quality and z steps reuse."""

    displacement: np.ndarray  # (dy, dx) of the moving content, pixels
    integer: tuple[int, int]  # whole-pixel offset of the last moving window
    residual: np.ndarray  # sub-pixel offset of the last moving window
    reference_window: tuple[slice, slice]
    band: Band
    reference_conj: np.ndarray  # conj(cropped reference spectrum) * band weight
    reference_energy: float
    moving_energy: float
    cross: np.ndarray
    peak: float  # the band-passed correlation at the displacement


def fine_displacement(
    reference: np.ndarray,
    moving: np.ndarray,
    start: Sequence[float],
    search_radius: Sequence[int],
    *,
    band_px: tuple[float, float],
) -> FineState | None:
    """Sub-pixel displacement of ``moving`` (Y, X) against ``reference``, from ``start``.

    The reference window is the overlap at ``start`` less the search radius
    (so it stays valid for every displacement searched) and its spectrum is
    computed once. Each round crops the moving image at the whole-pixel part
    of the current placement and moves its taper by the sub-pixel rest, so
    both windows hold the same content; the first round also searches whole
    pixels within ``search_radius`` of ``start``. The rounds follow the
    window to where it agrees with the estimate
    (`fractal_roi_tasks.translation.refine.follow_window`). None when the
    images overlap by less than 16 px.
    """
    shape = reference.shape
    integer = tuple(int(v) for v in np.round(start))
    margin = [r + 1 for r in search_radius]
    window = common_box(shape, shape, integer, min_size=MIN_OVERLAP_PX, margin=margin)
    if window is None:
        return None
    reference_side: dict = {}

    def measure(integer: tuple[int, int], residual: np.ndarray) -> tuple[np.ndarray, FineState] | None:
        nonlocal window
        first = not reference_side
        if first or not fits(window, shape, integer):
            if not first:
                # The peak left the searched box: a window around it instead.
                window = common_box(shape, shape, integer, min_size=MIN_OVERLAP_PX, margin=(1, 1))
                if window is None:
                    return None
            spectral_band = band(fast_shape([s.stop - s.start for s in window]), band_px)
            spectrum = windowed_spectrum(reference[window], (0.0, 0.0), TAPER_FRACTION, spectral_band)
            conj = np.conj(spectrum)
            conj *= spectral_band.weight
            reference_side.update(
                band=spectral_band, conj=conj, energy=float(spectral_band.energy(spectrum))
            )
        spectral_band = reference_side["band"]
        moving_spectrum = windowed_spectrum(
            moving[moved(window, integer)], residual, TAPER_FRACTION, spectral_band
        )
        cross = moving_spectrum * reference_side["conj"]
        if first and max(search_radius) > 0:
            local_start = np.array(grid_peak(cross, spectral_band, residual, search_radius), float)
        else:
            local_start = residual
        *local, peak = newton_maximum(cross, spectral_band, local_start)
        displacement = np.array(integer) + np.array(local)
        return displacement, FineState(
            displacement=displacement,
            integer=integer,
            residual=residual,
            reference_window=window,
            band=spectral_band,
            reference_conj=reference_side["conj"],
            reference_energy=reference_side["energy"],
            moving_energy=float(spectral_band.energy(moving_spectrum)),
            cross=cross,
            peak=peak,
        )

    fit = follow_window(measure, start, FINE_RULE)
    return None if fit is None else fit.payload


def finish(
    state: FineState | None,
    reference_f: np.ndarray,
    moving_f: np.ndarray,
    *,
    offset_yx: Sequence[int],
    max_shift: Sequence[float],
    coarse_shift: tuple[float, ...],
    upsample_factor: int,
    min_quality: float,
) -> ShiftEstimate:
    """z, quality and reliability from the fine step's state (see `estimate_shift`)."""
    is_3d = reference_f.ndim == 3
    if state is None:
        reason = "the images overlap by less than 16 pixels at the coarse shift"
        return ShiftEstimate(coarse_shift, 0.0, False, reason, coarse_shift)
    displacement_yx = [d + o for d, o in zip(state.displacement, offset_yx)]
    if is_3d and reference_f.shape[0] > 1:
        dz, quality = z_and_quality(
            reference_f,
            moving_f,
            reference_window=state.reference_window,
            integer=state.integer,
            residual=state.residual,
            local=state.displacement - np.array(state.integer),
            spectral_band=state.band,
            taper_fraction=TAPER_FRACTION,
            max_shift_z=max_shift[0],
        )
        displacement = [dz, *displacement_yx]
    else:
        quality = normalised_correlation(state.peak, state.reference_energy, state.moving_energy)
        displacement = ([0.0] if is_3d else []) + list(displacement_yx)
    shift = tuple(
        float(np.round(-d * upsample_factor) / upsample_factor) + 0.0 for d in displacement
    )
    reasons = []
    # A shift beyond the limit is named first: it says why the quality is
    # often low too (the true peak lies outside the searched range).
    if any(abs(s) > m + 1e-9 for s, m in zip(shift, max_shift)):
        reasons.append(f"shift {shift} exceeds max_shift_px {tuple(max_shift)}")
    if quality < min_quality:
        reasons.append(f"quality {quality:.2f} below {min_quality}")
    reliable = not reasons
    reason = "; ".join(reasons)
    logger.debug("shift %s, quality %.3f, %s", shift, quality, reason or "reliable")
    return ShiftEstimate(shift, quality, reliable, reason, coarse_shift)


def refine_shift(
    reference_window: np.ndarray,
    moving_window: np.ndarray,
    initial_shift: Sequence[float],
    *,
    offset_px: Sequence[int] = (0, 0),
    upsample_factor: int = 100,
    max_shift_px: float | Sequence[float] | None = None,
    intensity_quantiles: tuple[float, float] | None = (0.01, 0.999),
    min_quality: float = 0.3,
    band_px: tuple[float, float] = (6.0, 30.0),
) -> ShiftEstimate:
    """The fine step alone: the sub-pixel shift from two windows of the images.

    The windows are cut from the two acquisitions at full resolution (or the
    requested level), the moving one ``offset_px`` further along y and x;
    ``initial_shift`` (from `coarse_shift`) must be within about a pixel.
    The sub-pixel step of `estimate_shift` runs on them (whole pixels
    within 1 of the start, then Newton's method, repeated until window and
    estimate agree), then z and the quality on all planes.

    Args:
        reference_window: (Y, X) or (Z, Y, X) array, any real dtype, at least
            32 x 32 (96 x 96 recommended: smaller windows are as accurate on nuclei, larger ones more often hold an artefact). Not modified.
        moving_window: same shape.
        initial_shift: ((z,) y, x) or (y, x) shift of the whole images in
            pixels, fractal-tasks-core's sign (z is ignored).
        offset_px: (y, x) whole pixels: where ``moving_window`` starts in the
            moving image minus where ``reference_window`` starts in the
            reference image (see `refinement_windows`).
        upsample_factor: as in `estimate_shift`.
        max_shift_px: largest shift accepted, ((z,) y, x) or one number;
            None: ``Z // 2`` planes in z, no limit in y and x. A larger
            estimate is flagged unreliable.
        intensity_quantiles: as in `estimate_shift`, on the windows.
        min_quality: as in `estimate_shift`.
        band_px: as in `estimate_shift`.

    Returns:
        A `ShiftEstimate` of the whole images (``offset_px`` included), one
        entry per input axis; ``coarse_shift`` is ``initial_shift`` rounded.

    Raises:
        InvalidInputError: (a ValueError) as `estimate_shift`.

    >>> from fractal_roi_tasks.sample_data import sample_fov
    >>> reference, moving = sample_fov(0), sample_fov(0, (21.3, -42.6))
    >>> window = (slice(200, 328), slice(200, 328))
    >>> moved = (slice(221, 349), slice(157, 285))
    >>> estimate = refine_shift(
    ...     reference[window], moving[moved], (-21.0, 42.0), offset_px=(21, -43)
    ... )
    >>> estimate.shift, estimate.reliable
    ((-21.3, 42.6), True)
    """
    reference = as_image(reference_window, "reference_window")
    moving = as_image(moving_window, "moving_window")
    same_shape(reference, moving, "window")
    band_px = check_options(upsample_factor, intensity_quantiles, min_quality, band_px)
    offset = tuple(int(o) for o in offset_px)
    initial = [float(v) for v in initial_shift][-2:]
    if len(offset) != 2 or len(initial) != 2:
        raise InvalidInputError(
            f"offset_px must be (y, x) and initial_shift ((z,) y, x), got {offset_px!r} "
            f"and {initial_shift!r}."
        )
    planes = reference.shape[0] if reference.ndim == 3 else 1
    default = ([float(planes // 2)] if reference.ndim == 3 else []) + [math.inf, math.inf]
    max_shift = per_axis(max_shift_px, reference.ndim, default)
    lead = (0.0,) * (reference.ndim - 2)
    coarse = lead + tuple(float(round(v)) + 0.0 for v in initial)
    reference_f, moving_f, reason = clipped(reference, moving, intensity_quantiles)
    if reason:
        logger.debug("refine_shift: %s", reason)
        return ShiftEstimate(coarse, 0.0, False, reason, coarse)
    start = [-s - o for s, o in zip(initial, offset)]
    state = fine_displacement(yx_image(reference_f), yx_image(moving_f), start, (1, 1), band_px=band_px)
    return finish(
        state,
        reference_f,
        moving_f,
        offset_yx=offset,
        max_shift=max_shift,
        coarse_shift=coarse,
        upsample_factor=upsample_factor,
        min_quality=min_quality,
    )
