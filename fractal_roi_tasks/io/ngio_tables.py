"""Between ngio objects and the core: spatial arrays in, tables out."""

from __future__ import annotations

import math

import ngio
import numpy as np
import pandas as pd

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.names import ROI_NAME_INDEX, TIME_INDEX_COLUMN
from fractal_roi_tasks.rois.gc_pause import gc_paused
from fractal_roi_tasks.rois.shapes import RoiSet
from fractal_roi_tasks.rois.time_points import time_column


def read_spatial(image_like, **selection) -> tuple[np.ndarray, tuple[str, ...]]:
    """The whole array as (Z, Y, X), or (Y, X) when there is no z or z == 1.

    Channel and time axes must be selected away in `selection` (e.g. c=0).
    """
    axes = tuple(a for a in ("z", "y", "x") if a in image_like.axes)
    extra = [a for a in image_like.axes if a not in axes and a not in selection]
    if "t" in extra and image_like.dimensions.get("t") != 1:
        raise InvalidInputError(
            f"Time series are not supported (axes {image_like.axes}); run on one time point."
        )
    array = image_like.get_array(axes_order=axes, **selection)
    if "z" in axes and array.shape[0] == 1:
        return array[0], axes[1:]
    return array, axes


def roi_slices(image_like, roi, axes: tuple[str, ...]) -> tuple[slice, ...]:
    """The pixel slices, along `axes`, that ngio reads for `roi` in `image_like`.

    Fractional bounds round outward (floor of start, ceil of end), clipped
    to the array, as ngio does; lets a caller cut a ROI out of an array it
    already holds instead of reading it again.
    """
    bounds = roi.to_slicing_dict(image_like.pixel_size)
    slices = []
    for axis in axes:
        n = image_like.shape[image_like.axes.index(axis)]
        window = bounds.get(axis, slice(None))
        start = 0 if window.start is None else max(0, min(math.floor(window.start), n))
        stop = n if window.stop is None else max(0, min(math.ceil(window.stop), n))
        slices.append(slice(start, stop))
    return tuple(slices)


def spacing_um(image_like, axes: tuple[str, ...]) -> tuple[float, ...]:
    """Pixel size in micrometers along `axes`."""
    size = image_like.pixel_size
    return tuple(float(getattr(size, axis)) for axis in axes)


def level_scale(ome_zarr: ngio.OmeZarrContainer, image_like, axes: tuple[str, ...]) -> list[float]:
    """Per axis, this level's pixel size over the full-resolution one."""
    base = ome_zarr.get_image(path=ome_zarr.level_paths[0]).pixel_size
    here = image_like.pixel_size
    return [float(getattr(here, axis)) / float(getattr(base, axis)) for axis in axes]


def masking_table(
    roi_set: RoiSet, label_name: str, *, time_step: float | None = None, time_unit: str | None = None
) -> ngio.GenericTable:
    """One bounding box per object, in micrometers, relative to the image origin.

    For a set over time points (features with a ``t`` column, see
    `rois.time_points`) each ROI also gets a ``t`` slice of one time point
    (from ``t`` x `time_step`, `time_step` long, in the image's t unit: ngio
    reads it back as that time point, and stores it as ``t_second`` /
    ``len_t_second`` whatever the unit), the columns ``t`` and the time in
    `time_unit`, and rows named like the ROIs ("t3-7"), as label ids repeat
    across time points.

    Returns a table that writes exactly what an `ngio.MaskingRoiTable` of one
    `ngio.Roi` per object writes (same frame, same masking ROI table
    metadata), read back by ngio as a masking ROI table: built from the
    columns, since the ROI objects cost more than the rest of the table.
    """
    feats = roi_set.features
    meta = ngio.MaskingRoiTable(reference_label=label_name).meta
    timed = TIME_INDEX_COLUMN in feats
    if timed:
        meta = meta.model_copy(
            update={"index_key": ROI_NAME_INDEX, "index_type": "str", "instance_key": ROI_NAME_INDEX}
        )
    if len(feats) == 0:  # ngio's frame of no ROIs: the required columns only
        frame = pd.DataFrame({col: pd.Series(dtype="float64") for col in _ROI_COLUMNS})
        frame.index.name = meta.index_key
        return ngio.GenericTable(frame, meta=meta)

    def um(column: str, default: float) -> np.ndarray:
        if column not in feats:  # ngio's value for an axis the ROIs lack
            return np.full(len(feats), default)
        return feats[column].to_numpy(np.float64)

    columns = {
        "x_micrometer": um("bbox_x_um", 0.0),
        "y_micrometer": um("bbox_y_um", 0.0),
        "z_micrometer": um("bbox_z_um", 0.0),
        "len_x_micrometer": um("bbox_len_x_um", 1.0),
        "len_y_micrometer": um("bbox_len_y_um", 1.0),
        "len_z_micrometer": um("bbox_len_z_um", 1.0),
    }
    # ngio names each row by its ROI name as a string, then casts it to the
    # index type; the labels go through str() the same way (uint64 ids too).
    labels = feats["label"].tolist()
    if not timed:
        index = [str(lab) for lab in labels]
    else:
        step = 1.0 if time_step is None else float(time_step)
        times = [int(t) for t in feats[TIME_INDEX_COLUMN].tolist()]
        seconds = [t * step for t in times]
        columns.update({
            "t_second": seconds, "len_t_second": [step] * len(times), "label": labels,
            TIME_INDEX_COLUMN: times, time_column(time_unit): seconds,
        })
        index = [roi.name for roi in roi_set.rois]
    frame = pd.DataFrame(columns, index=pd.Index(index, name=meta.index_key))
    return ngio.GenericTable(frame, meta=meta)


