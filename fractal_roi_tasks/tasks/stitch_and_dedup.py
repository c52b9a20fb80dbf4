"""Fractal task: place overlapping tiles, fuse them, give every object one label id."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, validate_call
from typing_extensions import Annotated

from fractal_roi_tasks.arguments import ChannelChoice, check_level
from fractal_roi_tasks.io import swap
from fractal_roi_tasks.names import FOV_ROI_TABLE, STITCHED_IMAGE, check_name

logger = logging.getLogger(__name__)


@validate_call
def stitch_and_dedup(
    *,
    zarr_url: str,
    roi_table: str = FOV_ROI_TABLE,
    channel: Optional[ChannelChoice] = None,
    level: str = "0",
    use_stage_positions: bool = True,
    max_shift_um: Annotated[float, Field(gt=0)] = 10.0,
    blending: Literal["linear", "none"] = "linear",
    label_names: Optional[list[str]] = None,
    min_overlap: Annotated[float, Field(gt=0, le=1)] = 0.5,
    placement_time_point: Annotated[int, Field(ge=0)] = 0,
    overwrite_input: bool = False,
) -> dict:
    """Stitch the overlapping fields of view of an image into one, and de-duplicate its labels.

    Each tile (one ROI of `roi_table`, side by side in the array as a
    converter writes them) starts at its stage position; the shift between
    every pair of overlapping tiles is measured sub-pixel on their overlap,
    and one least-squares solve places all tiles, dropping measurements that
    disagree with the rest. Tiles without a trustworthy overlap stay at their
    stage position (logged, and marked in the new table). The tiles are then
    fused, every channel and plane, chunk by chunk; each label image is fused
    too, and objects cut by a tile border get one id.

    A time-lapse (a `t` axis) is placed once, on `placement_time_point`,
    and every time point is fused with that placement, one time point at a
    time; labels are de-duplicated within each time point (ids are unique
    within a time point, not across time points). The stitched image keeps
    the `t` axis and its time scale.

    Args:
        zarr_url: Path of the OME-Zarr image with the tiles (set by Fractal).
        roi_table: The table with one ROI per tile (field of view).
        channel: The channel to measure tile overlaps on (e.g. the nuclear
            stain); the first channel if unset. Every channel is fused.
        level: Pyramid level to measure overlaps at; "0" (full resolution)
            gives sub-pixel placement, a coarser level is faster.
        use_stage_positions: Start from the stage positions
            (`x_micrometer_original`, `y_micrometer_original`); if unset, or
            if the table lacks them, from the ROI positions.
        max_shift_um: How far (micrometers) a tile may lie from its stage
            position; larger values search more and cost more.
        blending: `linear`: in overlaps, weights fall linearly to each tile's
            border (no visible seams); `none`: each pixel from one tile.
        label_names: Label images to fuse and de-duplicate; all of them if
            unset.
        min_overlap: Two objects of neighbouring tiles are the same object
            when they share at least this fraction of the smaller one's part
            in the overlap.
        placement_time_point: For a time-lapse: the time point whose pixels
            place the tiles (0 is the first); pick one with clear content in
            the overlaps. Every time point is fused with this placement.
            Leave at 0 for an image without time points.
        overwrite_input: Replace the image by its stitched version; if unset,
            the stitched image is added next to it as `{image}_stitched` (in
            a plate: in the same well, same acquisition).
    """
    from fractal_roi_tasks.io import stitch_output
    from fractal_roi_tasks.io.open import open_image_container, require_label
    from fractal_roi_tasks.io.roi_tables import fingerprint
    from fractal_roi_tasks.io.stitch_placement import make_plan
    from fractal_roi_tasks.io.tiles import check_time_point, read_tile_table, time_points
    from fractal_roi_tasks.io.wells import acquisition_in_well, add_to_well

    check_name(roi_table, what="roi_table")
    output = swap.plan_output(zarr_url, new_name=STITCHED_IMAGE, overwrite_input=overwrite_input)
    source = output.source

    ome_zarr = open_image_container(str(source))
    check_level(level, ome_zarr.level_paths)
    tiles = read_tile_table(ome_zarr, roi_table, str(source), use_stage_positions=use_stage_positions)
    check_time_point(
        placement_time_point, time_points(ome_zarr.get_image()),
        what="placement_time_point", where=f"the image {str(source)!r}",
    )
    channel_index = 0 if channel is None else channel.index_in(
        ome_zarr.channel_labels, ome_zarr.wavelength_ids
    )
    labels = ome_zarr.list_labels() if label_names is None else label_names
    for label_name in labels:
        require_label(ome_zarr, check_name(label_name, what="label_names"), str(source))
        stitch_output.check_label_pixels(ome_zarr, label_name)

    options = {
        "roi_table": roi_table, "channel": channel_index, "level": level, "labels": labels,
        "use_stage_positions": use_stage_positions, "max_shift_um": max_shift_um,
        "blending": blending, "min_overlap": min_overlap,
        "placement_time_point": placement_time_point,
    }

    def build(path: Path) -> dict:
        plan = make_plan(
            tiles, ome_zarr, str(source), channel=channel_index, level=level,
            max_shift_um=max_shift_um, blending=blending, label_names=labels,
            min_overlap=min_overlap, placement_time_point=placement_time_point,
        )
        stitch_output.build(str(source), ome_zarr, plan, roi_table, path)
        return {"output": fingerprint(stitch_output.written_table(path, roi_table))}

    wanted = {"stitched_from": fingerprint(tiles.frame), "options": options}
    if swap.build_once(output, wanted, build, source_key="stitched_from", task="Stitch and Deduplicate"):
        logger.info("%s: stitched -> %s", source, output.target)
    else:
        logger.info("%s: already stitched with these options, nothing to do", output.target)

    update = {"zarr_url": str(output.target), "types": {"stitched": True}}
    if not overwrite_input:
        acquisition = acquisition_in_well(str(source))
        if acquisition is not None:
            add_to_well(output.target, acquisition)
        update["origin"] = str(source)
    return {"image_list_updates": [update]}


if __name__ == "__main__":
    from fractal_task_tools.task_wrapper import run_fractal_task

    run_fractal_task(task_function=stitch_and_dedup)
