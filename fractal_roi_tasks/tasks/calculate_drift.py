"""Fractal parallel task: the drift of every time point of a time-lapse, as a table in the image."""

from __future__ import annotations

import logging

import numpy as np
from pydantic import Field, validate_call
from typing_extensions import Annotated

from fractal_roi_tasks.arguments import ChannelChoice
from fractal_roi_tasks.io.drift_table import (
    REFERENCE_MODE,
    DriftSource,
    drift_frame,
    write_drift_table,
)
from fractal_roi_tasks.names import DRIFT_TABLE, check_name

logger = logging.getLogger(__name__)


@validate_call
def calculate_drift(
    *,
    zarr_url: str,
    channel: ChannelChoice,
    reference_time_point: Annotated[int, Field(ge=0)] = 0,
    level: str = "0",
    drift_table: str = DRIFT_TABLE,
    max_step: Annotated[int, Field(ge=1)] = 8,
) -> dict:
    """Measure how far the stage (and focus) drifted at every time point, to a fraction of a pixel.

    Every time point of `channel` is measured against the reference time
    point and against the time points 1, 2, 4, ... `max_step` later, and
    all of them are solved together (weighted least squares), so errors do
    not add up from frame to frame as when each frame is matched to the
    previous one. Blank or out-of-focus time points are flagged and their
    drift is interpolated in time. The result goes into the table
    `drift_table` of this image, one row per time point: the shift that
    moves the time point onto the reference (y, x, and z for a stack), in
    full-resolution pixels and in micrometers, with its quality; the
    table's attributes record the channel, level and reference time point
    it was measured with. Run Apply Drift Correction next to shift every
    channel.

    Args:
        zarr_url: Time-lapse image to measure (set by Fractal).
        channel: The channel to measure drift on (e.g. the nuclear stain);
            Apply Drift Correction shifts every channel by it.
        reference_time_point: The time point (0-based) every shift is
            relative to; it must not be blank.
        level: Pyramid level to measure at; "0" (full resolution) gives the
            sub-pixel accuracy, a coarser level is faster and uses less
            memory. Shifts are written in full-resolution pixels either way.
        drift_table: Name of the table to write (replaced if it exists).
        max_step: Largest time step between two time points compared
            directly; larger finds slow drift more precisely, at more
            comparisons per time point (about 2 + log2 of it).
    """
    from fractal_roi_tasks.drift import estimate_drift
    from fractal_roi_tasks.drift.pairs import time_steps
    from fractal_roi_tasks.io.drift_reads import read_drift_frames
    from fractal_roi_tasks.io.open import open_image_container

    check_name(drift_table, what="drift_table")
    ome_zarr = open_image_container(zarr_url)
    read = read_drift_frames(ome_zarr, zarr_url, channel, level, reference_time_point)
    drift = estimate_drift(read.frames, reference=reference_time_point, max_step=max_step)
    shift_px = drift.shift_px * np.asarray(read.to_level0)
    frame = drift_frame(
        shift_px,
        spacing_um=read.spacing_um,
        time_step=read.time_step,
        quality=drift.quality,
        blank=drift.blank,
        interpolated=drift.interpolated,
        reference=drift.reference,
    )
    source = DriftSource(
        channel_label=read.channel_label,
        wavelength_id=read.wavelength_id,
        level=level,
        reference_mode=REFERENCE_MODE,
        reference_time_point=drift.reference,
        max_step=max_step,
        time_steps=tuple(time_steps(shift_px.shape[0], max_step)),
    )
    write_drift_table(ome_zarr, frame, drift_table, source=source)

    for t in np.flatnonzero(drift.interpolated):
        logger.warning("%s time point %d: drift interpolated (%s)", zarr_url, t, drift.reason[t])
    distance = np.linalg.norm(shift_px[:, -2:], axis=1)
    worst = int(np.argmax(distance))
    z_note = f", z up to {float(np.abs(shift_px[:, 0]).max()):.2f} planes" if read.axes[0] == "z" else ""
    logger.info(
        "%s: drift of %d time points on %r at level %s against time point %d: largest %.2f px "
        "(y, x; full resolution) at time point %d%s; %d blank, %d interpolated; table %r written",
        zarr_url,
        shift_px.shape[0],
        read.channel_label,
        level,
        drift.reference,
        float(distance[worst]),
        worst,
        z_note,
        int(drift.blank.sum()),
        int(drift.interpolated.sum()),
        drift_table,
    )
    return {"image_list_updates": [{"zarr_url": zarr_url}]}


if __name__ == "__main__":
    from fractal_task_tools.task_wrapper import run_fractal_task

    run_fractal_task(task_function=calculate_drift)
