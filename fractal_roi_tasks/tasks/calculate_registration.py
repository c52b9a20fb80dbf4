"""Fractal compute task: per-ROI shift of one acquisition against the reference."""

from __future__ import annotations

import logging

import numpy as np
from pydantic import Field, validate_call
from typing_extensions import Annotated

from fractal_roi_tasks.arguments import ChannelChoice, ReferenceImage, check_level
from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.io.ngio_tables import spacing_um
from fractal_roi_tasks.io.open import open_image_container
from fractal_roi_tasks.io.registration_reads import image_shifts, open_levels
from fractal_roi_tasks.io.roi_tables import read_roi_table, write_roi_table
from fractal_roi_tasks.io.tiles import time_points
from fractal_roi_tasks.io.table_guard import guarded_rewrite
from fractal_roi_tasks.names import FOV_ROI_TABLE, QUALITY_COLUMN, TRANSLATION_COLUMNS, check_name

logger = logging.getLogger(__name__)


@validate_call
def calculate_registration(
    *,
    zarr_url: str,
    init_args: ReferenceImage,
    channel: ChannelChoice,
    roi_table: str = FOV_ROI_TABLE,
    level: str = "0",
    lower_quantile: Annotated[float, Field(ge=0, lt=1)] = 0.01,
    upper_quantile: Annotated[float, Field(gt=0, le=1)] = 0.999,
    time_point: Annotated[int, Field(ge=0)] = 0,
) -> dict:
    """Measure, per ROI, how far this acquisition is shifted from the reference.

    For each ROI of `roi_table` (matched by name with the reference image's
    table) the shift is found coarse-to-fine (the large shift on the pyramid
    level 4x coarser than `level`, then sub-pixel at `level` on a 96 x 96
    pixel window with texture: only that window is read at `level`) and
    written to this acquisition's ROI
    table as `translation_z`, `translation_y`, `translation_x` in micrometers,
    with fractal-tasks-core's sign (the shift that moves this acquisition onto
    the reference), and `registration_quality` (normalized cross-correlation
    after alignment, 1 is perfect). The table keeps its backend and its other
    columns. On a time-lapse (a `t` axis) the shift is measured on one time
    point, `time_point`, of both acquisitions; Find Registration Consensus
    and Apply Registration then move every time point by it.

    Args:
        zarr_url: Image of the acquisition to register (set by Fractal).
        init_args: Set by the init part: the reference image of the well.
        channel: The channel to register on, present in both acquisitions
            (e.g. the nuclear stain).
        roi_table: ROI table to work through, in both images (FOVs by
            default; `well_ROI_table` registers whole wells).
        level: Pyramid level to measure at; "0" (full resolution) gives the
            sub-pixel accuracy.
        lower_quantile: Intensities below this quantile are clipped before
            matching, per image.
        upper_quantile: Intensities above this quantile are clipped before
            matching, so a saturated artefact in one cycle does not dominate.
        time_point: For a time-lapse: the time point (0 is the first) the
            shift is measured on, in both acquisitions; pick one with clear
            content (not a blank or out-of-focus frame). Both acquisitions
            must have the same number of time points. Leave at 0 for images
            without time points.
    """
    check_name(roi_table, what="roi_table")
    if lower_quantile >= upper_quantile:
        raise InvalidInputError(
            f"lower_quantile ({lower_quantile}) must be below upper_quantile ({upper_quantile})."
        )
    reference_url = init_args.reference_zarr_url
    moving = open_image_container(zarr_url)
    reference = open_image_container(reference_url)
    for ome_zarr in (moving, reference):
        check_level(level, ome_zarr.level_paths)
    moving_image = moving.get_image(path=level)
    reference_image = reference.get_image(path=level)
    moving_rois_table, moving_rois = read_roi_table(moving, roi_table, zarr_url)
    reference_table, _ = read_roi_table(reference, roi_table, reference_url)
    _check_same(moving_rois.index, [r.name for r in reference_table.rois()], roi_table)
    axes = tuple(a for a in ("z", "y", "x") if a in moving_image.axes)
    spacing = np.asarray(spacing_um(moving_image, axes))
    if not np.allclose(spacing, spacing_um(reference_image, axes)):
        raise InvalidInputError(
            f"Pixel sizes differ between {zarr_url!r} and its reference {reference_url!r} "
            f"at level {level}; registration needs the same pixel size."
        )
    _check_time_points(reference_image, moving_image, reference_url, zarr_url)
    sources = [
        open_levels(c, level, channel, axes, time_point=time_point, where=f"{what} {url!r}")
        for c, what, url in ((reference, "the reference", reference_url), (moving, "the image", zarr_url))
    ]

    rois = reference_table.rois()
    estimates = image_shifts(
        *sources,
        [(roi, moving_rois_table.get(roi.name)) for roi in rois],
        quantiles=(lower_quantile, upper_quantile),
    )
    shifts, quality = {}, {}
    for roi, estimate in zip(rois, estimates):
        shift_um = np.asarray(estimate.shift) * spacing
        shifts[roi.name] = (0.0,) * (3 - len(axes)) + tuple(shift_um.tolist())
        quality[roi.name] = estimate.quality
        if not estimate.reliable:
            logger.warning("%s %s: unreliable registration (%s)", zarr_url, roi.name, estimate.reason)

    for column, values in zip(TRANSLATION_COLUMNS, zip(*(shifts[n] for n in moving_rois.index))):
        moving_rois[column] = values
    moving_rois[QUALITY_COLUMN] = [quality[n] for n in moving_rois.index]
    with guarded_rewrite(zarr_url, roi_table):
        write_roi_table(moving, roi_table, moving_rois, like=moving_rois_table)
    logger.info(
        "%s: %d ROIs registered against %s%s (median quality %.3f)",
        zarr_url,
        len(shifts),
        reference_url,
        f" on time point {time_point}" if "t" in moving_image.axes else "",
        float(np.median(list(quality.values()))) if quality else float("nan"),
    )
    return {"image_list_updates": [{"zarr_url": zarr_url}]}


def _check_same(moving_names, reference_names, roi_table: str) -> None:
    moving_names, reference_names = set(moving_names), set(reference_names)
    if moving_names != reference_names:
        raise InvalidInputError(
            f"The ROIs of {roi_table!r} differ between this acquisition and the reference: "
            f"only here {sorted(moving_names - reference_names)}, only in the reference "
            f"{sorted(reference_names - moving_names)}. Registration pairs ROIs by name."
        )


def _check_time_points(reference_image, moving_image, reference_url: str, zarr_url: str) -> None:
    counts = [time_points(image) for image in (reference_image, moving_image)]
    if counts[0] != counts[1]:
        raise InvalidInputError(
            f"{zarr_url!r} has {counts[1]} time points but its reference {reference_url!r} has "
            f"{counts[0]}: the shift is measured on one time point of both, so the two cycles "
            "must have the same time points."
        )


if __name__ == "__main__":
    from fractal_task_tools.task_wrapper import run_fractal_task

    run_fractal_task(task_function=calculate_registration)
