"""Fractal task: move every time point of a time-lapse (and its labels) onto the reference frame."""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import validate_call

from fractal_roi_tasks.io import swap
from fractal_roi_tasks.names import DRIFT_TABLE, check_name

logger = logging.getLogger(__name__)
CORRECTED_IMAGE = "{image}_drift_corrected"


@validate_call
def apply_drift_correction(
    *,
    zarr_url: str,
    drift_table: str = DRIFT_TABLE,
    subpixel: bool = False,
    correct_labels: bool = True,
    overwrite_input: bool = True,
) -> dict:
    """Shift every time point onto the reference frame, using the table Calculate Drift wrote.

    Builds a new image of the same shape. By default each time point is moved
    by its shift rounded to whole pixels (pixels are copied, never
    interpolated); only the region every time point sees after moving holds
    data and everything outside it is zero, the same in every time point, so
    the corrected movie has no moving borders. All channels, z-planes and
    pyramid levels; labels too (always by whole pixels). Safe to kill and
    re-run at any moment: the new image is built beside the original and
    swapped in atomically; the original is deleted only after the new image
    is complete on disk. Running it again on a corrected image does nothing.

    Args:
        zarr_url: Path of the OME-Zarr time-lapse image (set by Fractal).
        drift_table: The table Calculate Drift wrote into the image.
        subpixel: Resample each time point by its exact (sub-pixel) shift
            with linear interpolation instead of moving it by whole pixels.
            Aligns to a fraction of a pixel, but it interpolates
            the pixel values and reads one whole time point of one channel
            at a time (memory: a few copies of one such frame). Labels are
            still moved by whole pixels.
        correct_labels: Move every label image of the image too.
        overwrite_input: Replace the image by its corrected version; if
            unset, the corrected image is written beside it as
            `{image}_drift_corrected` (and added to the well when the image
            is in a plate) and the original stays.
    """
    from fractal_roi_tasks.io import drift_apply
    from fractal_roi_tasks.io.drift_table import read_drift_source
    from fractal_roi_tasks.io.wells import acquisition_in_well, add_to_well

    check_name(drift_table, what="drift_table")
    output = swap.plan_output(zarr_url, new_name=CORRECTED_IMAGE, overwrite_input=overwrite_input)
    source = str(output.source)
    ome_zarr, shifts, frame = drift_apply.open_checked(source, drift_table)
    measured = read_drift_source(ome_zarr, drift_table)
    how = measured.describe() if measured else "not saying what it was measured on"

    def build(path: Path) -> dict:
        built = drift_apply.build(
            ome_zarr, shifts, drift_table, source, path, subpixel=subpixel, correct_labels=correct_labels
        )
        return {"output": built}

    wanted = drift_apply.wanted_marker(drift_table, frame, subpixel=subpixel, correct_labels=correct_labels)
    if swap.build_once(output, wanted, build, source_key="source", task="Apply Drift Correction"):
        logger.info("%s: %d time points corrected with %r (%s) -> %s",
                    source, len(frame), drift_table, how, output.target)
    else:
        logger.info("%s: already corrected with %r, nothing to do", output.target, drift_table)
    if output.in_place:
        return {"image_list_updates": [{"zarr_url": str(output.target)}]}
    acquisition = acquisition_in_well(source)
    if acquisition is not None:  # in a plate: list the new image in its well; else it just sits beside
        add_to_well(output.target, acquisition)
    return {"image_list_updates": [{"zarr_url": str(output.target), "origin": source}]}


if __name__ == "__main__":
    from fractal_task_tools.task_wrapper import run_fractal_task

    run_fractal_task(task_function=apply_drift_correction)
