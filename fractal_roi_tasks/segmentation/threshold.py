"""Classic segmentation of one channel into a label image.

Smooth, threshold, split touching objects with a distance-transform watershed,
fill holes, filter by size, relabel 1..n. Pure numpy / scipy / scikit-image:
arrays in, a small dataclass out, no files.

Connectivity is face connectivity everywhere (4-connected in 2D, 6-connected
in 3D): two pixels that touch only at a corner belong to different objects.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage as ndi
from skimage import filters
from skimage.segmentation import relabel_sequential

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.segmentation.holes import fill_holes_per_object, find_holes
from fractal_roi_tasks.segmentation.split import split_touching_objects
from fractal_roi_tasks.segmentation.validation import (  # noqa: F401  (THRESHOLD_METHODS still importable here)
    THRESHOLD_METHODS,
    ThresholdMethod,
    validate_image,
    validate_options,
    validate_sigma,
)

logger = logging.getLogger(__name__)

_AUTOMATIC_THRESHOLDS = {
    "otsu": filters.threshold_otsu,
    "li": filters.threshold_li,
    "triangle": filters.threshold_triangle,
}

# Defaults for nuclei imaged at ~0.3 um/px (diameter ~25-50 px, area
# ~500-2500 px), measured on ngio's bundled cardiomyocyte nuclei (0.325 um/px,
# 168 annotated nuclei), also rescaled from 0.5x to 2x and with added noise:
# counts and matches barely move between 2 and 7 px (the neck-depth check in
# `split` does the work); 10 px starts merging small nuclei at 0.5x. 100 px (~10 um^2 at 0.325 um/px) drops debris and slivers cut by
# the field-of-view border, not nuclei.
DEFAULT_SPLIT_MIN_DISTANCE_PX = 5
DEFAULT_MIN_AREA_PX = 100


@dataclass(frozen=True)
class SegmentationResult:
    """What `segment_channel` found.

    Attributes:
        label_image: uint32 array of the input's shape and axis order
            ((Y, X) or (Z, Y, X)); 0 is background, objects are numbered
            1..n_objects without gaps.
        threshold: the intensity threshold that separated foreground
            (strictly above) from background, in the input's intensity units
            (applied to the smoothed image). NaN when an automatic method had
            nothing to separate because the image has no contrast (every
            pixel has the same value); the label image is then empty.
        n_objects: number of objects in `label_image`.
        n_too_small: objects dropped because they had fewer pixels (voxels)
            than `min_area_px` (a connected foreground region that is too
            small as a whole counts as one, it is not split first).
        n_too_large: objects dropped because they had more pixels (voxels)
            than `max_area_px`.
    """

    label_image: np.ndarray
    threshold: float
    n_objects: int
    n_too_small: int
    n_too_large: int

    @property
    def has_contrast(self) -> bool:
        """False when no threshold could be found (the image is constant)."""
        return not math.isnan(self.threshold)


def segment_channel(
    image: np.ndarray,
    *,
    method: ThresholdMethod = "otsu",
    threshold: float | None = None,
    smoothing_sigma: float = 1.0,
    split_touching: bool = True,
    split_min_distance_px: int = DEFAULT_SPLIT_MIN_DISTANCE_PX,
    min_area_px: int = DEFAULT_MIN_AREA_PX,
    max_area_px: int | None = None,
    fill_holes: bool = True,
) -> SegmentationResult:
    """Segment one channel into a label image of bright objects.

    Steps: gaussian smoothing; threshold (foreground is strictly above it);
    optional splitting of touching objects (markers at the maxima of the
    slightly smoothed distance to the background, at least one per connected
    region, then a watershed of the negated distance inside the foreground,
    and pieces whose neck is too shallow merged back, see
    `fractal_roi_tasks.segmentation.split`); hole filling; size filtering;
    relabeling 1..n. A 3D image is segmented in
    3D throughout (threshold over the volume, 3D regions, 3D watershed),
    treating a voxel step as the same length on every axis.

    Connectivity is face connectivity (4 neighbours in 2D, 6 in 3D). An
    image without contrast (every pixel equal, e.g. an empty field of view
    of zeros) gives no objects and `threshold` NaN with an automatic method.
    An automatic threshold is computed from this image alone: on a field of
    view with background only it falls into the noise and returns noise
    blobs; compute one threshold for the whole image with `compute_threshold`
    and pass it with method="manual" to avoid that.

    Args:
        image: one channel, (Y, X) or (Z, Y, X), any integer or floating
            dtype. Not modified.
        method: "otsu", "li" or "triangle" to compute the threshold from the
            (smoothed) image, or "manual" to use `threshold`.
        threshold: the manual threshold, in the image's intensity units.
            Required with method="manual", rejected with any other method.
        smoothing_sigma: standard deviation of the gaussian smoothing applied
            before thresholding, in pixels along every axis; 0 disables it.
        split_touching: split touching objects with a distance-transform
            watershed. When False, each connected foreground region is one
            object.
        split_min_distance_px: smallest distance in pixels between the
            centres of two objects split apart (the `min_distance` of
            `skimage.feature.peak_local_max`); lower it if small touching
            objects stay merged. The neck-depth check, not this distance,
            keeps elongated objects whole, so results change little between
            3 and 7 px for nuclei of radius ~10-25 px.
        min_area_px: objects with fewer pixels (voxels in 3D) are dropped
            (after splitting and hole filling).
        max_area_px: objects with more pixels (voxels in 3D) are dropped
            (after splitting and hole filling); None keeps every large
            object.
        fill_holes: fill the background holes that lie inside one single
            object (a dim nucleolus), after splitting; a gap enclosed by
            several touching objects stays background. In 3D only cavities
            closed in 3D are holes.

    Returns:
        The label image (uint32, same shape as `image`) with the threshold
        used and the object counts.

    Raises:
        InvalidInputError: if the image is not 2D or 3D, not real numbers,
            empty or not finite, or if an option is out of range or the
            method and `threshold` do not agree.

    Example:
        >>> import numpy as np
        >>> yy, xx = np.mgrid[:64, :64]
        >>> image = np.zeros((64, 64), dtype=np.uint16)
        >>> image[(yy - 20) ** 2 + (xx - 20) ** 2 < 10**2] = 1000
        >>> image[(yy - 44) ** 2 + (xx - 40) ** 2 < 8**2] = 800
        >>> result = segment_channel(image, min_area_px=50)
        >>> result.n_objects, result.label_image.dtype
        (2, dtype('uint32'))
        >>> sorted(np.unique(result.label_image).tolist())
        [0, 1, 2]
    """
    validate_options(
        image,
        method=method,
        threshold=threshold,
        smoothing_sigma=smoothing_sigma,
        split_min_distance_px=split_min_distance_px,
        min_area_px=min_area_px,
        max_area_px=max_area_px,
    )
    smoothed = smooth(image, smoothing_sigma)
    if method == "manual":
        thresh = float(threshold)  # type: ignore[arg-type]
    else:
        thresh = _automatic_threshold(image, smoothed, method)
        if math.isnan(thresh):
            return _empty_result(image.shape)
    foreground = smoothed > thresh
    logger.debug(
        "Threshold %s = %g: %d of %d pixels in the foreground",
        method,
        thresh,
        np.count_nonzero(foreground),
        foreground.size,
    )

    components, n_components = ndi.label(foreground)
    # A component smaller than min_area_px only yields pieces that are too
    # small: drop it now (counted as one object), which keeps noisy images fast.
    sizes = np.bincount(components.ravel(), minlength=n_components + 1)
    small = sizes < min_area_px
    small[0] = False
    n_too_small = int(np.count_nonzero(small))
    if n_too_small:
        components[small[components]] = 0

    labels = components
    if split_touching:
        # Holes are filled after splitting: a gap enclosed by a ring of
        # touching objects, filled first, would merge their distance maps.
        # (A nucleus with a hole is not cut around it: the neck-depth check
        # merges the pieces of its ring-shaped ridge.)
        labels = split_touching_objects(components, min_distance=split_min_distance_px)
    if fill_holes:
        labels = fill_holes_per_object(labels, find_holes(labels > 0))

    label_image, n_small_after, n_too_large = _filter_sizes(
        labels, min_area_px=min_area_px, max_area_px=max_area_px
    )
    n_too_small += n_small_after
    n_objects = int(label_image.max()) if label_image.size else 0
    logger.debug(
        "%d objects kept, %d too small, %d too large",
        n_objects,
        n_too_small,
        n_too_large,
    )
    return SegmentationResult(
        label_image=label_image,
        threshold=thresh,
        n_objects=n_objects,
        n_too_small=n_too_small,
        n_too_large=n_too_large,
    )


def compute_threshold(
    image: np.ndarray,
    *,
    method: Literal["otsu", "li", "triangle"] = "otsu",
    smoothing_sigma: float = 1.0,
) -> float:
    """The threshold `segment_channel` would compute for this image.

    Useful to compute one threshold over a whole image (or a low-resolution
    level of it) and pass it to `segment_channel` with method="manual" for
    each field of view, so that a field of view without any object does not
    get a threshold in the middle of its background noise.

    Args:
        image: (Y, X) or (Z, Y, X), any integer or floating dtype. Not modified.
        method: "otsu", "li" or "triangle".
        smoothing_sigma: gaussian smoothing before thresholding, in pixels
            along every axis; 0 disables it.

    Returns:
        The threshold in the image's intensity units (foreground is strictly
        above it), or NaN if the image has no contrast (all pixels equal).

    Raises:
        InvalidInputError: if the image or an option is not usable.

    Example:
        >>> import numpy as np
        >>> image = np.zeros((20, 20), dtype=np.uint8)
        >>> image[5:15, 5:15] = 200
        >>> 0 < compute_threshold(image, smoothing_sigma=0) < 200
        True
        >>> compute_threshold(np.full((20, 20), 7))
        nan
    """
    if method not in _AUTOMATIC_THRESHOLDS:
        raise InvalidInputError(
            f"compute_threshold needs an automatic method, one of "
            f"{', '.join(_AUTOMATIC_THRESHOLDS)}; got {method!r}."
        )
    validate_image(image)
    validate_sigma(smoothing_sigma)
    return _automatic_threshold(image, smooth(image, smoothing_sigma), method)


def smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    """A float64 copy of `image`, gaussian-smoothed if sigma > 0."""
    if sigma > 0:
        return filters.gaussian(image.astype(np.float64), sigma=sigma, preserve_range=True)
    return image.astype(np.float64)


def _automatic_threshold(image: np.ndarray, smoothed: np.ndarray, method: str) -> float:
    """Threshold of `smoothed` by `method`; NaN if `image` is constant."""
    if image.min() == image.max():
        logger.debug("Image is constant (%s): no threshold", image.flat[0])
        return math.nan
    return float(_AUTOMATIC_THRESHOLDS[method](smoothed))


def _filter_sizes(
    labels: np.ndarray, *, min_area_px: int, max_area_px: int | None
) -> tuple[np.ndarray, int, int]:
    """Drop objects outside [min_area_px, max_area_px], number the rest 1..n (uint32)."""
    sizes = np.bincount(labels.ravel())
    present = sizes > 0
    present[0] = False
    too_small = present & (sizes < min_area_px)
    too_large = present & (sizes > max_area_px if max_area_px is not None else False)
    dropped = too_small | too_large
    if dropped.any():
        labels = np.where(dropped[labels], 0, labels)
    label_image = relabel_sequential(labels)[0].astype(np.uint32, copy=False)
    return label_image, int(np.count_nonzero(too_small)), int(np.count_nonzero(too_large))


def _empty_result(shape: tuple[int, ...]) -> SegmentationResult:
    return SegmentationResult(
        label_image=np.zeros(shape, dtype=np.uint32),
        threshold=math.nan,
        n_objects=0,
        n_too_small=0,
        n_too_large=0,
    )

