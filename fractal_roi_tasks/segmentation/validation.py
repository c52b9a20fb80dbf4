"""Checks of the image and options `segment_channel` is given.

Each raises `InvalidInputError` with what was received and what is expected,
before any pixel is computed.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError

ThresholdMethod = Literal["otsu", "li", "triangle", "manual"]
THRESHOLD_METHODS: tuple[str, ...] = get_args(ThresholdMethod)
"""The threshold methods `segment_channel` takes; "manual" uses a given threshold."""


def validate_options(
    image: object,
    *,
    method: str,
    threshold: float | None,
    smoothing_sigma: float,
    split_min_distance_px: int,
    min_area_px: int,
    max_area_px: int | None,
) -> None:
    """Check `segment_channel`'s image and every option (see its Args).

    Raises:
        InvalidInputError: the first thing out of range, naming it.

    Example:
        >>> validate_options(np.zeros((4, 4)), method="manual", threshold=None,
        ...     smoothing_sigma=1.0, split_min_distance_px=5, min_area_px=0, max_area_px=None)
        Traceback (most recent call last):
        ...
        fractal_roi_tasks.errors.InvalidInputError: method="manual" needs a threshold (a number in the image's intensity units), got none; pass threshold=... or choose otsu, li or triangle.
    """
    validate_image(image)
    if method not in THRESHOLD_METHODS:
        raise InvalidInputError(
            f"Unknown threshold method {method!r}; expected one of {', '.join(THRESHOLD_METHODS)}."
        )
    if method == "manual":
        if threshold is None:
            raise InvalidInputError(
                'method="manual" needs a threshold (a number in the image\'s intensity units), '
                "got none; pass threshold=... or choose otsu, li or triangle."
            )
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)):
            raise InvalidInputError(f"threshold must be a number, got {threshold!r}.")
        if not math.isfinite(float(threshold)):
            raise InvalidInputError(f"threshold must be a finite number, got {threshold!r}.")
    elif threshold is not None:
        raise InvalidInputError(
            f"threshold={threshold!r} is only used with method=\"manual\", but method={method!r}; "
            'pass method="manual" to use it, or drop threshold to compute one automatically.'
        )
    validate_sigma(smoothing_sigma)
    if not (_is_int(split_min_distance_px) and split_min_distance_px >= 1):
        raise InvalidInputError(
            "split_min_distance_px must be an integer >= 1 (pixels), "
            f"got {split_min_distance_px!r}."
        )
    if not (_is_int(min_area_px) and min_area_px >= 0):
        raise InvalidInputError(
            f"min_area_px must be an integer >= 0 (pixels), got {min_area_px!r}."
        )
    if max_area_px is not None:
        if not (_is_int(max_area_px) and max_area_px >= 1):
            raise InvalidInputError(
                f"max_area_px must be an integer >= 1 (pixels) or None, got {max_area_px!r}."
            )
        if min_area_px > max_area_px:
            raise InvalidInputError(
                f"min_area_px ({min_area_px}) is larger than max_area_px ({max_area_px}); "
                "no object could be kept. Lower min_area_px or raise max_area_px."
            )


def validate_image(image: object) -> None:
    """A (Y, X) or (Z, Y, X) numpy array of finite integer or float intensities."""
    if not isinstance(image, np.ndarray):
        raise InvalidInputError(
            f"image must be a numpy array, got {type(image).__name__}; "
            "convert it with numpy.asarray (a dask or zarr array: call .compute() or [...] first)."
        )
    if image.ndim not in (2, 3):
        raise InvalidInputError(
            f"image must be 2D (Y, X) or 3D (Z, Y, X), got {image.ndim}D with shape {image.shape}; "
            "select one channel and one time point first."
        )
    if image.dtype == np.bool_ or not (
        np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)
    ):
        raise InvalidInputError(
            f"image must hold integer or floating-point intensities, got dtype {image.dtype}"
            + ("; for a binary mask, label it directly or pass mask.astype(np.uint8)."
               if image.dtype == np.bool_ else ".")
        )
    if image.size == 0:
        raise InvalidInputError(f"image is empty (shape {image.shape}).")
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        n_bad = int(np.count_nonzero(~np.isfinite(image)))
        raise InvalidInputError(
            f"image has {n_bad} NaN or infinite pixels; replace them with a finite value first."
        )


def validate_sigma(smoothing_sigma: object) -> None:
    """A finite number >= 0 (pixels; 0 disables smoothing)."""
    is_number = isinstance(smoothing_sigma, (int, float, np.number)) and not isinstance(
        smoothing_sigma, bool
    )
    if not (is_number and math.isfinite(smoothing_sigma) and smoothing_sigma >= 0):
        raise InvalidInputError(
            f"smoothing_sigma must be a finite number >= 0 (pixels; 0 disables smoothing), "
            f"got {smoothing_sigma!r}."
        )


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
