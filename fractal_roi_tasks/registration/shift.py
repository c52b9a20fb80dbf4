"""Sub-pixel translation between two acquisitions of the same field of view.

`estimate_shift` measures, for one region of interest, how far the moving
acquisition (a later multiplexing cycle) sits from the reference acquisition.
The sign is fractal-tasks-core's and scikit-image's: the result is the shift
to *apply* to the moving image to register it onto the reference, so
``scipy.ndimage.shift(moving_image, estimate.shift)`` approximates
``reference_image``; content displaced by ``+d`` pixels in the moving image
gives ``-d``.

Method (each choice measured on the bundled cardiomyocyte nuclei with
Poisson and gaussian camera noise; see ``tests/test_registration_core.py``
and ``benchmarks/bench_registration.py``):

1. Intensities: a float32 copy of each image, clipped to two intensity
   quantiles (default 1% and 99.9%, estimated on at most 4,096 pixels), as
   fractal-tasks-core's intensity rescaling does.
2. Coarse, whole pixels: both images (for a stack: their mean over z) are
   binned ``coarse_factor`` x ``coarse_factor`` (block mean, the equivalent
   of reading a coarser pyramid level) and registered by phase correlation,
   fractal-tasks-core's method: robust for shifts of tens of pixels. The
   same spectra give a sub-pixel estimate at the binned level (Newton's
   method on the band-passed cross-correlation), good to ~0.1 px at full
   resolution, which places the windows of the fine step.
   `coarse_shift` is this step alone, on a coarse pyramid level the caller
   read (Calculate Registration reads level 2), and `refine_shift` step 3
   on two windows placed by `refinement_windows`.
3. Fine, sub-pixel, at the input resolution on the overlapping windows only:
   a Tukey taper whose sub-pixel position follows the current estimate on
   the moving side (so both windows hold the same content: a taper fixed to
   the frame biases the estimate towards whole pixels), a band-pass (detail
   finer than ``band_px[0]``, mostly noise, is dropped; structures much
   larger than ``band_px[1]``, such as illumination or the flat inside of a
   saturated artefact, get little weight), and the maximum of the *plain*
   cross-correlation as a continuous function of the shift, by Newton's
   method on its Fourier sum (exact derivatives, no upsampled FFT). Plain
   correlation is the least noise-sensitive (phase correlation weighs the
   noisy high frequencies as much as the signal: 3x the error); the
   band-pass gives it phase correlation's robustness to artefacts. Rounds
   repeat until estimate and window agree (Broyden's method on that fixed
   point): two on nuclei, up to six where a strong edge crosses the taper
   and pulls the estimate towards the window.
   Bias on noise-free real texture: ~1e-4 px (max 3e-4 measured); with
   strong noise the error is ~0.01 px.
4. z (stacks with 2 planes or more): every reference plane is correlated with
   every moving plane at the y/x shift found, and a Lucas-Kanade iteration
   along z (moving stack interpolated with cubic weights) built only from
   inner products that share no noise gives the sub-plane z shift
   (minimising squared differences to an interpolated noisy stack would
   pull it towards half planes by up to 0.4 plane). Sub-plane z needs at
   least 4 planes; measured z error on defocus stacks: ~0.03 plane with 5
   planes, ~0.01 with 9.
5. Quality: the normalised cross-correlation of the aligned, tapered,
   band-passed overlaps (over the overlapping planes in 3D), in [-1, 1];
   below ``min_quality`` the estimate is flagged unreliable. A field of pure
   background scores ~0.01, real nuclei with strong noise ~0.9.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.registration import correlation as corr

logger = logging.getLogger(__name__)

_MIN_OVERLAP_PX = 16
"""Overlapping windows narrower than this (in any of y, x) are not refined."""

_SMALL_SHIFT_PX = 4
"""With ``max_shift_px`` at most this (y and x), the coarse step is skipped."""

_COARSE_TARGET_PX = 128
"""`coarse_factor=None` bins the images to about this many pixels on their shorter side."""

_FINE_ROUNDS = 6
"""At most this many fine rounds (crop, taper, correlate, Newton); 2 are typical."""

_WINDOW_TOLERANCE_PX = 0.003
"""The fine step stops once the estimate is this close to its window's placement, or
once another round is predicted to move the estimate by less than this."""

_TAPER_FRACTION = 0.1
"""Cosine flank of the fine window, as a fraction of each side (at least 4 px)."""


@dataclass(frozen=True)
class ShiftEstimate:
    """The translation that registers a moving image onto a reference image.

    Attributes:
        shift: ``(dz, dy, dx)`` for 3D inputs, ``(dy, dx)`` for 2D inputs, in
            pixels of the inputs: the shift to apply to the moving image to
            register it onto the reference (fractal-tasks-core's and
            scikit-image's sign; ``scipy.ndimage.shift(moving, shift)``
            approximates the reference). Content displaced by ``+d`` in the
            moving image gives ``-d``. Multiples of ``1 / upsample_factor``.
        quality: normalised cross-correlation of the overlapping parts after
            alignment (tapered and high-passed), in [-1, 1]; 0.0 when an
            image has no contrast.
        reliable: ``quality >= min_quality`` and both images have contrast.
            When False, use a fallback (e.g. the well's other FOVs).
        reason: empty when reliable, otherwise why not, e.g.
            ``"no contrast in the moving image"`` or
            ``"quality 0.05 below 0.3"``.
        coarse_shift: the whole-pixel shift of the coarse step, same axes and
            sign as ``shift`` (useful to see how far the refinement moved).
    """

    shift: tuple[float, ...]
    quality: float
    reliable: bool
    reason: str
    coarse_shift: tuple[float, ...] = ()


def _as_image(array: object, what: str) -> np.ndarray:
    image = np.asarray(array)
    if image.dtype.kind not in "uif":
        raise InvalidInputError(
            f"{what} must be a real-valued numeric array, got dtype {image.dtype}."
        )
    if image.ndim not in (2, 3):
        raise InvalidInputError(
            f"{what} must be 2D (Y, X) or 3D (Z, Y, X), got shape {image.shape}; "
            "drop channel and time axes before calling."
        )
    if min(image.shape[-2:]) < 2 * _MIN_OVERLAP_PX:
        raise InvalidInputError(
            f"{what} is {image.shape[-2]} x {image.shape[-1]} pixels in (Y, X); "
            f"at least {2 * _MIN_OVERLAP_PX} x {2 * _MIN_OVERLAP_PX} are needed."
        )
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise InvalidInputError(f"{what} contains NaN or infinite values.")
    return image


def _per_axis(value: float | Sequence[float] | None, ndim: int, default: Sequence[float]) -> list[float]:
    if value is None:
        return [float(v) for v in default]
    values = [float(value)] * ndim if np.isscalar(value) else [float(v) for v in value]
    if len(values) != ndim or not all(v >= 0 and math.isfinite(v) for v in values):
        raise InvalidInputError(
            f"max_shift_px must be a non-negative number or one per axis ({ndim}), "
            f"got {value!r}."
        )
    return values


def default_coarse_factor(shape: Sequence[int]) -> int:
    """The power of two (at most 8) that bins the shorter side of a (Y, X) ``shape`` to >= 128 px.

    >>> default_coarse_factor((512, 512)), default_coarse_factor((200, 1000))
    (4, 1)
    """
    factor = 1
    while factor < 8 and min(shape) // (factor * 2) >= _COARSE_TARGET_PX:
        factor *= 2
    return factor


@dataclass
class _Fine:
    """Result of the fine step, and what the quality and z steps reuse."""

    displacement: np.ndarray  # (dy, dx) of the moving content, pixels
    integer: tuple[int, int]  # whole-pixel offset of the last moving window
    residual: np.ndarray  # sub-pixel offset of the last moving window
    reference_window: tuple[slice, slice]
    band: corr.Band
    reference_conj: np.ndarray  # conj(cropped reference spectrum) * band weight
    reference_energy: float
    moving_energy: float
    cross: np.ndarray
    peak: float  # the band-passed correlation at the displacement


def _reference_window(
    shape: Sequence[int], centre: Sequence[int], radius: Sequence[int]
) -> tuple[slice, slice] | None:
    """Reference pixels whose counterparts lie inside the moving image for
    every whole-pixel displacement within ``radius`` of ``centre``."""
    window = []
    for n, c, r in zip(shape, centre, radius):
        start, stop = max(0, -c) + r, min(n, n - c) - r
        if stop - start < _MIN_OVERLAP_PX:
            return None
        window.append(slice(start, stop))
    return tuple(window)


def _moved(window: tuple[slice, ...], offset: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(s.start + o, s.stop + o) for s, o in zip(window, offset))


def _fits(window: tuple[slice, ...], shape: Sequence[int], offset: Sequence[int]) -> bool:
    return all(0 <= s.start + o and s.stop + o <= n for s, n, o in zip(window, shape, offset))


def _fine(
    reference: np.ndarray,
    moving: np.ndarray,
    start: Sequence[float],
    search_radius: Sequence[int],
    *,
    band_px: tuple[float, float],
) -> _Fine | None:
    """Sub-pixel displacement of ``moving`` (Y, X) against ``reference``, from ``start``.

    The reference window is the overlap at ``start`` less the search radius
    (so it stays valid for every displacement searched) and its spectrum is
    computed once. Each round crops the moving image at the whole-pixel part
    of the current estimate and moves its taper by the sub-pixel rest, so
    both windows hold the same content; the first round also searches whole
    pixels within ``search_radius`` of ``start``.

    A window misplaced by ``m`` px pulls the estimate by ``k * m`` towards
    it: ``k`` is ~0.001 on nuclei but reaches ~0.5 where a strong edge (the
    black rim of a fundus image, a plate border) crosses the taper. The
    estimate is the fixed point where window and estimate agree, found by
    Broyden's method (the pull is learnt from the rounds), so two rounds
    suffice on nuclei and four or five even for large ``k``.
    """
    shape = reference.shape
    integer = tuple(int(v) for v in np.round(start))
    residual = np.array(start, dtype=np.float64) - np.array(integer)
    window = _reference_window(shape, integer, [r + 1 for r in search_radius])
    if window is None:
        return None
    state = None
    previous: tuple[np.ndarray, np.ndarray] | None = None  # (placement, gap)
    jacobian = -np.eye(2)
    for round_index in range(_FINE_ROUNDS):
        if state is None or not _fits(window, shape, integer):
            if state is not None:
                # The peak left the searched box: a window around it instead.
                window = _reference_window(shape, integer, (1, 1))
                if window is None:
                    return None
            spectral_band = corr.band(corr.fast_shape([s.stop - s.start for s in window]), band_px)
            reference_spectrum = corr.windowed_spectrum(
                reference[window], (0.0, 0.0), _TAPER_FRACTION, spectral_band
            )
            reference_energy = float(spectral_band.energy(reference_spectrum))
            reference_conj = np.conj(reference_spectrum)
            reference_conj *= spectral_band.weight
        moving_spectrum = corr.windowed_spectrum(
            moving[_moved(window, integer)], residual, _TAPER_FRACTION, spectral_band
        )
        cross = moving_spectrum * reference_conj
        if round_index == 0 and max(search_radius) > 0:
            local_start = np.array(
                corr.grid_peak(cross, spectral_band, residual, search_radius), float
            )
        else:
            local_start = residual
        *local, peak = corr.newton_maximum(cross, spectral_band, local_start)
        displacement = np.array(integer) + np.array(local)
        state = _Fine(
            displacement=displacement,
            integer=integer,
            residual=residual,
            reference_window=window,
            band=spectral_band,
            reference_conj=reference_conj,
            reference_energy=reference_energy,
            moving_energy=float(spectral_band.energy(moving_spectrum)),
            cross=cross,
            peak=peak,
        )
        # Fixed point of g(w) = estimate(w) - w, w the window placement, by
        # Broyden's method (starting from plain iteration, w <- estimate).
        placement = np.array(integer) + residual
        gap = displacement - placement
        learnt = previous is not None
        if learnt:
            step_w, step_g = placement - previous[0], gap - previous[1]
            norm = float(step_w @ step_w)
            if norm > 1e-12:
                jacobian = jacobian + np.outer(step_g - jacobian @ step_w, step_w) / norm
        previous = (placement, gap)
        step = _solve_2x2(jacobian, -gap)
        if step is None or float(np.abs(step).max()) > 1.0:
            jacobian, step, learnt = -np.eye(2), gap, False  # lost: restart from plain iteration
        target = placement + np.clip(step, -0.5, 0.5)
        # d(estimate)/d(placement) = jacobian + I: what one more round would change.
        change = (jacobian + np.eye(2)) @ (target - placement) if learnt else gap
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "fine round %d: moving window at %s %+.3f/%+.3f px, displacement %s, next %s",
                round_index,
                integer,
                residual[0],
                residual[1],
                np.round(displacement, 4),
                np.round(target, 4),
            )
        if min(float(np.abs(gap).max()), float(np.abs(change).max())) < _WINDOW_TOLERANCE_PX:
            break
        integer = tuple(int(v) for v in np.round(target))
        residual = target - np.array(integer)
    return state


def _solve_2x2(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray | None:
    """``matrix^-1 vector`` for a 2 x 2 matrix, or None when singular or not finite."""
    (a, b), (c, d) = matrix.tolist()
    determinant = a * d - b * c
    if determinant == 0 or not math.isfinite(determinant):
        return None
    y, x = vector.tolist()
    out = np.array([d * y - b * x, a * x - c * y]) / determinant
    return out if np.all(np.isfinite(out)) else None


def _quality_2d(state: _Fine) -> float:
    """Normalised cross-correlation of the aligned windows (tapered, band-passed)."""
    if state.reference_energy <= 0 or state.moving_energy <= 0:
        return 0.0
    return float(np.clip(state.peak / math.sqrt(state.reference_energy * state.moving_energy), -1, 1))


def _z_and_quality(
    reference: np.ndarray, moving: np.ndarray, state: _Fine, max_shift_z: float
) -> tuple[float, float]:
    """z displacement and quality of two (Z, Y, X) stacks aligned in y/x by ``state``."""
    spectral_band = state.band
    ref_planes = corr.windowed_spectrum(
        reference[(slice(None), *state.reference_window)], (0.0, 0.0), _TAPER_FRACTION, spectral_band
    )
    mov_planes = corr.windowed_spectrum(
        moving[(slice(None), *_moved(state.reference_window, state.integer))],
        state.residual,
        _TAPER_FRACTION,
        spectral_band,
    )
    local = state.displacement - np.array(state.integer)
    # Undo the sub-pixel y/x displacement of the moving planes (a phase ramp).
    ramp = np.outer(
        np.exp(2j * np.pi * spectral_band.fy * local[0]),
        np.exp(2j * np.pi * spectral_band.fx * local[1]),
    )
    aligned = (mov_planes * (ramp * spectral_band.weight).astype(np.complex64))
    cross_gram = np.einsum("jyx,kyx->jk", ref_planes.conj(), aligned).real
    reference_gram = np.einsum(
        "jyx,kyx->jk", ref_planes.conj(), ref_planes * spectral_band.weight
    ).real
    moving_gram = np.einsum(
        "jyx,kyx->jk", mov_planes.conj(), mov_planes * spectral_band.weight
    ).real
    dz = corr.z_displacement(cross_gram, reference_gram, moving_gram, max_shift_z)
    numerator = energy_ref = energy_mov = 0.0
    for k, v in corr.plane_weights(dz, reference.shape[0]):
        numerator += float(v @ cross_gram[k])
        energy_ref += float(reference_gram[k, k])
        energy_mov += float(v @ moving_gram @ v)
    if energy_ref <= 0 or energy_mov <= 0:
        return dz, 0.0
    return dz, float(np.clip(numerator / math.sqrt(energy_ref * energy_mov), -1.0, 1.0))


def _check_options(
    upsample_factor: int,
    intensity_quantiles: tuple[float, float] | None,
    min_quality: float,
    band_px: tuple[float, float],
) -> tuple[float, float]:
    """Validate the options shared by the estimators; returns ``band_px`` as floats."""
    if isinstance(upsample_factor, bool) or not isinstance(upsample_factor, int | np.integer) or upsample_factor < 1:
        raise InvalidInputError(f"upsample_factor must be an integer >= 1, got {upsample_factor!r}.")
    if intensity_quantiles is not None:
        low_q, high_q = intensity_quantiles
        if not 0.0 <= low_q < high_q <= 1.0:
            raise InvalidInputError(
                f"intensity_quantiles must be (low, high) with 0 <= low < high <= 1, "
                f"got {intensity_quantiles!r}."
            )
    if not -1.0 <= min_quality <= 1.0:
        raise InvalidInputError(f"min_quality must be in [-1, 1], got {min_quality!r}.")
    band = tuple(float(v) for v in band_px)
    if len(band) != 2 or not all(math.isfinite(v) and v >= 0 for v in band) or (
        0 < band[1] <= band[0]
    ) or 0 < band[0] < 2:
        raise InvalidInputError(
            f"band_px must be (finest, coarsest) periods in pixels with "
            f"2 <= finest < coarsest (0 disables one), got {band_px!r}."
        )
    return band


def _check_factor(value: object, what: str, *, optional: bool) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        expected = "None or an integer >= 1" if optional else "an integer >= 1"
        raise InvalidInputError(f"{what} must be {expected}, got {value!r}.")


def _same_shape(reference: np.ndarray, moving: np.ndarray, what: str) -> None:
    if reference.shape != moving.shape:
        raise InvalidInputError(
            f"reference_{what} {reference.shape} and moving_{what} {moving.shape} must "
            "have the same shape; read both acquisitions with the same ROI and level."
        )


def _clipped(
    reference: np.ndarray, moving: np.ndarray, quantiles: tuple[float, float] | None
) -> tuple[np.ndarray, np.ndarray, str]:
    """Both images clipped (float32), and why not to go on ("" to go on)."""
    reference_f, reference_contrast = corr.clip_to_quantiles(reference, quantiles)
    moving_f, moving_contrast = corr.clip_to_quantiles(moving, quantiles)
    for contrast, values, name in (
        (reference_contrast, reference_f, "reference"),
        (moving_contrast, moving_f, "moving"),
    ):
        scale = max(abs(float(values.flat[0])), 1.0)
        if contrast <= 1e-6 * scale:
            return reference_f, moving_f, f"no contrast in the {name} image"
    return reference_f, moving_f, ""


def _yx(image: np.ndarray) -> np.ndarray:
    """The (Y, X) image the y/x steps work on: the mean over z of a stack."""
    return image.mean(axis=0) if image.ndim == 3 and image.shape[0] > 1 else image.reshape(image.shape[-2:])


def _coarse_band(band_px: tuple[float, float], factor: int) -> tuple[float, float]:
    coarse_band = tuple(0.0 if v == 0 else max(v / factor, 2.0) for v in band_px)
    if coarse_band[1] and coarse_band[1] <= coarse_band[0]:
        coarse_band = (coarse_band[0], 0.0)
    return coarse_band


def _finish(
    state: _Fine | None,
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
        dz, quality = _z_and_quality(reference_f, moving_f, state, max_shift[0])
        displacement = [dz, *displacement_yx]
    else:
        quality = _quality_2d(state)
        displacement = ([0.0] if is_3d else []) + list(displacement_yx)
    shift = tuple(
        float(np.round(-d * upsample_factor) / upsample_factor) + 0.0 for d in displacement
    )
    reliable = quality >= min_quality
    reason = "" if reliable else f"quality {quality:.2f} below {min_quality}"
    beyond = [axis for axis, (s, m) in enumerate(zip(shift, max_shift)) if abs(s) > m + 1e-9]
    if beyond and reliable:
        reliable = False
        reason = f"shift {shift} exceeds max_shift_px {tuple(max_shift)}"
    logger.debug("shift %s, quality %.3f, %s", shift, quality, reason or "reliable")
    return ShiftEstimate(shift, quality, reliable, reason, coarse_shift)


def estimate_shift(
    reference_image: np.ndarray,
    moving_image: np.ndarray,
    *,
    upsample_factor: int = 100,
    coarse_factor: int | None = None,
    max_shift_px: float | Sequence[float] | None = None,
    intensity_quantiles: tuple[float, float] | None = (0.01, 0.999),
    min_quality: float = 0.3,
    band_px: tuple[float, float] = (6.0, 30.0),
) -> ShiftEstimate:
    """Estimate the translation that registers ``moving_image`` onto ``reference_image``.

    Coarse-to-fine: whole pixels on binned copies (large shifts), then
    sub-pixel at the input resolution on the overlapping windows only; see
    the module docstring for the method. Measured on real nuclei texture
    with strong noise (512 x 512 fields): ~0.005 px typical, 0.03 px at
    worst (fractal-tasks-core's whole pixels at level 2: ~0.9 px typical,
    2 px at worst). For a stack
    (Z, Y, X) the y/x shift comes from the mean over z, then z is found;
    a single plane behaves like 2D (dz = 0).

    Args:
        reference_image: (Y, X) or (Z, Y, X) array, any real dtype. Not modified.
        moving_image: same shape as ``reference_image``. Not modified.
        upsample_factor: the result is rounded to multiples of
            ``1 / upsample_factor`` pixels; 1 gives whole pixels (as
            fractal-tasks-core without upsampling).
        coarse_factor: bin y and x by this factor for the coarse whole-pixel
            step (1: phase correlation at full resolution). None: the
            power of two (at most 8) that leaves at least 128 pixels on the
            shorter side (4 for a 512 x 512 FOV, like pyramid level 2), and
            no coarse step at all when ``max_shift_px`` is at most 4 in y
            and x.
        max_shift_px: largest shift searched, in pixels: one number for every
            axis or one per axis ((z,) y, x). None: up to half the image in y
            and x and ``Z // 2`` planes in z.
        intensity_quantiles: (low, high) quantiles each image is clipped to
            before anything else, or None for no clipping.
        min_quality: below this quality the estimate is flagged unreliable.
        band_px: (finest, coarsest) period in pixels the sub-pixel step
            weighs: detail finer than ``finest`` (mostly noise at full
            resolution) is dropped, structures much larger than
            ``coarsest`` (illumination, artefacts) get little weight. 0
            disables either limit.

    Returns:
        A `ShiftEstimate`: ``shift`` has one entry per input axis, in pixels.

    Raises:
        InvalidInputError: (a ValueError) for arrays of different shapes,
            other than 2D/3D, not real-valued, with NaN, smaller than 32 x 32,
            or an invalid option.

    >>> from scipy import ndimage
    >>> from fractal_roi_tasks.sample_data import load_source
    >>> reference = load_source("cell")[:256, :256]
    >>> moving = ndimage.shift(reference, (2.5, -7.3), order=3, mode="reflect")
    >>> estimate = estimate_shift(reference, moving)
    >>> [round(v, 1) for v in estimate.shift], estimate.reliable
    ([-2.5, 7.3], True)
    """
    reference = _as_image(reference_image, "reference_image")
    reference = _as_image(reference_image, "reference_image")
    moving = _as_image(moving_image, "moving_image")
    _same_shape(reference, moving, "image")
    _check_factor(coarse_factor, "coarse_factor", optional=True)
    band_px = _check_options(upsample_factor, intensity_quantiles, min_quality, band_px)

    is_3d = reference.ndim == 3
    planes = reference.shape[0] if is_3d else 1
    yx_shape = reference.shape[-2:]
    # z: at most half the planes, so that at least half of them overlap (a
    # defocus-only stack looks alike on both sides of focus: plane 0 and
    # plane Z - 1 can match better than the true offset does).
    default_max = [float(planes // 2)] if is_3d else []
    default_max += [n / 2 for n in yx_shape]
    max_shift = _per_axis(max_shift_px, reference.ndim, default_max)
    max_shift_yx = max_shift[-2:]
    zeros = (0.0,) * reference.ndim

    reference_f, moving_f, reason = _clipped(reference, moving, intensity_quantiles)
    if reason:
        logger.debug("estimate_shift: %s", reason)
        return ShiftEstimate(zeros, 0.0, False, reason, zeros)
    reference_yx, moving_yx = _yx(reference_f), _yx(moving_f)

    if coarse_factor is None and max(max_shift_yx) <= _SMALL_SHIFT_PX:
        # Small shifts: the fine step's own search covers them.
        factor = 0
        coarse = [0, 0]
        radius = [int(math.ceil(m)) for m in max_shift_yx]
    else:
        factor = int(coarse_factor or default_coarse_factor(yx_shape))
        factor = max(1, min(factor, min(yx_shape) // (2 * _MIN_OVERLAP_PX)))
        _, subpixel, _ = corr.coarse_displacement(
            corr.block_mean(reference_yx, factor),
            corr.block_mean(moving_yx, factor),
            [m / factor for m in max_shift_yx],
            _coarse_band(band_px, factor),
        )
        # Block means of a displaced image are displaced by d / factor, with
        # pixel centres at (factor - 1) / 2 in both images: no offset.
        coarse = [p * factor for p in subpixel]
        radius = [min(1, int(math.ceil(m))) for m in max_shift_yx]
    logger.debug("estimate_shift: coarse factor %d, coarse displacement %s", factor, coarse)

    state = _fine(reference_yx, moving_yx, coarse, radius, band_px=band_px)
    coarse_shift = ((0.0,) if is_3d else ()) + tuple(0.0 - round(c) for c in coarse)
    return _finish(
        state,
        reference_f,
        moving_f,
        offset_yx=(0, 0),
        max_shift=max_shift,
        coarse_shift=coarse_shift,
        upsample_factor=upsample_factor,
        min_quality=min_quality,
    )


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

    >>> from fractal_roi_tasks.registration.correlation import block_mean
    >>> from fractal_roi_tasks.sample_data import sample_fov
    >>> reference = block_mean(sample_fov(0), 4)
    >>> moving = block_mean(sample_fov(0, (21.0, -42.5)), 4)
    >>> estimate = coarse_shift(reference, moving, factor=4)
    >>> [round(v) for v in estimate.shift], estimate.coarse_shift, estimate.reliable
    ([-21, 42], (-20.0, 44.0), True)
    """
    reference = _as_image(reference_coarse, "reference_coarse")
    moving = _as_image(moving_coarse, "moving_coarse")
    _same_shape(reference, moving, "coarse")
    _check_factor(factor, "factor", optional=False)
    band_px = _check_options(1, intensity_quantiles, min_quality, band_px)
    yx_shape = reference.shape[-2:]
    zeros = (0.0,) * reference.ndim
    default = [0.0] * (reference.ndim - 2) + [n * factor / 2 for n in yx_shape]
    max_shift_yx = _per_axis(max_shift_px, reference.ndim, default)[-2:]
    reference_f, moving_f, reason = _clipped(reference, moving, intensity_quantiles)
    if reason:
        logger.debug("coarse_shift: %s", reason)
        return ShiftEstimate(zeros, 0.0, False, reason, zeros)
    whole, subpixel, quality = corr.coarse_displacement(
        _yx(reference_f),
        _yx(moving_f),
        [m / factor for m in max_shift_yx],
        _coarse_band(band_px, factor),
    )
    lead = (0.0,) * (reference.ndim - 2)
    shift = lead + tuple(0.0 - p * factor for p in subpixel)
    whole_shift = lead + tuple(0.0 - float(w * factor) for w in whole)
    reliable = quality >= min_quality
    reason = "" if reliable else f"quality {quality:.2f} below {min_quality}"
    logger.debug("coarse_shift: factor %d, shift %s, quality %.3f", factor, shift, quality)
    return ShiftEstimate(shift, quality, reliable, reason, whole_shift)


@dataclass(frozen=True)
class RefinementWindows:
    """Where to cut the two windows of `refine_shift`, in full-resolution pixels.

    Attributes:
        reference: (y, x) slices of the reference window, relative to the
            first pixel of the ROI.
        moving: (y, x) slices of the moving window, same size, relative to
            the first pixel of the moving acquisition's ROI.
        offset_px: (y, x) whole pixels the moving window is cut further
            than the reference window (the rounded coarse displacement).
    """

    reference: tuple[slice, slice]
    moving: tuple[slice, slice]
    offset_px: tuple[int, int]


def refinement_windows(
    reference_coarse: np.ndarray,
    shape_px: Sequence[int],
    shift_px: Sequence[float],
    *,
    factor: int,
    window_px: int = 96,
) -> RefinementWindows | None:
    """A window of the ROI with texture, seen by both acquisitions at ``shift_px``.

    The window is ``window_px`` square (smaller where the ROI, less the
    shift, is smaller), lies inside the ROI in both acquisitions, and among
    those positions holds the most detail of the reference (squared
    gradients of ``reference_coarse``, clipped to its 1% and 99.9%
    intensity quantiles, summed over the window), so a field with a few
    nuclei is refined on them rather than on background.

    Args:
        reference_coarse: (Y, X) or (Z, Y, X) the reference ROI at the coarse
            level (as given to `coarse_shift`).
        shape_px: ((z,) y, x) shape of the ROI at full resolution.
        shift_px: ((z,) y, x) shift found by `coarse_shift`, full-resolution
            pixels, fractal-tasks-core's sign.
        factor: pixel size of the coarse level over the full-resolution one.
        window_px: side of the window in full-resolution pixels.

    Returns:
        A `RefinementWindows`, or None when the ROI and its shifted copy
        overlap by less than 32 pixels along y or x.

    >>> windows = refinement_windows(np.zeros((128, 128)), (512, 512), (-10.2, 3.7), factor=4)
    >>> windows.offset_px, windows.reference[0].stop - windows.reference[0].start
    ((10, -4), 96)
    """
    offset = tuple(int(round(-float(s))) for s in list(shift_px)[-2:])
    sizes, ranges = [], []
    for n, o in zip(list(shape_px)[-2:], offset):
        size = min(int(window_px), int(n) - abs(o))
        if size < 2 * _MIN_OVERLAP_PX:
            return None
        sizes.append(size)
        ranges.append((max(0, -o), min(n - size, n - size - o)))
    guide = _yx(corr.clip_to_quantiles(np.asarray(reference_coarse), (0.01, 0.999))[0])
    energy = np.diff(guide, axis=0)[:, :-1] ** 2
    energy += np.diff(guide, axis=1)[:-1, :] ** 2
    # Candidate window starts, in coarse pixels, and the window side there.
    coarse_sizes = [max(1, size // factor) for size in sizes]
    firsts = [-(-low // factor) for low, _ in ranges]
    lasts = [min(high // factor, n - c) for (_, high), n, c in zip(ranges, energy.shape, coarse_sizes)]
    if all(last >= first for first, last in zip(firsts, lasts)):
        (y0, x0), (y1, x1), (hy, hx) = firsts, lasts, coarse_sizes
        # Summed-area table of the part the candidates cover: box sums by 4 lookups.
        integral = np.zeros((y1 + hy - y0 + 1, x1 + hx - x0 + 1))
        np.cumsum(energy[y0 : y1 + hy, x0 : x1 + hx], axis=0, dtype=np.float64, out=integral[1:, 1:])
        np.cumsum(integral[1:, 1:], axis=1, out=integral[1:, 1:])
        box = integral[hy:, hx:] - integral[:-hy, hx:] - integral[hy:, :-hx] + integral[:-hy, :-hx]
        iy, ix = np.unravel_index(int(np.argmax(box)), box.shape)
        starts = [(y0 + int(iy)) * factor, (x0 + int(ix)) * factor]
    else:
        starts = [(low + high) // 2 for low, high in ranges]
    starts = [min(max(s, low), high) for s, (low, high) in zip(starts, ranges)]
    reference = tuple(slice(s, s + size) for s, size in zip(starts, sizes))
    return RefinementWindows(reference, _moved(reference, offset), offset)


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
    reference = _as_image(reference_window, "reference_window")
    moving = _as_image(moving_window, "moving_window")
    _same_shape(reference, moving, "window")
    band_px = _check_options(upsample_factor, intensity_quantiles, min_quality, band_px)
    offset = tuple(int(o) for o in offset_px)
    initial = [float(v) for v in initial_shift][-2:]
    if len(offset) != 2 or len(initial) != 2:
        raise InvalidInputError(
            f"offset_px must be (y, x) and initial_shift ((z,) y, x), got {offset_px!r} "
            f"and {initial_shift!r}."
        )
    planes = reference.shape[0] if reference.ndim == 3 else 1
    default = ([float(planes // 2)] if reference.ndim == 3 else []) + [math.inf, math.inf]
    max_shift = _per_axis(max_shift_px, reference.ndim, default)
    lead = (0.0,) * (reference.ndim - 2)
    coarse = lead + tuple(float(round(v)) + 0.0 for v in initial)
    reference_f, moving_f, reason = _clipped(reference, moving, intensity_quantiles)
    if reason:
        logger.debug("refine_shift: %s", reason)
        return ShiftEstimate(coarse, 0.0, False, reason, coarse)
    start = [-s - o for s, o in zip(initial, offset)]
    state = _fine(_yx(reference_f), _yx(moving_f), start, (1, 1), band_px=band_px)
    return _finish(
        state,
        reference_f,
        moving_f,
        offset_yx=offset,
        max_shift=max_shift,
        coarse_shift=coarse,
        upsample_factor=upsample_factor,
        min_quality=min_quality,
    )
