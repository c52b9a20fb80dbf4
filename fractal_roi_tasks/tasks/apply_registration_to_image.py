"""Fractal task: crop and shift one acquisition (and its labels) into the reference frame."""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import validate_call

from fractal_roi_tasks.io import swap
from fractal_roi_tasks.names import check_name

logger = logging.getLogger(__name__)
REGISTERED_IMAGE = "{image}_registered"


@validate_call
def apply_registration_to_image(
    *,
    zarr_url: str,
    registered_roi_table: str,
    reference_acquisition: int = 0,
    register_labels: bool = True,
    overwrite_input: bool = True,
) -> dict:
    """Crop and shift this acquisition into the reference acquisition's frame.

    Builds a new image of the same shape: the region of every ROI of
    `registered_roi_table` (written by Find Registration Consensus) is copied,
    whole pixels, to where it lies in the reference; everything else is zero.
    A table written by fractal-tasks-core's Find Registration Consensus works
    too: where its ROIs lie in the reference is then read from the reference
    acquisition's table of the same name.
    All channels, z-planes and pyramid levels; labels too. Safe to kill and
    re-run at any moment, and to run on every acquisition of a well at once:
    the new image is built beside the original and swapped in atomically;
    the original is deleted only after the new image is complete on disk.

    Args:
        zarr_url: Path of the OME-Zarr image to register (set by Fractal).
        registered_roi_table: The table Find Registration Consensus (of this
            package or of fractal-tasks-core) wrote, e.g.
            `FOV_ROI_table_registered`.
        reference_acquisition: Acquisition id of the reference cycle (the
            one the others were registered to).
        register_labels: Register every label image of the image too.
        overwrite_input: Replace the image by its registered version; if
            unset, the registered image is added to the well as
            `{image}_registered` and the original stays.
    """
    from fractal_roi_tasks.io import registration_apply as apply_image
    from fractal_roi_tasks.io.wells import add_to_well

    check_name(registered_roi_table, what="registered_roi_table")
    output = swap.plan_output(zarr_url, new_name=REGISTERED_IMAGE, overwrite_input=overwrite_input)
    source = str(output.source)
    ome_zarr, frame, acquisition = apply_image.open_checked(
        source, registered_roi_table, reference_acquisition
    )

    def build(path: Path) -> dict:
        built = apply_image.build(
            source, ome_zarr, frame, registered_roi_table, path, register_labels=register_labels
        )
        return {"output": built}

    wanted = apply_image.wanted_marker(registered_roi_table, frame)
    if swap.build_once(output, wanted, build, source_key="source", task="Apply Registration to Image"):
        logger.info("%s: registered with %r -> %s", source, registered_roi_table, output.target)
    else:
        logger.info("%s: already registered with %r, nothing to do", output.target, registered_roi_table)
    if output.in_place:
        return {"image_list_updates": [{"zarr_url": str(output.target)}]}
    add_to_well(output.target, acquisition)
    return {"image_list_updates": [{"zarr_url": str(output.target), "origin": source}]}


if __name__ == "__main__":
    from fractal_task_tools.task_wrapper import run_fractal_task

    run_fractal_task(task_function=apply_registration_to_image)
