"""Fractal task: crop and shift one acquisition (and its labels) into the reference frame."""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import validate_call

from fractal_roi_tasks.errors import AlreadyExistsError
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
    source = Path(zarr_url.rstrip("/")).absolute()
    target = source if overwrite_input else source.with_name(REGISTERED_IMAGE.format(image=source.name))
    swap.recover(swap.Staging.of(source))  # a kill in a two-rename swap can leave it missing
    staging = swap.Staging.of(target)
    swap.recover(staging)

    ome_zarr, frame, acquisition = apply_image.open_checked(
        str(source), registered_roi_table, reference_acquisition
    )
    if not overwrite_input:
        _check_output_name(target)
    wanted = apply_image.wanted_marker(registered_roi_table, frame)
    if apply_image.is_done(target, wanted, overwrite_input=overwrite_input):
        swap.discard_complete(staging)
        logger.info("%s: already registered with %r, nothing to do", target, registered_roi_table)
    else:
        complete = swap.read_marker(staging.complete) if staging.complete.exists() else None
        if complete is None or complete.get("source") != wanted["source"]:
            built = apply_image.build(
                str(source), ome_zarr, frame, registered_roi_table, swap.start_building(staging),
                register_labels=register_labels,
            )
            swap.mark_complete(staging, {**wanted, "output": built})
        swap.publish(staging)
        logger.info("%s: registered with %r -> %s", source, registered_roi_table, target)
    if overwrite_input:
        return {"image_list_updates": [{"zarr_url": str(target)}]}
    add_to_well(target, acquisition)
    return {"image_list_updates": [{"zarr_url": str(target), "origin": str(source)}]}


def _check_output_name(target: Path) -> None:
    marker = swap.read_marker(target)
    if target.exists() and marker is None:
        raise AlreadyExistsError(
            f"{target} exists and was not written by Apply Registration to Image; move it "
            "away or set overwrite_input."
        )

if __name__ == "__main__":
    from fractal_task_tools.task_wrapper import run_fractal_task

    run_fractal_task(task_function=apply_registration_to_image)
