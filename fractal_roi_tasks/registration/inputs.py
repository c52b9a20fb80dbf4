"""What the registration estimators check and prepare before measuring a shift.

Validation with a clear `InvalidInputError` for arrays and options, the
float32 copies clipped to intensity quantiles (and whether both have
contrast), and the (Y, X) image the y/x steps work on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.translation.intensity import clip_to_quantiles
from fractal_roi_tasks.translation.spectra import check_band

MIN_OVERLAP_PX = 16
"""Overlapping windows narrower than this (in any of y, x) are not refined;
images must be at least twice this in y and x."""


def as_image(array: object, what: str) -> np.ndarray:
    """``array`` as a 2D/3D real array of at least 32 x 32 finite values, else an error naming ``what``."""
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
    if min(image.shape[-2:]) < 2 * MIN_OVERLAP_PX:
        raise InvalidInputError(
            f"{what} is {image.shape[-2]} x {image.shape[-1]} pixels in (Y, X); "
            f"at least {2 * MIN_OVERLAP_PX} x {2 * MIN_OVERLAP_PX} are needed."
        )
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise InvalidInputError(f"{what} contains NaN or infinite values.")
    return image


def per_axis(value: float | Sequence[float] | None, ndim: int, default: Sequence[float]) -> list[float]:
    """``max_shift_px`` as one non-negative float per axis (``default`` for None)."""
    if value is None:
        return [float(v) for v in default]
    values = [float(value)] * ndim if np.isscalar(value) else [float(v) for v in value]
    if len(values) != ndim or not all(v >= 0 and math.isfinite(v) for v in values):
        raise InvalidInputError(
            f"max_shift_px must be a non-negative number or one per axis ({ndim}), "
            f"got {value!r}."
        )
    return values


def check_options(
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
    return check_band(band_px)


def check_factor(value: object, what: str, *, optional: bool) -> None:
    """A binning factor: an integer >= 1 (or None when ``optional``)."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        expected = "None or an integer >= 1" if optional else "an integer >= 1"
        raise InvalidInputError(f"{what} must be {expected}, got {value!r}.")


def same_shape(reference: np.ndarray, moving: np.ndarray, what: str) -> None:
    """Both arrays of one shape, else an error naming ``reference_{what}`` and ``moving_{what}``."""
    if reference.shape != moving.shape:
        raise InvalidInputError(
            f"reference_{what} {reference.shape} and moving_{what} {moving.shape} must "
            "have the same shape; read both acquisitions with the same ROI and level."
        )


def clipped(
    reference: np.ndarray, moving: np.ndarray, quantiles: tuple[float, float] | None
) -> tuple[np.ndarray, np.ndarray, str]:
    """Both images clipped (float32), and why not to go on ("" to go on)."""
    reference_f, reference_contrast = clip_to_quantiles(reference, quantiles)
    moving_f, moving_contrast = clip_to_quantiles(moving, quantiles)
    for contrast, values, name in (
        (reference_contrast, reference_f, "reference"),
        (moving_contrast, moving_f, "moving"),
    ):
        scale = max(abs(float(values.flat[0])), 1.0)
        if contrast <= 1e-6 * scale:
            return reference_f, moving_f, f"no contrast in the {name} image"
    return reference_f, moving_f, ""


def _detail_energy(stack: np.ndarray) -> np.ndarray:
    """(Z,) fine detail of each plane, its white noise cancelled.

    The mean squared difference of pixels 3 apart minus that of neighbours:
    white noise adds the same to both, so what remains is structure at a
    few pixels, which defocus removes first.
    """

    def structure(lag: int) -> np.ndarray:
        dy = stack[:, lag:, :] - stack[:, :-lag, :]
        dx = stack[:, :, lag:] - stack[:, :, :-lag]
        return np.mean(dy * dy, axis=(1, 2), dtype=np.float64) + np.mean(
            dx * dx, axis=(1, 2), dtype=np.float64
        )

    return np.maximum(structure(3) - structure(1), 0.0)


def yx_image(image: np.ndarray) -> np.ndarray:
    """The (Y, X) image the y/x steps work on; for a stack, a mean over z weighted by focus.

    Each plane is weighted by its fine detail (`_detail_energy`): a plain
    mean lets the many defocused planes of a deep stack bury the detail
    of the few in focus under their summed noise (measured on 40-plane
    retina stacks: half the y/x error of the plain mean). A stack without
    any detail falls back to the plain mean.

    >>> yx_image(np.ones((3, 4, 5))).shape
    (4, 5)
    """
    if image.ndim != 3 or image.shape[0] == 1:
        return image.reshape(image.shape[-2:])
    energy = _detail_energy(image)
    total = float(energy.sum())
    if not total > 0:
        return image.mean(axis=0)
    weights = (energy / total).astype(np.float32)
    return np.tensordot(weights, image, axes=(0, 0)).astype(image.dtype, copy=False)
