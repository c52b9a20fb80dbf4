"""Segment a channel of an OME-Zarr image, region by region, into a label image."""

from __future__ import annotations

import logging

import ngio
import numpy as np

from fractal_roi_tasks.arguments import SegmentationOptions
from fractal_roi_tasks.errors import AlreadyExistsError, InvalidInputError
from fractal_roi_tasks.io.ngio_tables import BLOCK_PIXELS, WHOLE_READ_MAX_BYTES, roi_slices
from fractal_roi_tasks.io.pyramid import build_pyramid
from fractal_roi_tasks.io.open import require_table

logger = logging.getLogger(__name__)


def segment_into_label(
    ome_zarr: ngio.OmeZarrContainer,
    zarr_url: str,
    label_name: str,
    options: SegmentationOptions,
    *,
    level: str,
    time_points: tuple[int, ...] | None = None,
) -> int:
    """Write label image `label_name` segmented from a channel.

    Every check (channel, ROI table, existing label) runs before anything is
    written. An automatic threshold is computed once over the whole channel,
    so a region with no object (pure background) stays empty instead of
    getting a threshold inside its noise: on the whole channel when it is at
    most `ngio_tables.WHOLE_READ_MAX_BYTES`, else from a histogram accumulated
    block by block (`segmentation.blocked_threshold`: otsu and triangle give
    the same value, li within one bin). Each ROI is then read from disk and
    segmented on its own at `level`, its ids offset so they stay unique across
    the image, and written at full resolution; then the label pyramid is built
    (`io.pyramid.build_pyramid`). Memory: one ROI plus a few blocks.

    A time series (`time_points` given) is segmented time point by time
    point, each as an image of its own: its own threshold, ids from 1 unique
    within that time point (they repeat across t), written at its t of the
    t(z)yx label image; time points not chosen stay empty (0).

    Returns:
        The channel's index among the image's channels.
    """
    image = ome_zarr.get_image(path=level)
    channel = options.channel.index_in(image.channel_labels, image.wavelength_ids)
    require_table(ome_zarr, options.roi_table, zarr_url)
    rois = ome_zarr.get_roi_table(options.roi_table).rois()
    if label_name in ome_zarr.list_labels() and not options.overwrite:
        raise AlreadyExistsError(
            f"Label image {label_name!r} already exists; set `overwrite` in the "
            "segmentation options to replace it, or choose another label_name."
        )

    label_full = ome_zarr.derive_label(label_name, overwrite=options.overwrite)
    n_objects = 0
    for t in (None,) if time_points is None else time_points:
        n_objects += _segment_time_point(image, channel, rois, label_full, options, t=t)
    build_pyramid(label_full)
    logger.info(
        "segmented %d objects over %d ROIs%s into %r (%s threshold)",
        n_objects, len(rois),
        "" if time_points is None else f" x {len(time_points)} time points",
        label_name, options.method,
    )
    return channel


def _segment_time_point(image, channel, rois, label_full, options, *, t) -> int:
    """Segment one time point (`t` None: an image without t) into `label_full`; its object count."""
    from fractal_roi_tasks.segmentation import compute_threshold, segment_channel

    read, shape, axes = channel_window_reader(image, channel, t=t)
    threshold = options.threshold
    if options.method != "manual":
        channel_bytes = int(np.prod(shape)) * image.zarr_array.dtype.itemsize
        if channel_bytes <= WHOLE_READ_MAX_BYTES:  # small: exact and fastest
            threshold = compute_threshold(
                read(tuple(slice(0, n) for n in shape)),
                method=options.method, smoothing_sigma=options.smoothing_sigma,
            )
        else:
            threshold = blocked_threshold(
                read, shape, method=options.method, smoothing_sigma=options.smoothing_sigma
            )
    full_axes = tuple(a for a in ("z", "y", "x") if a in label_full.axes)
    roi_axes = tuple(a for a in ("z", "y", "x") if a in image.axes)
    at = {} if t is None else {"t": int(t)}
    where = "" if t is None else f" at time point {t}"
    next_id = 0
    if np.isnan(threshold):
        logger.warning("channel %d has no contrast%s: the labels stay empty there", channel, where)
        rois = []
    for roi in rois:
        window = roi_slices(image, roi, roi_axes)
        patch_shape = tuple(s.stop - s.start for s in window)
        # the reader drops a z of size 1, as the whole-channel read does
        patch = read(window[1:] if len(window) > len(axes) else window).reshape(patch_shape)
        flat = patch[0] if roi_axes[0] == "z" and patch.shape[0] == 1 else patch
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
        del patch, flat
        labels = result.label_image.astype(np.uint32).reshape(patch_shape)
        labels[labels > 0] += next_id
        next_id += result.n_objects
        target_shape = tuple(s.stop - s.start for s in roi_slices(label_full, roi, full_axes))
        label_full.set_roi(roi, _to_shape(labels, target_shape), axes_order=full_axes, **at)
        logger.debug("%s%s: %d objects (threshold %.4g)", roi.name, where, result.n_objects, result.threshold)
    logger.info("%d objects%s (%s threshold %.4g)", next_id, where, options.method, threshold)
    return next_id


def blocked_threshold(read, shape, *, method: str, smoothing_sigma: float) -> float:
    """The automatic threshold from a histogram of the smoothed channel, block by block."""
    from fractal_roi_tasks.segmentation.blocked_threshold import (
        channel_histogram,
        threshold_from_histogram,
    )

    histogram = channel_histogram(
        read, shape, method=method, smoothing_sigma=smoothing_sigma,
        block_shape=(BLOCK_PIXELS, BLOCK_PIXELS),
    )
    threshold = threshold_from_histogram(histogram, method=method)
    logger.info(
        "%s threshold %.6g from a histogram of the smoothed channel (%d bins of %.4g)",
        method, threshold, len(histogram.counts), histogram.bin_width,
    )
    return threshold


def channel_window_reader(image, channel: int, *, t: int | None = None):
    """A reader of windows of one channel (at time point `t`), straight from disk.

    Returns:
        (read(slices) -> array, shape, axes): `axes` is ("z", "y", "x") or
        ("y", "x") (no z, or z of size 1, as `read_spatial` gives), `slices`
        one per axis of `axes`.
    """
    on_disk = tuple(image.axes)
    size = dict(zip(on_disk, image.shape))
    if t is None and "t" in on_disk and size["t"] != 1:
        raise InvalidInputError(
            f"Time series are not supported (axes {image.axes}); run on one time point."
        )
    axes = tuple(a for a in ("z", "y", "x") if a in on_disk and not (a == "z" and size[a] == 1))
    array = image.zarr_array

    def read(slices: tuple[slice, ...]) -> np.ndarray:
        given = dict(zip(axes, slices))
        index = tuple(
            given[a] if a in given else {"c": channel, "t": t or 0}.get(a, 0) for a in on_disk
        )
        return np.asarray(array[index])

    return read, tuple(size[a] for a in axes), axes


def _to_shape(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour resize of a label patch (a no-op at level 0)."""
    if labels.shape == shape:
        return labels
    index = np.ix_(*[
        np.minimum((np.arange(n) * labels.shape[a] / n).astype(np.int64), labels.shape[a] - 1)
        for a, n in enumerate(shape)
    ])
    return labels[index]