_ROI_COLUMNS = (
    "x_micrometer", "y_micrometer", "z_micrometer",
    "len_x_micrometer", "len_y_micrometer", "len_z_micrometer",
)


def feature_table(
    roi_set: RoiSet, label_name: str, extra: pd.DataFrame | None = None
) -> ngio.FeatureTable:
    """The measurements, one row per object, indexed by label.

    `extra` (one row per label, a ``label`` column) adds columns, e.g. the
    per-skeleton summaries; objects missing from it get NaN. Over time
    points (a ``t`` column) rows are matched on ``t`` and ``label`` and
    indexed by the ROI names ("t3-7"), ``label`` kept as a column.
    """
    table = roi_set.features.copy()
    table["label"] = table["label"].astype(np.int64)
    timed = TIME_INDEX_COLUMN in table
    keys = ["label", TIME_INDEX_COLUMN] if timed else "label"
    if extra is not None:
        more = extra.copy()
        more["label"] = more["label"].astype(np.int64)
        table = table.merge(more, on=keys, how="left", suffixes=("", "_skeleton"))
    if not timed:
        return ngio.FeatureTable(table.set_index("label"), reference_label=label_name)
    table.index = pd.Index([roi.name for roi in roi_set.rois], name=ROI_NAME_INDEX)
    meta = ngio.FeatureTable(reference_label=label_name).meta.model_copy(
        update={"index_key": ROI_NAME_INDEX, "index_type": "str", "instance_key": ROI_NAME_INDEX}
    )
    return ngio.FeatureTable(table, meta=meta)


def branch_table(branches: RoiSet) -> ngio.GenericTable:
    """One row per skeleton branch, indexed by the branch ROI name ("7-3")."""
    table = branches.features.copy()
    table.index = pd.Index([roi.name for roi in branches.rois], name="branch_id")
    return ngio.GenericTable(table)


def label_properties(roi_set: RoiSet) -> list[dict]:
    """Per-label entries for the ``image-label`` ``properties`` list.

    Over time points, one entry per label value (the metadata knows no t):
    in how many time points it occurs, the first and last, and its mean size.
    """
    feats = roi_set.features
    area_column = "area_um2" if "area_um2" in feats else "volume_um3"
    if TIME_INDEX_COLUMN not in feats:
        # Plain lists, not Series items; and 10,000 dicts would set off a full
        # pass of the cyclic collector over the whole process (0.1-0.2 s).
        columns = (feats["label"].tolist(), feats["area_px"].tolist(), feats[area_column].tolist())
        with gc_paused():
            return [
                {"label-value": int(lab), "area_px": float(area), area_column: float(size)}
                for lab, area, size in zip(*columns)
            ]
    by_label = feats.groupby("label", sort=True)
    times, areas = by_label[TIME_INDEX_COLUMN], by_label["area_px"].mean()
    sizes = by_label[area_column].mean()
    return [
        {
            "label-value": int(lab), "n_time_points": int(n), "t_first": int(first),
            "t_last": int(last), "area_px_mean": float(area), f"{area_column}_mean": float(size),
        }
        for lab, n, first, last, area, size in zip(
            areas.index, times.nunique(), times.min(), times.max(), areas, sizes
        )
    ]


WHOLE_READ_MAX_BYTES = 64 * 2**20
"""A label image up to this size is read whole (fastest); a larger one block by block."""
BLOCK_PIXELS = 1024
"""Rows and columns of a block read at once (rounded to whole chunks)."""


def block_reader(image_like, **selection):
    """A reader of (Y, X) windows of one plane, for the blockwise core.

    Returns:
        (read(z, rows, cols), shape (Y, X) or (Z, Y, X), axes, dtype, block
        shape (rows, cols) in whole chunks of about `BLOCK_PIXELS`).
    """
    axes = tuple(a for a in ("z", "y", "x") if a in image_like.axes)
    extra = [a for a in image_like.axes if a not in axes and a not in selection]
    if "t" in extra and image_like.dimensions.get("t") != 1:
        raise InvalidInputError(
            f"Time series are not supported (axes {image_like.axes}); run on one time point."
        )
    on_disk = tuple(image_like.axes)
    full_shape = tuple(image_like.shape)
    size = dict(zip(on_disk, full_shape))
    chunk = dict(zip(on_disk, image_like.chunks))
    array = image_like.zarr_array
    if "z" in axes and size["z"] == 1:
        axes = axes[1:]

    def read(z: int, rows: slice, cols: slice) -> np.ndarray:
        index = []
        for axis in on_disk:
            if axis == "y":
                index.append(rows)
            elif axis == "x":
                index.append(cols)
            elif axis == "z":
                index.append(int(z))
            else:
                index.append(int(selection.get(axis, 0)))
        return np.asarray(array[tuple(index)])

    shape = tuple(size[a] for a in axes)
    block = tuple(max(chunk[a], BLOCK_PIXELS // chunk[a] * chunk[a]) for a in ("y", "x"))
    return read, shape, axes, np.dtype(array.dtype), block
