"""Read what registering one ROI needs, level by level, and hand it to the core.

The coarse step reads each ROI at a pyramid level about 4x coarser; the
sub-pixel step then reads only one small window per image at the requested
level. Kept apart from the task so the benchmark times exactly these reads.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.arguments import ChannelChoice
from fractal_roi_tasks.io.ngio_tables import roi_slices, spacing_um
from fractal_roi_tasks.registration import (
    ShiftEstimate,
    coarse_shift,
    refine_shift,
    refinement_windows,
)
from fractal_roi_tasks.registration.correlation import block_mean
from fractal_roi_tasks.registration.shift import default_coarse_factor

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LevelPair:
    """One acquisition's channel at the requested level and at a coarser level.

    Attributes:
        image: the image at the requested level.
        coarse: the image at the level ``factor`` times coarser in y and x,
            or None when the pyramid has none (the requested level is read
            whole and binned).
        factor: coarse pixel size over the requested one.
        channel: index of the registration channel.
    """

    image: object
    coarse: object | None
    factor: int
    channel: int


def open_levels(ome_zarr, level: str, channel: ChannelChoice, axes: tuple[str, ...]) -> LevelPair:
    """The requested level and the one about 4x coarser in y and x (2x to 8x, whole ratios)."""
    image = ome_zarr.get_image(path=level)
    index = channel.index_in(image.channel_labels, image.wavelength_ids)
    best = None
    for path in ome_zarr.level_paths:
        other = ome_zarr.get_image(path=path)
        ratios = [s / p for s, p in zip(spacing_um(other, ("y", "x")), spacing_um(image, ("y", "x")))]
        factor = round(ratios[0])
        if 2 <= factor <= 8 and all(abs(r - factor) < 1e-3 * factor for r in ratios):
            if best is None or abs(math.log(factor / 4)) < abs(math.log(best[1] / 4)):
                best = (other, factor)
    if best is None:
        logger.debug("no pyramid level 2x to 8x coarser than %s: binning level %s", level, level)
        return LevelPair(image, None, 0, index)
    return LevelPair(image, best[0], best[1], index)


def _pixel_box(image, roi, axes: tuple[str, ...]) -> tuple[list[int], list[int]]:
    """(y, x) first pixel and size of ``roi`` in ``image``, as ngio reads it."""
    window = roi_slices(image, roi, ("y", "x"))
    return [w.start for w in window], [w.stop - w.start for w in window]


def roi_shift(reference: LevelPair, moving: LevelPair, reference_roi, moving_roi, *, quantiles) -> ShiftEstimate:
    """Read what one ROI needs (coarse ROIs, then one window per image) and estimate its shift."""
    axes = tuple(a for a in ("z", "y", "x") if a in reference.image.axes)
    pairs = ((reference, reference_roi), (moving, moving_roi))
    factor, coarse, full = reference.factor, None, None
    if reference.coarse is not None and moving.factor == factor:
        coarse = _common([p.coarse.get_roi(r, axes_order=axes, c=p.channel) for p, r in pairs])
        if min(coarse[0].shape[-2:]) < 32:
            logger.debug("ROI %s: %s px at the coarse level, binning instead", reference_roi.name, coarse[0].shape)
            coarse = None
    if coarse is None:
        full = _common([p.image.get_roi(r, axes_order=axes, c=p.channel) for p, r in pairs])
        yx = full[0].shape[-2:]
        factor = max(1, min(default_coarse_factor(yx), min(yx) // 32))
        coarse = [block_mean(f, factor) for f in full]
    found = coarse_shift(*coarse, factor=factor, intensity_quantiles=quantiles)
    if found.reason.startswith("no contrast"):
        return found
    boxes = [_pixel_box(p.image, r, axes) for p, r in pairs]
    shape = [min(a, b) for a, b in zip(boxes[0][1], boxes[1][1])]
    windows = refinement_windows(coarse[0], shape, found.shift, factor=factor)
    if windows is None:
        rounded = tuple(float(round(v)) for v in found.shift)
        return ShiftEstimate(rounded, 0.0, False, "the ROIs overlap by less than 32 pixels", rounded)
    cut = []
    for index, ((source, roi), window) in enumerate(zip(pairs, (windows.reference, windows.moving))):
        if full is not None:
            cut.append(full[index][(..., *window)])
            continue
        y, x = (slice(o + w.start, o + w.stop) for o, w in zip(boxes[index][0], window))
        cut.append(source.image.get_roi(roi, axes_order=axes, c=source.channel, y=y, x=x))
    return refine_shift(*cut, found.shift, offset_px=windows.offset_px, intensity_quantiles=quantiles)


def _common(arrays: list[np.ndarray]) -> list[np.ndarray]:
    common = tuple(slice(0, min(n)) for n in zip(*(a.shape for a in arrays)))
    return [a[common] for a in arrays]
