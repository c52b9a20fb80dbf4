"""Read a label image (and the channel it was segmented from) for Segment to ROIs, bounded.

A label image up to `ngio_tables.WHOLE_READ_MAX_BYTES` is read whole: the
fastest path. A larger one goes block by block through `rois.blocked` (a few
blocks in memory), the intensity channel alongside it, and skeletons object by
object through `rois.skeleton_by_object.extract_branches_by_object` (memory grows with
the largest object's box). Both give what the whole-image path gives.
"""

from __future__ import annotations

import logging

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.io import ngio_tables

logger = logging.getLogger(__name__)


def measure_label(label, image, channel, *, shape: str, min_area: int, skeletonize: bool):
    """Every object's ROI and measurements, and its skeleton branches with `shape="skeleton"`.

    Args:
        label: the ngio Label at the chosen level.
        image: the ngio Image at the same level, or None (no intensities).
        channel: the index of the channel to measure intensities in, or None.
        shape: the task's `shape`.
        min_area, skeletonize: the task's arguments.

    Returns:
        (RoiSet, SkeletonRois or None, spatial axes of the label image).
    """
    from fractal_roi_tasks.rois import extract_branches, extract_rois
    from fractal_roi_tasks.rois.blocked import extract_rois_blocked
    from fractal_roi_tasks.rois.skeleton_by_object import extract_branches_by_object

    roi_shape = "point" if shape == "skeleton" else shape
    whole = label.zarr_array.nbytes <= ngio_tables.WHOLE_READ_MAX_BYTES
    if whole:  # small: fastest
        label_image, axes = ngio_tables.read_spatial(label)
        intensity = None
        if channel is not None:
            intensity = ngio_tables.read_spatial(image, c=channel)[0].reshape(label_image.shape)
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
    read, image_shape, axes, dtype, block = ngio_tables.block_reader(label)
    spacing = ngio_tables.spacing_um(label, axes)
    read_intensity = None
    if channel is not None:
        read_intensity, intensity_shape = ngio_tables.block_reader(image, c=channel)[:2]
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
