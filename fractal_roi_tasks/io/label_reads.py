"""Read a label image (and the channel it was segmented from) for Segment to ROIs, bounded.

A label image up to `ngio_tables.WHOLE_READ_MAX_BYTES` is read whole: the
fastest path. A larger one goes block by block through `rois.blocked` (a few
blocks in memory), the intensity channel alongside it, and skeletons object by
object through `rois.skeleton_by_object.extract_branches_by_object` (memory grows with
the largest object's box). Both give what the whole-image path gives.

A time series (a ``t`` axis of more than one time point) is measured one time
point at a time through the same path (`measure_time_points`): only that time
point is read, and its size decides whole or blocked.
"""

from __future__ import annotations

import logging

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.io import ngio_tables

logger = logging.getLogger(__name__)


def measure_label(
    label, image, channel, *, shape: str, min_area: int, skeletonize: bool, t: int | None = None
):
    """Every object's ROI and measurements, and its skeleton branches with `shape="skeleton"`.

    Args:
        label: the ngio Label at the chosen level.
        image: the ngio Image at the same level, or None (no intensities).
        channel: the index of the channel to measure intensities in, or None.
        shape: the task's `shape`.
        min_area, skeletonize: the task's arguments.
        t: the time point to read (index along ``t``); None for an image
            without ``t`` (or with one time point).

    Returns:
        (RoiSet, SkeletonRois or None, spatial axes of the label image).
    """
    from fractal_roi_tasks.rois import extract_branches, extract_rois
    from fractal_roi_tasks.rois.blocked import extract_rois_blocked
    from fractal_roi_tasks.rois.skeleton_by_object import extract_branches_by_object

    roi_shape = "point" if shape == "skeleton" else shape
    at = {} if t is None else {"t": int(t)}
    # what one read holds: one time point of a time series
    n_times = (label.dimensions.get("t") or 1) if t is not None else 1
    whole = label.zarr_array.nbytes // n_times <= ngio_tables.WHOLE_READ_MAX_BYTES
    if whole:  # small: fastest
        label_image, axes = ngio_tables.read_spatial(label, **at)
        intensity = None
        if channel is not None:
            intensity = ngio_tables.read_spatial(image, c=channel, **at)[0].reshape(label_image.shape)
        spacing = ngio_tables.spacing_um(label, axes)
        roi_set = extract_rois(
            label_image, shape=roi_shape, min_area_px=min_area, spacing=spacing,
            intensity_image=intensity,
        )
        del intensity
        skeletons = None
        if shape == "skeleton":
            skeletons = extract_branches(label_image, skeletonize=skeletonize, spacing=spacing)
            skeletons = skeletons.keep_labels(set(roi_set.features["label"].tolist()))
        return roi_set, skeletons, axes

    # block by block: memory bounded by a few blocks plus the output
    read, image_shape, axes, dtype, block = ngio_tables.block_reader(label, **at)
    spacing = ngio_tables.spacing_um(label, axes)
    read_intensity = None
    if channel is not None:
        read_intensity, intensity_shape = ngio_tables.block_reader(image, c=channel, **at)[:2]
        if tuple(intensity_shape) != tuple(image_shape):
            raise InvalidInputError(
                f"the channel ({intensity_shape}) and the label image ({image_shape}) "
                "differ in shape at this level."
            )
    roi_set = extract_rois_blocked(
        read, image_shape, dtype, block_shape=block, shape=roi_shape,
        min_area_px=min_area, spacing=spacing, read_intensity=read_intensity,
    )
    skeletons = None
    if shape == "skeleton":
        features = roi_set.features
        names = axes[-len(image_shape):]
        start = np.stack([features[f"bbox_{a}_px"].to_numpy() for a in names], axis=1)
        stop = start + np.stack([features[f"bbox_len_{a}_px"].to_numpy() for a in names], axis=1)
        skeletons = extract_branches_by_object(
            read, image_shape, features["label"].to_numpy(), start, stop,
            skeletonize=skeletonize, spacing=spacing, block_shape=block,
        )
        logger.debug("%d skeletons traced object by object", len(features))
    return roi_set, skeletons, axes


def measure_time_points(
    label, image, channel, time_points, *, shape: str, min_area: int, skeletonize: bool
):
    """`measure_label` on each of `time_points`, one time point read at a time, joined.

    Objects are found within each time point, never across t. Returns what
    `measure_label` returns, over all `time_points`: one RoiSet (and one
    skeleton result) whose ROIs carry their ``t`` and ``"t{t}-"`` names and
    whose features have ``t`` and the time in the image's t unit (from the
    label image's NGFF ``t`` scale, read through ngio; ngio reads a ``t``
    axis without a unit as seconds). `time_points` None: `measure_label` on
    an image without t (or of one time point), unchanged.
    """
    from fractal_roi_tasks.rois.time_points import combine_skeletons, combine_time_points

    if time_points is None:
        return measure_label(
            label, image, channel, shape=shape, min_area=min_area, skeletonize=skeletonize
        )
    per_t, skeletons, axes = [], [], ()
    for t in time_points:
        roi_set, found, axes = measure_label(
            label, image, channel, shape=shape, min_area=min_area, skeletonize=skeletonize, t=t
        )
        per_t.append((t, roi_set))
        if found is not None:
            skeletons.append((t, found))
        logger.debug("time point %d: %d objects", t, len(roi_set.rois))
    time_step, time_unit = time_scale(label)
    roi_set = combine_time_points(per_t, time_step=time_step, time_unit=time_unit)
    return roi_set, (combine_skeletons(skeletons) if skeletons else None), axes


def time_scale(image_like) -> tuple[float, str | None]:
    """The time between time points (the NGFF ``t`` scale) and its unit, through ngio."""
    return float(image_like.pixel_size.t), image_like.time_unit
