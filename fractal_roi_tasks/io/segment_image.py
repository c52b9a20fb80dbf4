"""Segment a channel of an OME-Zarr image, region by region, into a label image."""

from __future__ import annotations

import logging

import ngio
import numpy as np

from fractal_roi_tasks.arguments import SegmentationOptions
from fractal_roi_tasks.errors import AlreadyExistsError
from fractal_roi_tasks.io.ngio_tables import read_spatial, roi_slices
from fractal_roi_tasks.io.open import require_table

logger = logging.getLogger(__name__)


def segment_into_label(
    ome_zarr: ngio.OmeZarrContainer,
    zarr_url: str,
    label_name: str,
    options: SegmentationOptions,
    *,
    level: str,
) -> tuple[np.ndarray, int]:
    """Write label image `label_name` segmented from a channel.

    Every check (channel, ROI table, existing label) runs before anything is
    written. An automatic threshold is computed once over the whole channel,
    so a region with no object (pure background) stays empty instead of
    getting a threshold inside its noise. Each ROI is then segmented on its own
    at `level`, its ids offset so they stay unique across the image, and
    written at full resolution; then the label pyramid is rebuilt.

    Returns:
        (the segmented channel at `level`, for intensity measurements; its
        index among the image's channels).
    """
    from fractal_roi_tasks.segmentation import compute_threshold, segment_channel

    image = ome_zarr.get_image(path=level)
    channel = options.channel.index_in(image.channel_labels, image.wavelength_ids)
    require_table(ome_zarr, options.roi_table, zarr_url)
    rois = ome_zarr.get_roi_table(options.roi_table).rois()
    if label_name in ome_zarr.list_labels() and not options.overwrite:
        raise AlreadyExistsError(
            f"Label image {label_name!r} already exists; set `overwrite` in the "
            "segmentation options to replace it, or choose another label_name."
        )

    channel_image = read_spatial(image, c=channel)[0]
    threshold = options.threshold
    if options.method != "manual":
        threshold = compute_threshold(
            channel_image, method=options.method, smoothing_sigma=options.smoothing_sigma
        )

    label_full = ome_zarr.derive_label(label_name, overwrite=options.overwrite)
    full_axes = tuple(a for a in ("z", "y", "x") if a in label_full.axes)
    axes = tuple(a for a in ("z", "y", "x") if a in image.axes)
    next_id = 0
    if np.isnan(threshold):
        logger.warning(
            "channel %d of %s has no contrast: label image %r stays empty", channel, zarr_url, label_name
        )
        rois = []
    # The channel is in memory already: cut each ROI out of it, don't read it again.
    whole = channel_image.reshape([image.shape[image.axes.index(a)] for a in axes])
    for roi in rois:
        patch = whole[roi_slices(image, roi, axes)]
        flat = patch[0] if axes[0] == "z" and patch.shape[0] == 1 else patch
        result = segment_channel(
            flat,
            method="manual",
            threshold=threshold,
            smoothing_sigma=options.smoothing_sigma,
            split_touching=options.split_touching,
            split_min_distance_px=options.split_min_distance_px,
            min_area_px=options.min_area_px,
            max_area_px=options.max_area_px,
        )
        labels = result.label_image.astype(np.uint32).reshape(patch.shape)
        labels[labels > 0] += next_id
        next_id += result.n_objects
        target_shape = tuple(s.stop - s.start for s in roi_slices(label_full, roi, full_axes))
        label_full.set_roi(roi, _to_shape(labels, target_shape), axes_order=full_axes)
        logger.debug("%s: %d objects (threshold %.4g)", roi.name, result.n_objects, result.threshold)
    label_full.consolidate(mode="auto")
    logger.info(
        "segmented %d objects over %d ROIs into %r (%s threshold %.4g)",
        next_id, len(rois), label_name, options.method, threshold,
    )
    return channel_image, channel


def _to_shape(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour resize of a label patch (a no-op at level 0)."""
    if labels.shape == shape:
        return labels
    index = np.ix_(*[
        np.minimum((np.arange(n) * labels.shape[a] / n).astype(np.int64), labels.shape[a] - 1)
        for a, n in enumerate(shape)
    ])
    return labels[index]
