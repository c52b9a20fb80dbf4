"""Build the drift-corrected image of a time-lapse: every frame moved onto the reference.

The shifts come from the drift table (`io.drift_table`), the region every
frame sees from `drift.correction`; level 0 is copied box by box
(`block_copy`) or resampled one frame of one channel at a time; the pyramid
levels and labels follow. The new image is built beside the original;
`io.swap` publishes it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from fractal_roi_tasks.drift.correction import common_region, frame_boxes, resample_frame
from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.io import block_copy
from fractal_roi_tasks.io.drift_table import read_drift_shifts
from fractal_roi_tasks.io.roi_tables import fingerprint

logger = logging.getLogger(__name__)

SPATIAL = ("z", "y", "x")


def open_checked(zarr_url: str, table_name: str):
    """(the image container, the (T, D) shifts in the image's spatial axes, the drift table).

    Every check on the input runs here, before anything is written.
    """
    from fractal_roi_tasks.io.open import open_image_container

    ome_zarr = open_image_container(zarr_url)
    image = ome_zarr.get_image()
    axes = list(image.axes)
    if "t" not in axes:
        raise InvalidInputError(
            f"{zarr_url!r} has no time axis (axes {tuple(axes)}): drift correction needs a time-lapse."
        )
    shifts, frame = read_drift_shifts(ome_zarr, table_name)
    n_frames = image.shape[axes.index("t")]
    if len(frame) != n_frames or not np.array_equal(frame["t"].to_numpy(), np.arange(n_frames)):
        raise InvalidInputError(
            f"Drift table {table_name!r} has {len(frame)} rows (t = {frame['t'].tolist()[:5]}...) but "
            f"{zarr_url!r} has {n_frames} time points: re-run Calculate Drift on this image."
        )
    spatial = [a for a in SPATIAL if a in axes]
    if shifts.shape[1] > len(spatial):
        raise InvalidInputError(
            f"Drift table {table_name!r} has z shifts but {zarr_url!r} has no z axis (axes {tuple(axes)})."
        )
    if shifts.shape[1] < len(spatial):  # a 2D drift on a stack moves every plane alike
        shifts = np.pad(shifts, ((0, 0), (len(spatial) - shifts.shape[1], 0)))
    if not np.all(np.isfinite(shifts)):
        bad = np.flatnonzero(~np.isfinite(shifts).all(axis=1)).tolist()
        raise InvalidInputError(f"Drift table {table_name!r} has no finite shift at t = {bad}.")
    return ome_zarr, shifts, frame


def wanted_marker(table_name: str, frame: pd.DataFrame, *, subpixel: bool, correct_labels: bool) -> dict:
    """What a corrected image built from this table records about its input."""
    return {
        "drift_table": table_name,
        "subpixel": subpixel,
        "correct_labels": correct_labels,
        "source": fingerprint(frame),
    }


def build(ome_zarr, shifts: np.ndarray, table_name: str, source_url: str, path: Path, *,
          subpixel: bool, correct_labels: bool) -> str:
    """Write the drift-corrected image at `path`.

    Returns:
        The fingerprint of the drift table as written there.
    """
    import ngio

    from fractal_roi_tasks.io.derived_labels import write_labels
    from fractal_roi_tasks.io.pyramid import build_pyramid
    from fractal_roi_tasks.io.swap import crash_point

    image = ome_zarr.get_image()
    new = ome_zarr.derive_image(store=str(path), copy_labels=False, copy_tables=True)
    spatial = [a for a in SPATIAL if a in image.axes]
    region = common_region(shifts, _spatial_shape(image), subpixel=subpixel)
    logger.info("common region of the corrected frames: %s", dict(zip(spatial, region)))
    if subpixel:
        _resample(image, new.get_image(), shifts, region)
    else:
        move_frames(image, new.get_image(), shifts, region)
    crash_point("correcting")
    build_pyramid(new.get_image())

    def move(label, new_label) -> None:
        label_shifts = _in_pixels_of(label, image, shifts)
        move_frames(label, new_label, label_shifts, _scaled_region(label, image, region))

    write_labels(
        ome_zarr, new, Path(source_url), path, move if correct_labels else None,
        unmoved="uncorrected (correct_labels is unset)",
    )
    masking = [n for n in ome_zarr.list_tables() if ome_zarr.get_table(n).table_type() == "masking_roi_table"]
    if masking and correct_labels:
        logger.warning("masking ROI tables %s copied as they were: re-run Segment to ROIs on the corrected labels",
                       masking)
    _, written = read_drift_shifts(ngio.open_ome_zarr_container(str(path)), table_name)
    return fingerprint(written)


def move_frames(source, target, shifts: np.ndarray, region: tuple[slice, ...]) -> None:
    """Copy `region` of every frame of ngio `source` into `target`, moved by its whole-pixel shift.

    Block by block of `target` (`block_copy.copy_boxes`); a block holds one
    time point when ``t`` is chunked by 1, as ngio writes it.
    """
    axes = list(source.axes)
    spatial = [a for a in SPATIAL if a in axes]
    boxes = []
    for t, (read, write) in enumerate(frame_boxes(shifts, region)):
        read_box = {"t": slice(t, t + 1), **dict(zip(spatial, read))}
        write_box = {"t": slice(t, t + 1), **dict(zip(spatial, write))}
        boxes.append((read_box, write_box))
    block_copy.copy_boxes(source.zarr_array, target.zarr_array, axes, boxes)


def _resample(source, target, shifts: np.ndarray, region: tuple[slice, ...]) -> None:
    """Resample one frame of one channel at a time by its exact shift (the frame is read whole)."""
    axes = list(source.axes)
    array, out = source.zarr_array, target.zarr_array
    n_channels = array.shape[axes.index("c")] if "c" in axes else 1
    for t, shift in enumerate(shifts):
        for c in range(n_channels):
            index = tuple(t if a == "t" else c if a == "c" else slice(None) for a in axes)
            out[index] = resample_frame(array[index], shift, region)


def _spatial_shape(image) -> tuple[int, ...]:
    return tuple(image.shape[image.axes.index(a)] for a in SPATIAL if a in image.axes)


def _ratios(label, image) -> list[float]:
    """Per spatial axis of `image`, its pixel size over `label`'s (a label may be coarser)."""
    return [float(getattr(image.pixel_size, a)) / float(getattr(label.pixel_size, a))
            for a in SPATIAL if a in image.axes]


def _in_pixels_of(label, image, shifts: np.ndarray) -> np.ndarray:
    """`shifts` (pixels of `image`) in pixels of `label`."""
    return shifts * np.asarray(_ratios(label, image))


def _scaled_region(label, image, region: tuple[slice, ...]) -> tuple[slice, ...]:
    """`region` (pixels of `image`) in pixels of `label`, inside its frame."""
    out = []
    for axis, part, ratio in zip([a for a in SPATIAL if a in image.axes], region, _ratios(label, image)):
        size = label.shape[label.axes.index(axis)]
        out.append(slice(min(size, int(np.ceil(part.start * ratio))), min(size, int(np.floor(part.stop * ratio)))))
    return tuple(out)
